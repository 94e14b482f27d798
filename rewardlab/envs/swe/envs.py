"""SWE environments over the task corpus; rewards come from sandboxed pytest runs.

- ``TestOracle``: per-(task, repo contents) test outcomes. The first evaluation of each
  distinct repo state runs live in the sandbox and is cached for the process (pass/fail of a
  given patch is deterministic); ``outcomes="shipped"`` reads the outcomes recorded when the
  corpus was generated instead (a test checks the two agree). Live runs are split runs: the
  task's own tests run in a process the edited code never runs in, so code under test cannot
  report its own verdict (``docs/envs/swe.md``, "The verdict").
- ``PatchSelectEnv`` (``swe/PatchSelect-v0``): discrete actions — run the tests, open one
  of the 3 source files, apply one of 6 candidate edits (the fix, plausible wrong edits at or
  near the bug, edits elsewhere), revert. Observation: a fixed-size float vector of
  task-agnostic features (see ``PatchSelectEnv.feature_names``), so small agents can learn a
  policy that transfers to held-out tasks.
- ``TextEditEnv`` (``swe/TextEdit-v0``): text actions for LLM agents: ``open <path>``,
  ``run_tests``, a search/replace block or a unified diff; observations are file views and
  test output.

Both put the step-level signals in ``info`` for process-reward terms
(``opened_buggy_file``, ``test_run_improved``, ``tests_ran``, ``test_pass_fraction``,
``test_results``) and end an episode (``terminated``, env reward 1, ``is_success``) when all
tests pass, or unsolved when the step budget ``max_steps`` is used up (also ``terminated``:
the budget is part of the task, so learners must not bootstrap past it).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import gymnasium as gym
import numpy as np

from rewardlab.envs.swe.corpus import Task, content_key, load_corpus
from rewardlab.envs.swe.sandbox import Limits, Sandbox, TestRun
from rewardlab.errors import InvalidArgument

__all__ = ["TestOracle", "PatchSelectEnv", "TextEditEnv", "make_swe", "shared_oracle"]

SPLITS = ("train", "test", "all")
N_FILES = 3
N_CANDIDATES = 6


class TestOracle:
    """Test outcomes of repo states, live in the sandbox (cached) or from the shipped record.

    ``live_runs`` counts real sandbox evaluations; ``cache_hits`` counts cached answers.
    """

    __test__ = False

    def __init__(self, outcomes: str = "live", workers: int = 2, limits: Limits | None = None):
        if outcomes not in ("live", "shipped"):
            raise InvalidArgument(f"outcomes must be 'live' or 'shipped', got {outcomes!r}")
        self.mode = outcomes
        self.workers, self.limits = workers, limits
        self._sandbox: Sandbox | None = None
        self._cache: dict[tuple[str, str], tuple[tuple[bool, ...], str]] = {}
        self._lock = threading.Lock()
        self.live_runs = 0
        self.cache_hits = 0

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.workers, self.limits)
        return self._sandbox

    def evaluate(self, task: Task, files: dict[str, str], candidate: int | None = None) -> tuple[tuple[bool, ...], str]:
        """(pass mask over ``task.tests``, output tail) for the repo ``files``."""
        key = (task.task_id, content_key(files))
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            self.cache_hits += 1
            return hit
        if self.mode == "shipped" and (candidate is not None or files == task.files):
            rec = load_corpus()[1][task.task_id]["buggy" if candidate is None else str(candidate)]
            out = (tuple(rec), "(recorded outcome; run with outcomes='live' for the test output)")
        else:
            run: TestRun = self.sandbox.run_split(*task.split_job(files))
            self.live_runs += 1
            out = (tuple(run.passed_mask(task.tests)), _summary(run, task))
        with self._lock:
            self._cache[key] = out
        return out

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


def _summary(run: TestRun, task: Task) -> str:
    failed = [t for t, ok in zip(task.tests, run.passed_mask(task.tests), strict=True) if not ok]
    head = f"status={run.status}; {len(task.tests) - len(failed)}/{len(task.tests)} tests passed"
    if failed:
        head += "\nfailed: " + ", ".join(failed)
    return head + "\n" + run.output[-1500:]


_ORACLES: dict[str, TestOracle] = {}


def shared_oracle(outcomes: str = "live") -> TestOracle:
    """One oracle (sandbox pool + cache) per process and mode, shared by all env copies."""
    if outcomes not in _ORACLES:
        _ORACLES[outcomes] = TestOracle(outcomes)
    return _ORACLES[outcomes]


def _split_tasks(split: str) -> list[Task]:
    if split not in SPLITS:
        raise InvalidArgument(f"swe split must be one of {SPLITS}, got {split!r}")
    tasks, _ = load_corpus()
    return [t for t in tasks if split == "all" or t.split == split]


_TB_LINE = re.compile(r"([\w/]+\.py):(\d+)")


def _name_tokens(meta: dict[str, Any]) -> list[str]:
    """Identifiers a failing test would mention if it exercises the candidate's code."""
    toks = []
    fn = meta.get("function", "")
    if fn and not fn.startswith("__"):
        toks.append(fn)
    if meta.get("class"):
        toks.append(meta["class"])
    return toks


_TEST_SOURCES: dict[str, dict[str, str]] = {}


def _test_sources(task: Task) -> dict[str, str]:
    """``test id → source of the test function`` (what a traceback would show), per task."""
    if task.task_id not in _TEST_SOURCES:
        import ast

        out: dict[str, str] = {}
        for path, text in task.files.items():
            if not path.startswith("tests/"):
                continue
            for node in ast.parse(text).body:
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                    out[f"{path}::{node.name}"] = ast.get_source_segment(text, node) or ""
        _TEST_SOURCES[task.task_id] = out
    return _TEST_SOURCES[task.task_id]


class _Episode:
    """State shared by both envs: the task, the current repo, what has been run/opened."""

    def __init__(self, task: Task, oracle: TestOracle):
        self.task, self.oracle = task, oracle
        self.files = dict(task.files)
        self.current: int | None = None  # applied candidate (PatchSelect)
        self.opened: set[str] = set()
        self.last_frac: float | None = None
        self.best_frac = 0.0
        self.failing: list[str] = []
        self.output = ""
        self.tried: dict[int, float] = {}

    def run_tests(self) -> tuple[float, tuple[bool, ...]]:
        mask, out = self.oracle.evaluate(self.task, self.files, self.current)
        frac = float(np.mean(mask)) if mask else 0.0
        self.failing = [t for t, ok in zip(self.task.tests, mask, strict=True) if not ok]
        self.output = out
        return frac, mask


class _SWEBase(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, split: str = "train", max_steps: int = 5, outcomes: str = "live",
                 task_ids: list[str] | None = None, render_mode: str | None = None):
        if max_steps < 1:
            raise InvalidArgument(f"max_steps must be >= 1, got {max_steps}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise InvalidArgument(f"render_mode {render_mode!r}: the SWE envs render "
                                  f"{', '.join(self.metadata['render_modes'])}")
        self.render_mode = render_mode
        self.tasks = _split_tasks(split)
        if task_ids is not None:
            known = {t.task_id: t for t in self.tasks}
            missing = [i for i in task_ids if i not in known]
            if missing:
                raise InvalidArgument(f"unknown swe task ids {missing}; split {split!r} has {sorted(known)}")
            self.tasks = [known[i] for i in task_ids]
        self.split, self.max_steps = split, int(max_steps)
        self.oracle = shared_oracle(outcomes)
        self.ep: _Episode | None = None
        self.steps = 0

    def render(self) -> str:
        """``ansi``: the episode's state in one line (task, step, applied candidate, pass fraction)."""
        ep = self.ep
        if ep is None:
            return "no episode yet (call reset)"
        return f"task {ep.task.task_id}: step {self.steps}, applied {ep.current}, pass {ep.last_frac}"

    def _start(self, options: dict | None) -> Task:
        if options and "task_id" in options:
            by_id = {t.task_id: t for t in self.tasks}
            if options["task_id"] not in by_id:
                raise InvalidArgument(f"task {options['task_id']!r} is not in split {self.split!r}")
            task = by_id[options["task_id"]]
        else:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        self.ep = _Episode(task, self.oracle)
        self.steps = 0
        return task

    def _signals(self, *, opened_buggy: bool = False, ran: bool = False, frac: float | None = None,
                 prev: float | None = None, mask: tuple[bool, ...] = ()) -> dict[str, Any]:
        ep = self.ep
        improved = ran and prev is not None and frac is not None and frac > prev + 1e-9
        solved = ran and frac is not None and frac >= 1.0
        return {
            "task_id": ep.task.task_id,
            "opened_buggy_file": float(opened_buggy),
            "tests_ran": float(ran),
            "test_run_improved": float(improved),
            "test_pass_fraction": float(ep.last_frac if ep.last_frac is not None else 0.0),
            "test_results": tuple(zip(ep.task.tests, mask, strict=True)) if ran else (),
            "is_success": bool(solved),
        }

    def _after_run(self, frac: float, mask: tuple[bool, ...], **kw: Any) -> tuple[float, bool, dict[str, Any]]:
        ep = self.ep
        prev = ep.last_frac
        ep.last_frac = frac
        ep.best_frac = max(ep.best_frac, frac)
        info = self._signals(ran=True, frac=frac, prev=prev, mask=mask, **kw)
        solved = info["is_success"]
        return (1.0 if solved else 0.0), solved, info


class PatchSelectEnv(_SWEBase):
    """Pick the fixing edit among candidates; task-agnostic features make it learnable.

    Actions (``Discrete(11)``): ``0`` run tests, ``1..3`` open source file ``i``, ``4..9``
    apply candidate ``k`` (to the buggy repo, replacing any applied one; runs the tests),
    ``10`` revert to the buggy repo (runs the tests). Reward 1 and ``terminated`` when all
    tests pass; also ``terminated`` (unsolved) after ``max_steps``: the step budget is part of the
    task and of the observation, so it is a real end, not a time-limit truncation.

    >>> env = PatchSelectEnv(split="train", outcomes="shipped")
    >>> obs, info = env.reset(seed=0, options={"task_id": "strutils-0"})
    >>> obs.shape, env.observation_space.shape
    ((57,), (57,))
    >>> fix = env.ep.task.fix_index
    >>> env.step(4 + fix)[1:4]
    (1.0, True, False)
    """

    N_ACTIONS = 1 + N_FILES + N_CANDIDATES + 1
    CAND_FEATURES = ("file_has_failing", "name_match", "traceback_line", "file_opened", "tried",
                     "pass_after_try", "is_current")
    FILE_FEATURES = ("has_failing", "opened", "holds_current_edit")
    GLOBAL_FEATURES = ("progress", "tests_ran", "pass_fraction", "best_pass_fraction", "applied_any", "reverted")

    def __init__(self, split: str = "train", max_steps: int = 5, outcomes: str = "live",
                 task_ids: list[str] | None = None, render_mode: str | None = None):
        super().__init__(split, max_steps, outcomes, task_ids, render_mode)
        self.action_space = gym.spaces.Discrete(self.N_ACTIONS)
        n = len(self.GLOBAL_FEATURES) + N_FILES * len(self.FILE_FEATURES) + N_CANDIDATES * len(self.CAND_FEATURES)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        self._ran = False

    @classmethod
    def feature_names(cls) -> list[str]:
        names = list(cls.GLOBAL_FEATURES)
        names += [f"file{i}/{f}" for i in range(N_FILES) for f in cls.FILE_FEATURES]
        names += [f"cand{k}/{f}" for k in range(N_CANDIDATES) for f in cls.CAND_FEATURES]
        return names

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._start(options)
        self._ran = False
        self._reverted = False
        return self._obs(), self._signals()

    def _obs(self) -> np.ndarray:
        ep, task = self.ep, self.ep.task
        failing_files = {t.split("::")[0].removeprefix("tests/test_").removesuffix(".py") + ".py" for t in ep.failing}
        sources = _test_sources(task)
        failing_src = "\n".join(sources.get(t, "") for t in ep.failing)
        tb_lines = {(f.split("/")[-1], int(n)) for f, n in _TB_LINE.findall(ep.output)} if ep.failing else set()
        g = [self.steps / self.max_steps, float(self._ran), ep.last_frac or 0.0, ep.best_frac,
             float(ep.current is not None), float(self._reverted)]
        files = task.source_files
        fvec = []
        for i in range(N_FILES):
            p = files[i] if i < len(files) else None
            cur_file = ep.current is not None and task.candidates[ep.current].path == p
            fvec += [float(p in failing_files), float(p in ep.opened), float(cur_file)]
        cvec = []
        for k, (c, meta) in enumerate(zip(task.candidates, task.candidate_meta, strict=True)):
            toks = _name_tokens(meta)
            name_match = any(re.search(rf"\b{re.escape(tok)}\b", failing_src) for tok in toks)
            opened = c.path in ep.opened
            tb = opened and any(f == c.path and c.start - 1 <= ln <= max(c.end, c.start) + 1 for f, ln in tb_lines)
            cvec += [float(c.path in failing_files), float(name_match), float(tb), float(opened),
                     float(k in ep.tried), ep.tried.get(k, 0.0), float(ep.current == k)]
        obs = np.zeros(self.observation_space.shape, np.float32)
        vals = np.asarray(g + fvec + cvec, np.float32)
        obs[: len(vals)] = vals
        return obs

    def step(self, action: Any):
        if self.ep is None:
            raise InvalidArgument("PatchSelectEnv.step() called before reset()")
        a = int(action)
        if not 0 <= a < self.N_ACTIONS:
            raise InvalidArgument(f"PatchSelect action must be in [0, {self.N_ACTIONS}), got {action!r}")
        ep, task = self.ep, self.ep.task
        self.steps += 1
        reward, terminated = 0.0, False
        if a == 0 or a >= 1 + N_FILES:
            if 1 + N_FILES <= a < 1 + N_FILES + N_CANDIDATES:
                k = a - 1 - N_FILES
                ep.current = k
                ep.files = task.apply(k)
                self._reverted = False
            elif a == self.N_ACTIONS - 1:
                ep.current = None
                ep.files = dict(task.files)
                self._reverted = True
            frac, mask = ep.run_tests()
            self._ran = True
            if ep.current is not None:
                ep.tried[ep.current] = frac
            reward, terminated, info = self._after_run(frac, mask)
        else:
            files = task.source_files
            path = files[a - 1] if a - 1 < len(files) else None
            if path is not None:
                ep.opened.add(path)
            info = self._signals(opened_buggy=path == task.buggy_file)
        # The step budget is part of the task (the observation shows it), so running out of
        # steps ends the MDP: terminated, not truncated (no bootstrapping past the budget).
        terminated = terminated or self.steps >= self.max_steps
        return self._obs(), reward, terminated, False, info


_SR = re.compile(r"<<<<<<< SEARCH\s+(?P<path>\S+)\n(?P<old>.*?)\n?=======\n(?P<new>.*?)\n?>>>>>>> REPLACE", re.S)


class TextEditEnv(_SWEBase):
    """Text actions for LLM agents; observations are text (file views, test output).

    Actions: ``run_tests``; ``open <path>``; a search/replace block — a line
    ``<<<<<<< SEARCH <path>``, the old text (must occur exactly once), a line ``=======``,
    the new text, a line ``>>>>>>> REPLACE`` —
    or a unified diff (``--- a/x.py`` / ``+++ b/x.py`` / ``@@`` hunks). Test files are read
    only. An edit runs the tests; all passing ends the episode with reward 1.

    >>> env = TextEditEnv(outcomes="shipped")
    >>> obs, _ = env.reset(seed=0, options={"task_id": "strutils-0"})
    >>> obs.splitlines()[0]
    'Fix the bug in this repository so that all tests in tests/ pass.'
    >>> obs, r, term, trunc, info = env.step("open nowhere.py")
    >>> obs.splitlines()[0]
    "error: no file 'nowhere.py'; files: listutils.py, numeric.py, strutils.py, tests/test_listutils.py, ..."
    """

    MAX_CHARS = 8000

    def __init__(self, split: str = "train", max_steps: int = 20, outcomes: str = "live",
                 task_ids: list[str] | None = None, render_mode: str | None = None):
        super().__init__(split, max_steps, outcomes, task_ids, render_mode)
        self.action_space = gym.spaces.Text(self.MAX_CHARS, charset=_CHARSET)
        self.observation_space = gym.spaces.Text(self.MAX_CHARS * 2, charset=_CHARSET)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = self._start(options)
        listing = "\n".join(f"  {p}" for p in sorted(task.files))
        obs = ("Fix the bug in this repository so that all tests in tests/ pass.\n"
               f"Files:\n{listing}\nActions: run_tests | open <path> | a SEARCH/REPLACE block | a unified diff")
        return obs, self._signals()

    def step(self, action: Any):
        if self.ep is None:
            raise InvalidArgument("TextEditEnv.step() called before reset()")
        if not isinstance(action, str):
            raise InvalidArgument(f"TextEdit actions are strings, got {type(action).__name__}")
        ep, task = self.ep, self.ep.task
        self.steps += 1
        text = action.strip()
        reward, terminated = 0.0, False
        if text == "run_tests":
            frac, mask = ep.run_tests()
            reward, terminated, info = self._after_run(frac, mask)
            obs = ep.output
        elif text.startswith("open "):
            path = text[5:].strip()
            if path not in ep.files:
                shown = ", ".join(sorted(ep.files)[:4]) + ", ..."
                obs, info = f"error: no file {path!r}; files: {shown}", self._signals()
            else:
                ep.opened.add(path)
                body = "".join(f"{i:4d}  {ln}" for i, ln in enumerate(ep.files[path].splitlines(True), 1))
                obs, info = f"{path}:\n{body}", self._signals(opened_buggy=path == task.buggy_file)
        else:
            try:
                ep.files = apply_text_edit(ep.files, text, read_only=("tests/",))
            except InvalidArgument as e:
                obs, info = f"error: {e}", self._signals()
            else:
                frac, mask = ep.run_tests()
                reward, terminated, info = self._after_run(frac, mask)
                obs = "edit applied.\n" + ep.output
        terminated = terminated or self.steps >= self.max_steps  # the budget ends the task
        return obs[: self.MAX_CHARS * 2], reward, terminated, False, info


_CHARSET = frozenset(chr(i) for i in range(32, 127)) | {"\n", "\t"}


def apply_text_edit(files: dict[str, str], text: str, read_only: tuple[str, ...] = ()) -> dict[str, str]:
    """Apply search/replace blocks or a unified diff to ``files``; a clear error otherwise.

    >>> apply_text_edit({"a.py": "x = 1\\n"}, "<<<<<<< SEARCH a.py\\nx = 1\\n=======\\nx = 2\\n>>>>>>> REPLACE")
    {'a.py': 'x = 2\\n'}
    >>> diff = "--- a/a.py\\n+++ b/a.py\\n@@ -1,2 +1,2 @@\\n-x = 1\\n+x = 3\\n y = 1\\n"
    >>> apply_text_edit({"a.py": "x = 1\\ny = 1\\n"}, diff)
    {'a.py': 'x = 3\\ny = 1\\n'}
    """
    out = dict(files)
    blocks = list(_SR.finditer(text))
    if blocks:
        for b in blocks:
            path, old, new = b["path"], b["old"], b["new"]
            _check_path(out, path, read_only)
            n = out[path].count(old)
            if n != 1:
                raise InvalidArgument(f"search text occurs {n} times in {path}; it must occur exactly once")
            out[path] = out[path].replace(old, new, 1)
        return out
    if text.startswith("--- ") or "\n+++ " in text:
        return _apply_unified(out, text, read_only)
    raise InvalidArgument("unrecognised action: expected run_tests, open <path>, a SEARCH/REPLACE block "
                          "or a unified diff")


def _check_path(files: dict[str, str], path: str, read_only: tuple[str, ...]) -> None:
    if path not in files:
        raise InvalidArgument(f"no file {path!r} in the repository")
    if path.startswith(read_only):
        raise InvalidArgument(f"{path} is read-only (tests cannot be edited)")


def _apply_unified(files: dict[str, str], diff: str, read_only: tuple[str, ...]) -> dict[str, str]:
    lines = diff.splitlines()
    i, path = 0, None
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("+++ "):
            path = ln[4:].strip().split("\t")[0]
            path = path[2:] if path.startswith(("a/", "b/")) else path
            _check_path(files, path, read_only)
            i += 1
            continue
        m = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", ln)
        if m and path is not None:
            start = int(m[1])
            old, new = [], []
            i += 1
            while i < len(lines) and not lines[i].startswith(("@@", "--- ", "+++ ")):
                h = lines[i]
                if h.startswith("-"):
                    old.append(h[1:])
                elif h.startswith("+"):
                    new.append(h[1:])
                else:
                    old.append(h[1:] if h.startswith(" ") else h)
                    new.append(h[1:] if h.startswith(" ") else h)
                i += 1
            src = files[path].splitlines()
            lo = max(start - 1, 0)
            if src[lo: lo + len(old)] != old:
                raise InvalidArgument(f"hunk at {path}:{start} does not match the file")
            tail = "\n" if files[path].endswith("\n") else ""
            files = {**files, path: "\n".join(src[:lo] + new + src[lo + len(old):]) + tail}
            continue
        i += 1
    return files


def make_swe(task: str, **kwargs: Any) -> gym.Env:
    """Registry factory: ``PatchSelect-v0`` or ``TextEdit-v0``."""
    cls = {"PatchSelect-v0": PatchSelectEnv, "TextEdit-v0": TextEditEnv}[task]
    return cls(**kwargs)
