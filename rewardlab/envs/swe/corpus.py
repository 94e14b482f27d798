"""The SWE task corpus: buggy repositories made by mutating correct modules, validated live.

- ``Edit``: replace lines ``[start, end]`` (1-based, inclusive) of one file by new text.
- ``mutations(source)``: every single-site mutant of a module, by operator:
  ``wrong_comparison`` (``<``↔``<=``, ``==``↔``!=`` ...), ``swapped_operator`` (``+``↔``-``,
  ``*``↔``//``, ``and``↔``or``, augmented assignments), ``off_by_one`` (integer literals ±1),
  ``wrong_default`` (a default argument changed), ``missing_branch`` (an ``if`` without
  ``else`` deleted).
- ``Task``: files of the buggy repo, the fix, candidate edits (the fix, plausible wrong
  edits at or near the bug, edits in other files), test ids, split.
- ``generate_corpus(sandbox)``: deterministic; runs every mutant's suite in the sandbox (split
  runs: the tests in a process that never runs the mutant, see ``sandbox.Sandbox.run_split``),
  keeps killed mutants (≥1 failing test), builds ≥40 tasks with candidates, and records each
  candidate's per-test outcome. ``validate_corpus`` re-checks: every task fails ≥1 test
  before the fix and passes all after.
- ``load_corpus()``: the shipped corpus (package data ``data/corpus.json``, written by
  ``python -m rewardlab.envs.swe.corpus --write``), rebuilt in memory from the modules in
  ``data/modules/`` (``sources.MODULES``). ``corpus_json(tasks, outcomes)`` is the file's
  exact text, so regenerating reproduces it byte for byte.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from rewardlab.envs.swe.sources import MODULES

__all__ = ["Edit", "Mutation", "Task", "mutations", "generate_corpus", "validate_corpus", "load_corpus",
           "corpus_json", "OPERATORS", "TEST_MODULES", "N_CANDIDATES", "CORPUS_FILE"]

OPERATORS = ("wrong_comparison", "swapped_operator", "off_by_one", "wrong_default", "missing_branch")
TEST_MODULES = ("roman", "validate", "textstats")  # held-out split: tasks of these modules
N_CANDIDATES = 6
TASKS_PER_MODULE = 6
N_DISTRACTORS = 2
CORPUS_FILE = ("data", "corpus.json")  # package data of rewardlab.envs.swe

_CMP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
_BIN = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "//"), ast.FloorDiv: ("//", "*"),
        ast.Div: ("/", "//"), ast.Mod: ("%", "//")}
_BOOL = {ast.And: ("and", "or"), ast.Or: ("or", "and")}


@dataclass(frozen=True)
class Edit:
    """Replace lines ``start..end`` (1-based, inclusive) of ``path`` with ``text``."""

    path: str
    start: int
    end: int
    text: str

    def apply(self, files: dict[str, str]) -> dict[str, str]:
        lines = files[self.path].splitlines(keepends=True)
        new = self.text.splitlines(keepends=True)
        out = dict(files)
        out[self.path] = "".join(lines[: self.start - 1] + new + lines[self.end:])
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Mutation:
    operator: str
    line: int  # first line changed (1-based)
    end_line: int
    function: str  # enclosing function/method ("" at module level)
    cls: str  # enclosing class ("" if none)
    old: str
    new: str  # replacement of lines line..end_line
    description: str


def _replace_between(line: str, lo: int, hi: int, old: str, new: str) -> str | None:
    seg = line[lo:hi]
    idx = seg.find(old)
    if idx < 0:
        return None
    return line[: lo + idx] + new + line[lo + idx + len(old):]


class _Scope(ast.NodeVisitor):
    """Map each node to its enclosing (class, function)."""

    def __init__(self) -> None:
        self.owner: dict[int, tuple[str, str]] = {}
        self.stack: list[tuple[str, str]] = [("", "")]

    def generic_visit(self, node: ast.AST) -> None:
        self.owner[id(node)] = self.stack[-1]
        super().generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.owner[id(node)] = self.stack[-1]
        self.stack.append((node.name, ""))
        super().generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.owner[id(node)] = self.stack[-1]
        self.stack.append((self.stack[-1][0], node.name))
        super().generic_visit(node)
        self.stack.pop()


def mutations(source: str) -> list[Mutation]:
    """All single-site mutants of ``source`` (deterministic order).

    >>> ms = mutations("def f(x, n=2):\\n    if x < n:\\n        return x + 1\\n    return x\\n")
    >>> sorted({m.operator for m in ms})
    ['missing_branch', 'off_by_one', 'swapped_operator', 'wrong_comparison', 'wrong_default']
    >>> [m.new.strip() for m in ms if m.operator == "wrong_comparison"]
    ['if x <= n:']
    """
    tree = ast.parse(source)
    scope = _Scope()
    scope.visit(tree)
    lines = source.splitlines(keepends=True)
    out: list[Mutation] = []
    seen: set[tuple[int, str]] = set()

    def add(op: str, node: ast.AST, lineno: int, end: int, new: str, desc: str) -> None:
        old = "".join(lines[lineno - 1:end])
        if new == old or (lineno, new) in seen:
            return
        try:
            ast.parse("".join(lines[: lineno - 1]) + new + "".join(lines[end:]))
        except SyntaxError:
            return
        seen.add((lineno, new))
        cls, fn = scope.owner.get(id(node), ("", ""))
        out.append(Mutation(op, lineno, end, fn, cls, old, new, desc))

    def one_line(node: ast.AST, lo_node: ast.AST, hi_node: ast.AST, old: str, new: str, op: str) -> None:
        if lo_node.end_lineno != hi_node.lineno:
            return
        ln = hi_node.lineno
        text = _replace_between(lines[ln - 1], lo_node.end_col_offset, hi_node.col_offset, old, new)
        if text is not None:
            add(op, node, ln, ln, text, f"line {ln}: '{old}' -> '{new}'")

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            old, new = _CMP[type(node.ops[0])]
            one_line(node, node.left, node.comparators[0], old, new, "wrong_comparison")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            old, new = _BIN[type(node.op)]
            one_line(node, node.left, node.right, old, new, "swapped_operator")
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BIN:
            old, new = _BIN[type(node.op)]
            one_line(node, node.target, node.value, old + "=", new + "=", "swapped_operator")
        elif isinstance(node, ast.BoolOp) and type(node.op) in _BOOL and len(node.values) == 2:
            old, new = _BOOL[type(node.op)]
            one_line(node, node.values[0], node.values[1], old, new, "swapped_operator")
        elif isinstance(node, (ast.FunctionDef,)):
            defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
            for d in defaults:
                if isinstance(d, ast.Constant) and d.lineno == d.end_lineno:
                    v = d.value
                    if isinstance(v, bool) or v is None:
                        continue
                    if isinstance(v, int):
                        repl = repr(v + 1)
                    elif isinstance(v, str):
                        repl = repr(v[:-1] if len(v) > 1 else v + v if v else "_")
                    else:
                        continue
                    ln = d.lineno
                    text = lines[ln - 1][: d.col_offset] + repl + lines[ln - 1][d.end_col_offset:]
                    add("wrong_default", node, ln, ln, text, f"line {ln}: default {v!r} -> {repl}")
        elif isinstance(node, ast.If) and not node.orelse and isinstance(node.test, ast.AST):
            parent_body = _parent_body(tree, node)
            if parent_body is None:
                continue
            indent = lines[node.lineno - 1][: len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())]
            new = "" if len(parent_body) > 1 else indent + "pass\n"
            add("missing_branch", node, node.lineno, node.end_lineno, new, f"lines {node.lineno}-{node.end_lineno}: "
                "if-branch removed")
        if isinstance(node, ast.Constant) and type(node.value) is int and node.lineno == node.end_lineno:
            if _is_default(tree, node):
                continue
            ln = node.lineno
            for delta in (1, -1):
                v = node.value + delta
                if v < 0:
                    continue
                text = lines[ln - 1][: node.col_offset] + str(v) + lines[ln - 1][node.end_col_offset:]
                add("off_by_one", node, ln, ln, text, f"line {ln}: {node.value} -> {v}")
    out.sort(key=lambda m: (m.line, m.operator, m.new))
    return out


def _parent_body(tree: ast.AST, node: ast.AST) -> list[ast.stmt] | None:
    for p in ast.walk(tree):
        for name in ("body", "orelse"):
            body = getattr(p, name, None)
            if isinstance(body, list) and any(s is node for s in body):
                return body
    return None


def _is_default(tree: ast.AST, node: ast.AST) -> bool:
    for f in ast.walk(tree):
        if isinstance(f, ast.FunctionDef) and any(d is node for d in f.args.defaults + f.args.kw_defaults):
            return True
    return False


# ---------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------


@dataclass
class Task:
    """One buggy repository with its candidate edits (index of the fix in ``fix_index``)."""

    task_id: str
    module: str
    split: str
    files: dict[str, str]  # the buggy repo: sources + tests
    bug: dict[str, Any]  # operator, line, function, class, description
    fix: Edit
    candidates: list[Edit]
    candidate_kinds: list[str]  # fix | same_site | same_function | same_file | other_file
    fix_index: int
    tests: list[str]  # pytest node ids, in a fixed order
    source_files: list[str]  # editable files (tests are read-only for agents)
    buggy_file: str
    candidate_meta: list[dict[str, Any]] = field(default_factory=list)  # function/class per candidate

    @property
    def targets(self) -> list[str]:
        return ["tests"]

    def apply(self, index: int | None) -> dict[str, str]:
        """The repo after candidate ``index`` (``None``: the buggy repo)."""
        return dict(self.files) if index is None else self.candidates[index].apply(self.files)

    def split_job(self, files: dict[str, str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """``(code, tests, targets)`` of a split sandbox run of the repository ``files``: the code
        is ``files`` without ``tests/``; the tests are always this task's own, never a copy that
        came with ``files``."""
        return _split_job(files, self.files, self.targets)


def _split_job(files: dict[str, str], trusted: dict[str, str],
               targets: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    code = {p: t for p, t in files.items() if not p.startswith("tests/")}
    return code, {p: t for p, t in trusted.items() if p.startswith("tests/")}, targets


def content_key(files: dict[str, str]) -> str:
    """A hash of a repo's contents (the outcome cache key)."""
    h = hashlib.sha256()
    for k in sorted(files):
        h.update(k.encode() + b"\0" + files[k].encode() + b"\0")
    return h.hexdigest()[:20]


def _module_files(name: str, source: str | None = None) -> dict[str, str]:
    src, tests = MODULES[name]
    return {f"{name}.py": src if source is None else source, f"tests/test_{name}.py": tests}


def _distractors(name: str) -> list[str]:
    names = list(MODULES)
    i = names.index(name)
    return [names[(i + k) % len(names)] for k in range(1, N_DISTRACTORS + 1)]


def _pick_mutants(killed: list[Mutation], k: int, rng: random.Random) -> list[Mutation]:
    """Round-robin over operators so each module contributes varied bug kinds."""
    by_op: dict[str, list[Mutation]] = {}
    for m in killed:
        by_op.setdefault(m.operator, []).append(m)
    for ms in by_op.values():
        rng.shuffle(ms)
    picked: list[Mutation] = []
    used_lines: set[int] = set()
    while len(picked) < k and any(by_op.values()):
        for op in OPERATORS:
            ms = by_op.get(op, [])
            while ms and ms[-1].line in used_lines:
                ms.pop()
            if ms and len(picked) < k:
                m = ms.pop()
                picked.append(m)
                used_lines.add(m.line)
    return picked


def _edit_of(path: str, m: Mutation) -> Edit:
    return Edit(path, m.line, m.end_line, m.new)


def generate_corpus(sandbox: Any, seed: int = 0) -> tuple[list[Task], dict[str, dict[str, list[bool]]]]:
    """Build the corpus and every candidate's per-test outcome (runs the sandbox).

    Returns ``(tasks, outcomes)`` with ``outcomes[task_id][str(candidate or 'buggy')]`` the
    pass mask over ``task.tests``.
    """
    rng = random.Random(seed)
    tasks: list[Task] = []
    # 1. Mutants of each module, killed by its own suite.
    jobs, index = [], []
    for name, (src, _t) in MODULES.items():
        for m in mutations(src):
            lines = src.splitlines(keepends=True)
            mutated = "".join(lines[: m.line - 1]) + m.new + "".join(lines[m.end_line:])
            jobs.append(_split_job(_module_files(name, mutated), _module_files(name), ["tests"]))
            index.append((name, m))
    runs = sandbox.run_many(jobs, split=True)
    killed: dict[str, list[Mutation]] = {n: [] for n in MODULES}
    for (name, m), run in zip(index, runs, strict=True):
        if run.status == "ok" and run.outcomes and not all(v == "passed" for v in run.outcomes.values()):
            killed[name].append(m)
    # 2. Tasks: the mutant + distractor modules; candidates over the buggy repo.
    for name, src in ((n, s) for n, (s, _t) in MODULES.items()):
        for j, m in enumerate(_pick_mutants(killed[name], TASKS_PER_MODULE, rng)):
            path = f"{name}.py"
            files: dict[str, str] = {}
            for d in [name, *_distractors(name)]:
                files.update(_module_files(d))
            original = dict(files)
            lines = src.splitlines(keepends=True)
            files[path] = "".join(lines[: m.line - 1]) + m.new + "".join(lines[m.end_line:])
            new_end = m.line + len(m.new.splitlines()) - 1
            fix = Edit(path, m.line, new_end, m.old)
            if m.new == "":  # a deleted branch: re-insert before the line now at m.line
                fix = Edit(path, m.line, m.line - 1, m.old)
            if fix.apply(files) != original:
                continue
            cands = _candidates(files, path, m, fix, original, rng)
            if cands is None:
                continue
            edits, kinds, meta = cands
            order = list(range(len(edits)))
            rng.shuffle(order)
            edits = [edits[i] for i in order]
            kinds = [kinds[i] for i in order]
            meta = [meta[i] for i in order]
            tasks.append(Task(
                task_id=f"{name}-{j}", module=name, split="test" if name in TEST_MODULES else "train",
                files=files, bug={"operator": m.operator, "line": m.line, "end_line": m.end_line,
                                  "function": m.function, "class": m.cls, "description": m.description,
                                  "mutant": m.new},
                fix=fix, candidates=edits, candidate_kinds=kinds, fix_index=kinds.index("fix"), tests=[],
                source_files=sorted(p for p in files if not p.startswith("tests/")), buggy_file=path,
                candidate_meta=meta,
            ))
    # 3. Every candidate state, live.
    jobs, index = [], []
    for task in tasks:
        for c in [None, *range(len(task.candidates))]:
            jobs.append(task.split_job(task.apply(c)))
            index.append((task, c))
    runs = sandbox.run_many(jobs, split=True)
    outcomes: dict[str, dict[str, list[bool]]] = {}
    for (task, c), run in zip(index, runs, strict=True):
        if c is None:
            task.tests = sorted(run.outcomes)
        outcomes.setdefault(task.task_id, {})["buggy" if c is None else str(c)] = run.passed_mask(task.tests)
    kept = []
    for task in tasks:
        o = outcomes[task.task_id]
        wrong_solves = [i for i, k in enumerate(task.candidate_kinds) if k != "fix" and all(o[str(i)])]
        if all(o["buggy"]) or not all(o[str(task.fix_index)]) or wrong_solves:
            outcomes.pop(task.task_id)
            continue  # equivalent mutant or a "wrong" edit that also fixes it: not a clean task
        kept.append(task)
    return kept, outcomes


def _candidates(files, path, m: Mutation, fix: Edit, original, rng: random.Random):
    """The fix plus wrong edits: 2 at the bug site or in its function, 2 elsewhere in the
    file, 1 in another file. ``None`` if too few exist."""
    buggy_src = files[path]
    muts = mutations(buggy_src)
    fixed_text = fix.apply(files)[path]

    def is_fix(mu: Mutation) -> bool:
        ls = buggy_src.splitlines(keepends=True)
        return "".join(ls[: mu.line - 1]) + mu.new + "".join(ls[mu.end_line:]) == fixed_text

    near = [mu for mu in muts if not is_fix(mu) and (mu.function, mu.cls) == (m.function, m.cls)]
    site = [mu for mu in near if abs(mu.line - m.line) <= 1]
    rest_near = [mu for mu in near if mu not in site]
    far = [mu for mu in muts if not is_fix(mu) and (mu.function, mu.cls) != (m.function, m.cls)]
    others = [p for p in files if not p.startswith("tests/") and p != path]
    other_muts = [(p, mu) for p in others for mu in mutations(files[p])]
    for lst in (site, rest_near, far, other_muts):
        rng.shuffle(lst)
    same = (site[:2] + rest_near)[:2]
    if len(same) < 2 or len(far) < 2 or not other_muts:
        return None
    edits = [fix] + [_edit_of(path, mu) for mu in same] + [_edit_of(path, mu) for mu in far[:2]]
    kinds = ["fix"] + ["same_site" if mu in site else "same_function" for mu in same] + ["same_file"] * 2
    meta = [{"function": m.function, "class": m.cls}] + [{"function": mu.function, "class": mu.cls}
                                                          for mu in same + far[:2]]
    p, mu = other_muts[0]
    edits.append(_edit_of(p, mu))
    kinds.append("other_file")
    meta.append({"function": mu.function, "class": mu.cls})
    return edits, kinds, meta


def validate_corpus(tasks: list[Task], sandbox: Any) -> list[str]:
    """Live check: each task fails ≥1 test before the fix and passes all after.
    Returns a list of problems (empty when the corpus is valid)."""
    jobs = []
    for t in tasks:
        jobs.append(t.split_job(t.files))
        jobs.append(t.split_job(t.fix.apply(t.files)))
    runs = sandbox.run_many(jobs, split=True)
    problems = []
    for i, t in enumerate(tasks):
        before, after = runs[2 * i], runs[2 * i + 1]
        if len(t.tests) < 5:
            problems.append(f"{t.task_id}: only {len(t.tests)} tests")
        if before.all_passed(t.tests):
            problems.append(f"{t.task_id}: no test fails before the fix")
        if not after.all_passed(t.tests):
            problems.append(f"{t.task_id}: tests fail after the fix: "
                            f"{[k for k, v in after.outcomes.items() if v != 'passed']}")
    return problems


def _task_to_dict(t: Task) -> dict[str, Any]:
    return {"task_id": t.task_id, "module": t.module, "split": t.split, "bug": t.bug, "fix": t.fix.as_dict(),
            "candidates": [c.as_dict() for c in t.candidates], "candidate_kinds": t.candidate_kinds,
            "candidate_meta": t.candidate_meta, "fix_index": t.fix_index, "tests": t.tests,
            "buggy_file": t.buggy_file}


def _task_from_dict(d: dict[str, Any]) -> Task:
    files: dict[str, str] = {}
    for name in [d["module"], *_distractors(d["module"])]:
        files.update(_module_files(name))
    fix = Edit(**d["fix"])
    # The shipped record stores the fix; the buggy file is the original with the fix reversed.
    src = MODULES[d["module"]][0].splitlines(keepends=True)
    buggy = _rebuild_buggy(src, fix, d["bug"])
    files[d["buggy_file"]] = buggy
    return Task(task_id=d["task_id"], module=d["module"], split=d["split"], files=files, bug=d["bug"], fix=fix,
                candidates=[Edit(**c) for c in d["candidates"]], candidate_kinds=d["candidate_kinds"],
                fix_index=d["fix_index"], tests=d["tests"], buggy_file=d["buggy_file"],
                source_files=sorted(p for p in files if not p.startswith("tests/")),
                candidate_meta=d["candidate_meta"])


def _rebuild_buggy(src_lines: list[str], fix: Edit, bug: dict[str, Any]) -> str:
    """The buggy module: the recorded mutant text in place of the original lines."""
    buggy = "".join(src_lines[: bug["line"] - 1]) + bug["mutant"] + "".join(src_lines[bug["end_line"]:])
    if fix.apply({fix.path: buggy})[fix.path] != "".join(src_lines):
        raise ValueError(f"the recorded fix does not restore the source at line {bug['line']}")
    return buggy


def _sources_digest() -> dict[str, str]:
    """A hash of every module with its suite: the corpus records the sources it was built from."""
    return {name: content_key(_module_files(name)) for name in MODULES}


def corpus_json(tasks: Sequence[Task], outcomes: dict[str, dict[str, list[bool]]]) -> str:
    """The text of ``data/corpus.json`` for a corpus (deterministic: same corpus, same bytes).

    One task record per line and one task's outcomes per line (in task order, ``buggy`` then
    the candidates), so a regenerated corpus diffs task by task.

    >>> tasks, outcomes = load_corpus()
    >>> text = corpus_json(tasks, outcomes)
    >>> text == _shipped_text()
    True
    >>> sorted(json.loads(text))
    ['about', 'outcomes', 'sources', 'tasks']
    """
    def line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    about = ("Generated by `python -m rewardlab.envs.swe.corpus --write` (do not edit): the task records, every "
             "candidate's recorded per-test outcome (true = passed), and a hash of each module it was built from.")
    parts = ["{", f' "about": {line(about)},', ' "sources": {']
    digest = _sources_digest()
    parts.append(",\n".join(f"  {line(k)}: {line(v)}" for k, v in digest.items()))
    parts += [" },", ' "tasks": [']
    parts.append(",\n".join("  " + line(_task_to_dict(t)) for t in tasks))
    parts += [" ],", ' "outcomes": {']
    states = ["buggy", *map(str, range(N_CANDIDATES))]  # canonical order, whatever the dict's order
    parts.append(",\n".join(f"  {line(t.task_id)}: {line({s: outcomes[t.task_id][s] for s in states})}"
                             for t in tasks))
    parts += [" }", "}", ""]
    return "\n".join(parts)


def _shipped_text() -> str:
    return files("rewardlab.envs.swe").joinpath(*CORPUS_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_corpus() -> tuple[tuple[Task, ...], dict[str, dict[str, list[bool]]]]:
    """The shipped corpus and its recorded per-candidate outcomes."""
    data = json.loads(_shipped_text())
    changed = sorted(n for n, h in _sources_digest().items() if data["sources"].get(n) != h)
    if changed or set(data["sources"]) != set(MODULES):
        raise ValueError(f"the SWE modules changed since the corpus was generated ({changed or 'module set'}); "
                         "regenerate it: python -m rewardlab.envs.swe.corpus --write")
    return tuple(_task_from_dict(d) for d in data["tasks"]), data["outcomes"]


def iter_split(split: str) -> Iterator[Task]:
    tasks, _ = load_corpus()
    for t in tasks:
        if split == "all" or t.split == split:
            yield t


def _write(path: Path) -> None:  # pragma: no cover - maintenance entry point
    from rewardlab.envs.swe.sandbox import Sandbox

    with Sandbox(workers=2) as sb:
        tasks, outcomes = generate_corpus(sb)
        problems = validate_corpus(tasks, sb)
    if problems:
        raise SystemExit("corpus invalid:\n" + "\n".join(problems))
    path.write_text(corpus_json(tasks, outcomes), encoding="utf-8", newline="\n")
    print(f"wrote {len(tasks)} tasks ({sum(t.split == 'test' for t in tasks)} test) to {path}")


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - maintenance entry point
    default = Path(__file__).parent.joinpath(*CORPUS_FILE)
    parser = argparse.ArgumentParser(prog="python -m rewardlab.envs.swe.corpus",
                                     description="Regenerate the SWE task corpus (runs every mutant in the sandbox).")
    parser.add_argument("--write", nargs="?", const=default, type=Path, metavar="PATH",
                        help=f"generate, validate and write the corpus JSON (default path: {default})")
    args = parser.parse_args(argv)
    if args.write is None:
        parser.error("nothing to do: pass --write [PATH]")
    _write(args.write)


if __name__ == "__main__":  # pragma: no cover
    main()
