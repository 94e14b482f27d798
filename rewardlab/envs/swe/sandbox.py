"""Run pytest suites on untrusted code, contained, and return per-test outcomes.

- ``Limits``: wall and CPU seconds, memory, file size, tmpfs size, process count.
- ``Sandbox``: a pool of warm fork-server workers (``_server.py``).
  ``run(files, targets)`` is a *plain* run: pytest and the code in one process, which also
  reports the outcomes -- code under test can forge them (user repositories; see the docs).
  ``run_split(code, tests, targets)`` is a *split* run: pytest runs the tests in a process that
  never executes the code; the code runs in a second process and answers the tests' requests
  with data (``_split.py``), so the verdict cannot be forged (the SWE envs use this).
  ``run_many`` runs several of either concurrently. Results are ``TestRun`` records.
- ``isolation_report()``: which ``unshare`` layers this machine gives us.
- ``run_plain``: the same suite with plain ``python -m pytest`` (the benchmark's reference).

Containment, strongest first (each layer is used when available; ``Sandbox.info`` reports them):

1. Namespaces (``unshare --pid --fork --kill-child --mount --net``, as root, or with ``--user
   --map-root-user``): no network (abstract unix sockets included); a private filesystem view with
   only ``/usr``, the interpreter (its ``site-packages`` hidden), the test dependencies and the
   workspace -- no host unix sockets, no rewardlab, no corpus; every run in its own pid and mount
   namespace with fresh ``/tmp``, ``/dev/shm``, ``/proc`` and workspace, all killed with it.
2. A cgroup per worker (v1 memory+pids or v2, when this process may create one under its own):
   resident memory and process count of the whole run.
3. As real root: tests run as ``nobody``, a split run's test process as a second uid it shares
   with nothing; as user-namespace root: no capabilities. Always ``no_new_privs``.
4. Always: a clean environment, a new session, ``RLIMIT_CPU``/``AS``/``FSIZE``/``NPROC``, a wall
   clock limit, and a host-side timeout on every request (a hung worker is killed and replaced).
5. Without a network namespace: a Python-level socket hook -- a speed bump only.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import select
import shutil
import signal
import site
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from pathlib import Path
from typing import Any

from rewardlab.errors import InvalidArgument, RewardLabError

__all__ = ["Limits", "TestRun", "Sandbox", "SandboxError", "isolation_report", "run_plain", "dependency_paths",
           "rewritten_tests"]

SERVER = Path(__file__).with_name("_server.py")
SPLIT = Path(__file__).with_name("_split.py")
VERIFIER_UID = 65533  # the split run's test process: a uid no other process uses
log = logging.getLogger(__name__)
_worker_ids = count()
_live_workers: weakref.WeakSet[_Worker] = weakref.WeakSet()
CGROUP_PREFIX = "rewardlab-"


class SandboxError(RewardLabError):
    """The sandbox itself failed (a worker died, hung twice or could not start) -- not the tests."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one test run."""

    wall_s: float = 10.0
    """wall-clock seconds before the run's processes are killed"""
    cpu_s: int = 10
    """RLIMIT_CPU seconds per process (SIGXCPU, then SIGKILL)"""
    memory_bytes: int = 1 << 30
    """RLIMIT_AS of each process and, with a cgroup, the resident memory of the whole run"""
    file_bytes: int = 8 << 20
    """RLIMIT_FSIZE: largest file the tests may write"""
    nproc: int = 32
    """process count: RLIMIT_NPROC of the unprivileged test uid, and the run cgroup's pids.max"""
    disk_bytes: int = 64 << 20
    """size of each fresh tmpfs of a run: the workspace, /tmp, /dev/shm"""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_bytes", "file_bytes", "nproc", "disk_bytes"):
            if not getattr(self, name) > 0:
                raise InvalidArgument(f"sandbox limit {name} must be > 0, got {getattr(self, name)}")

    def as_dict(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s, "memory_bytes": self.memory_bytes,
                "file_bytes": self.file_bytes, "nproc": self.nproc, "disk_bytes": self.disk_bytes}


@dataclass
class TestRun:
    """Outcome of one sandboxed pytest run.

    ``status``: ``ok`` (pytest finished), ``timeout`` (killed at the wall limit), ``crashed``
    (the test process died without finishing, e.g. ``os._exit`` or SIGXCPU), ``bad_request``.
    ``outcomes`` maps pytest node ids to ``passed``/``failed``/``error``/``skipped``; a test that
    did not report counts as not passed (``passed_mask``), and a run that did not finish (any
    status but ``ok``) reports none. ``mode`` is ``plain`` (outcomes from the process that ran the
    code) or ``split`` (outcomes from a process that never ran the code).
    """

    __test__ = False  # not a pytest class

    status: str
    outcomes: dict[str, str] = field(default_factory=dict)
    output: str = ""
    duration: float = 0.0
    cpu_s: float = 0.0
    """CPU seconds (user + system) of the run's processes"""
    collect_errors: list[str] = field(default_factory=list)
    leftover_processes: int = 0
    """processes still alive when the test process ended (killed with the run)"""
    mode: str = "plain"
    oom_kills: int = 0
    """processes the kernel killed at the run's cgroup memory limit"""

    def passed(self, test_id: str) -> bool:
        return self.outcomes.get(test_id) == "passed"

    def passed_mask(self, expected: Sequence[str]) -> list[bool]:
        return [self.passed(t) for t in expected]

    def pass_fraction(self, expected: Sequence[str]) -> float:
        return sum(self.passed_mask(expected)) / max(len(expected), 1)

    def all_passed(self, expected: Sequence[str]) -> bool:
        return self.status == "ok" and all(self.passed_mask(expected))


@lru_cache(maxsize=1)
def isolation_report() -> dict[str, Any]:
    """Which ``unshare`` prefix works here, and whether the worker will be real root."""
    report: dict[str, Any] = {"unshare": None, "root": os.geteuid() == 0, "prefix": []}
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return report
    ns = ["--pid", "--fork", "--kill-child", "--mount", "--net"]
    candidates = []
    if os.geteuid() == 0:
        candidates.append(("pid+mount+net", [exe, *ns]))
    candidates += [("user+pid+mount+net", [exe, "--user", "--map-root-user", *ns]),
                   ("user+net", [exe, "--user", "--map-root-user", "--net"]), ("net", [exe, "--net"])]
    for name, prefix in candidates:
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            report.update(unshare=name, prefix=prefix)
            break
    return report


@lru_cache(maxsize=8)
def dependency_paths(packages: tuple[str, ...] = ("pytest",)) -> tuple[str, ...]:
    """Paths of the distributions ``packages`` and everything they require (their top-level
    modules and ``.dist-info``): what the sandbox binds at ``/deps``. Nothing else installed --
    rewardlab included -- is visible to a test run."""
    from importlib import metadata

    try:  # packaging comes with pytest, which every sandbox run needs
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError as e:
        raise InvalidArgument("the SWE sandbox runs pytest: install it (pip install 'rewardlab[dev]')") from e

    todo, seen, paths = list(packages), set(), set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as e:
            raise InvalidArgument(f"sandbox test dependency {name!r} is not installed") from e
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth") or len(f.parts) == 1 and not top.endswith(".py"):
                continue
            paths.add(os.path.realpath(dist.locate_file(top)))
        for req in dist.requires or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return tuple(sorted(p for p in paths if os.path.exists(p)))


def rewritten_tests(tests: Mapping[str, str]) -> dict[str, str]:
    """Assertion-rewritten bytecode of the test files in ``tests`` (pytest's default
    ``test_*.py`` / ``*_test.py``), computed here on the host from the trusted test sources, as
    ``{"<dir>/__pycache__/<name>.<tag>-pytest-<version>.pyc": base64}`` -- the cache file pytest's
    import hook reads before rewriting a test module itself. Its header holds the source's hash,
    which pytest checks, so a stale file is ignored, never used. Empty if this pytest lacks the
    (private) functions used here: the runs then rewrite as before."""
    out = {}
    for rel, text in tests.items():
        name = rel.rsplit("/", 1)[-1]
        if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
            data = _rewritten_test(rel, text)
            if data is None:
                return {}
            out[data[0]] = data[1]
    return out


@lru_cache(maxsize=512)
def _rewritten_test(rel: str, text: str) -> tuple[str, str] | None:
    import ast
    import base64
    import importlib.util
    import io

    try:
        from _pytest.assertion import rewrite
    except ImportError:
        return None
    if not all(hasattr(rewrite, a) for a in ("rewrite_asserts", "_write_pyc_fp", "PYC_TAIL")):
        return None
    source = text.encode("utf-8")
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError:
        return None  # pytest reports the error in the run
    rewrite.rewrite_asserts(tree, source, rel, None)
    co = compile(tree, rel, "exec", dont_inherit=True)
    buf = io.BytesIO()
    rewrite._write_pyc_fp(buf, importlib.util.source_hash(source), co)
    head, _, name = rel.rpartition("/")
    path = f"{head + '/' if head else ''}__pycache__/{name[:-3]}{rewrite.PYC_TAIL}"
    return path, base64.b64encode(buf.getvalue()).decode("ascii")


def _nobody() -> tuple[int, int]:
    try:
        import pwd

        p = pwd.getpwnam("nobody")
        return p.pw_uid, p.pw_gid
    except (KeyError, ImportError):
        return 65534, 65534


def _hidden_site_dirs() -> list[str]:
    """Every directory of installed Python packages in the view (this interpreter's and the
    system's under /usr): each is covered by an empty tmpfs, so nothing installed is importable
    or readable in a run but the test dependencies at /deps."""
    dirs = set(site.getsitepackages()) | {site.getusersitepackages()}
    for prefix in {sys.base_prefix, sys.prefix, "/usr", "/usr/local"}:
        for pattern in ("lib*/python3*/site-packages", "lib*/python3*/dist-packages"):
            dirs |= {str(p) for p in Path(prefix).glob(pattern)}
    return sorted({os.path.realpath(d) for d in dirs})


def _make_cgroup(tag: str) -> dict[str, Any] | None:
    """A cgroup for one worker under this process's own cgroup (v1 memory+pids, or v2 with the
    memory controller available); ``None`` where the kernel or permissions do not allow it."""
    try:
        rows = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    except OSError:
        return None
    v1 = {c: path for hid, ctrls, path in rows if hid != "0" for c in ctrls.split(",")}
    v2 = next((path for hid, _c, path in rows if hid == "0"), None)
    base = Path("/sys/fs/cgroup")
    made: list[Path] = []
    parents = [base / c / v1[c].lstrip("/") for c in ("memory", "pids") if c in v1]
    _remove_stale_cgroups(parents + ([base / v2.lstrip("/")] if v2 is not None else []))
    try:
        if "memory" in v1 and (base / "memory" / "memory.limit_in_bytes").exists():
            mem = base / "memory" / v1["memory"].lstrip("/") / f"{CGROUP_PREFIX}{tag}"
            mem.mkdir()
            made.append(mem)
            spec = {"kind": "v1", "dirs": [str(mem)], "procs": [str(mem / "cgroup.procs")],
                    "memory": str(mem / "memory.limit_in_bytes"), "oom": str(mem / "memory.oom_control")}
            if "pids" in v1 and (base / "pids").is_dir():
                pids = base / "pids" / v1["pids"].lstrip("/") / f"{CGROUP_PREFIX}{tag}"
                pids.mkdir()
                made.append(pids)
                spec["dirs"].append(str(pids))
                spec["procs"].append(str(pids / "cgroup.procs"))
                spec["pids"] = str(pids / "pids.max")
            return spec
        if v2 is not None and (base / "cgroup.controllers").exists():
            d = base / v2.lstrip("/") / f"{CGROUP_PREFIX}{tag}"
            d.mkdir()
            made.append(d)
            if "memory" not in (d / "cgroup.controllers").read_text().split():
                raise OSError("the memory controller is not delegated here")
            return {"kind": "v2", "dirs": [str(d)], "procs": [str(d / "cgroup.procs")], "memory": str(d / "memory.max"),
                    "oom": str(d / "memory.events"), "pids": str(d / "pids.max") if (d / "pids.max").exists() else None}
    except OSError:
        for d in reversed(made):
            _rmdir(d)
    return None


def _remove_stale_cgroups(parents: list[Path]) -> None:
    """Empty worker cgroups left by a process that died without closing its sandbox (SIGKILL)."""
    for parent in parents:
        try:
            entries = list(parent.glob(f"{CGROUP_PREFIX}*-*"))
        except OSError:
            continue
        for d in entries:
            pid = d.name[len(CGROUP_PREFIX):].split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                try:
                    os.rmdir(d)  # refuses a cgroup that still has processes
                except OSError:
                    pass


def _rmdir(d: Path | str) -> None:
    for _ in range(100):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)  # the last process of the cgroup is still exiting


class _Worker:
    """One warm fork server, spoken to with a host-side timeout on every request."""

    def __init__(self, isolate: bool, packages: tuple[str, ...], preload: bool = True):
        rep = isolation_report() if isolate else {"unshare": None, "prefix": [], "root": os.geteuid() == 0}
        layers = rep["unshare"] or ""
        ns = {"mount": "mount" in layers, "pid": "pid" in layers, "net": "net" in layers,
              "user": layers.startswith("user")}
        agent, verifier = _nobody(), (VERIFIER_UID, VERIFIER_UID)
        exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
        self.cgroup = _make_cgroup(f"{os.getpid()}-{next(_worker_ids)}")
        cfg = {"ns": ns, "split_module": str(SPLIT), "cgroup": self.cgroup, "preload": bool(preload),
               "view": {"prefix": os.path.realpath(sys.base_prefix), "executable": exe, "hide": _hidden_site_dirs(),
                        "deps": list(dependency_paths(packages)), "agent_uid": agent[0], "agent_gid": agent[1],
                        "verifier_uid": verifier[0], "verifier_gid": verifier[1]}}
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([*rep["prefix"], exe, "-I", "-S", str(SERVER), json.dumps(cfg)], env={},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     start_new_session=True)
        self._out = self.proc.stdout.fileno()
        try:
            hello = self._recv(time.monotonic() + 60)
        except TimeoutError:
            hello = None
        if hello is None or not hello.get("ready"):
            err = self.stderr_tail()
            self.kill()
            raise SandboxError(f"sandbox worker failed to start: {err}")
        _live_workers.add(self)
        self.info = {"layers": layers or "none", "pid_namespace": hello["pid1"], "run_namespaces": hello["nested"],
                     "filesystem_view": ns["mount"], "cgroup": hello["cgroup"], "uid_split": hello["uid_split"],
                     "drop_uid": hello["uid_split"], "net_namespace": ns["net"], "socket_hook": not ns["net"],
                     **hello["setup"]}

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-2000:].decode(errors="replace")

    def _recv(self, deadline: float) -> dict | None:
        head = self._read(4, deadline)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        body = self._read(n, deadline)
        return None if body is None else json.loads(body.decode())

    def _read(self, n: int, deadline: float) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self._out, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def request(self, req: dict, timeout: float) -> dict:
        """One request; ``TimeoutError`` if the worker does not answer within ``timeout`` s."""
        data = json.dumps(req).encode()
        deadline = time.monotonic() + timeout
        try:
            self._write(struct.pack(">I", len(data)) + data, deadline)
        except BrokenPipeError as e:
            raise SandboxError(f"sandbox worker died: {self.stderr_tail()}") from e
        res = self._recv(deadline)
        if res is None:
            raise SandboxError(f"sandbox worker died while running tests: {self.stderr_tail()}")
        return res

    def _write(self, data: bytes, deadline: float) -> None:
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        os.set_blocking(fd, False)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue

    def kill(self) -> None:
        """SIGKILL the worker's session (``unshare`` and the server, pid 1: its namespace dies)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._cleanup()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
                return
        self._cleanup()

    def _cleanup(self) -> None:
        _live_workers.discard(self)
        for s in (self.proc.stdin, self.proc.stdout):
            if s:
                try:
                    s.close()
                except OSError:
                    pass
        self.stderr.close()
        for d in reversed((self.cgroup or {}).get("dirs", [])):
            _rmdir(d)


class Sandbox:
    """A pool of ``workers`` warm sandbox workers (started lazily, replaced if one dies or hangs).

    ``packages``: the distributions a test run may import (with their requirements), besides
    the standard library and the files of the run. ``hang_grace_s``: how long past the run's
    wall limit the host waits for a worker's answer before killing and replacing the worker
    (the request is retried once on the new worker; a second hang raises ``SandboxError``).
    ``preload`` (default): warm test collection -- each worker's zygote imports pytest's
    built-in plugins once (not once per run), and split runs get the host's assertion-rewritten
    bytecode of their trusted test files (``rewritten_tests``) instead of rewriting them in every
    run. Same outcomes either way (``tests/envs/test_swe_fast.py``); ``preload=False`` is the
    earlier path, kept for the benchmark's before/after.

    >>> sb = Sandbox(workers=1)
    >>> code = {"m.py": "def f():\\n    return 1\\n"}
    >>> tests = {"tests/test_m.py": "from m import f\\ndef test_one():\\n    assert f() == 1\\n"
    ...                             "def test_two():\\n    assert f() == 2\\n"}
    >>> run = sb.run_split(code, tests, ["tests"])
    >>> run.status, sorted(run.outcomes.items())
    ('ok', [('tests/test_m.py::test_one', 'passed'), ('tests/test_m.py::test_two', 'failed')])
    >>> sb.run({**code, **tests}, ["tests"]).outcomes == run.outcomes  # plain pytest agrees
    True
    >>> sb.close()
    """

    def __init__(self, workers: int = 2, limits: Limits | None = None, isolate: bool = True,
                 packages: Sequence[str] = ("pytest",), hang_grace_s: float = 30.0, preload: bool = True):
        if workers < 1:
            raise InvalidArgument(f"sandbox workers must be >= 1, got {workers}")
        if not hang_grace_s > 0:
            raise InvalidArgument(f"sandbox hang_grace_s must be > 0, got {hang_grace_s}")
        self.n_workers, self.limits, self.isolate = int(workers), limits or Limits(), isolate
        self.packages, self.hang_grace_s = tuple(packages), float(hang_grace_s)
        self.preload = bool(preload)
        dependency_paths(self.packages)  # an unknown package fails here, not in a worker
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.runs = 0
        self.replaced_workers = 0

    @property
    def info(self) -> dict[str, Any]:
        """Containment layers of the workers (starts one if none runs yet)."""
        w = self._take()
        self._idle.put(w)
        return dict(w.info)

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle.empty() and len(self._all) < self.n_workers:
                w = _Worker(self.isolate, self.packages, self.preload)
                self._all.append(w)
                return w
        return self._idle.get()

    def _drop(self, w: _Worker) -> None:
        with self._lock:
            if w in self._all:
                self._all.remove(w)
        w.kill()

    def run(self, files: Mapping[str, str], targets: Sequence[str], *, limits: Limits | None = None,
            pytest_args: Sequence[str] = ()) -> TestRun:
        """Plain run: ``pytest targets`` over a fresh copy of ``files`` (relative path -> text).
        The process that runs the code also reports the outcomes (see the module docstring)."""
        return self._submit({"mode": "plain", "files": dict(files), "targets": list(targets),
                             "limits": (limits or self.limits).as_dict(), "pytest_args": list(pytest_args)})

    def run_split(self, code: Mapping[str, str], tests: Mapping[str, str], targets: Sequence[str], *,
                  limits: Limits | None = None, pytest_args: Sequence[str] = ()) -> TestRun:
        """Split run: pytest over ``tests`` in a process that never runs ``code``; the tests
        reach the code's modules through a data-only channel to a second process."""
        overlap = sorted(set(code) & set(tests))
        if overlap:
            raise InvalidArgument(f"split run: paths {overlap[:3]} are both code and tests")
        req = {"mode": "split", "code": dict(code), "tests": dict(tests), "targets": list(targets),
               "limits": (limits or self.limits).as_dict(), "pytest_args": list(pytest_args)}
        if self.preload and not pytest_args:  # options could change the rewriting: then pytest does it
            req["tests_pyc"] = rewritten_tests(req["tests"])
        return self._submit(req)

    def _submit(self, req: dict) -> TestRun:
        timeout = float(req["limits"]["wall_s"]) + self.hang_grace_s
        for attempt in (1, 2):
            w = self._take()
            try:
                res = w.request(req, timeout)
            except TimeoutError:
                self._drop(w)
                self.replaced_workers += 1
                log.warning("sandbox worker did not answer within %.0f s; killed and replaced (attempt %d)",
                            timeout, attempt)
                if attempt == 2:
                    raise SandboxError(f"sandbox workers hung twice on one request ({timeout:.0f} s each)") from None
                continue
            except SandboxError:
                self._drop(w)
                raise
            if res.get("status") == "server_error":
                self._drop(w)
                raise SandboxError(f"sandbox worker error: {res.get('error')}")
            self._idle.put(w)
            self.runs += 1
            return TestRun(status=res["status"], outcomes=res.get("outcomes", {}), output=res.get("output", ""),
                           duration=float(res.get("duration", 0.0)), cpu_s=float(res.get("cpu_s", 0.0)),
                           collect_errors=res.get("collect_errors", []),
                           leftover_processes=int(res.get("leftover_processes", 0)),
                           mode=res.get("mode", req["mode"]), oom_kills=int(res.get("oom_kills", 0)))
        raise AssertionError("unreachable")

    def run_many(self, jobs: Sequence[tuple], *, split: bool = False) -> list[TestRun]:
        """Run several suites concurrently, one per worker; results in input order. Jobs are
        ``(files, targets)``, or with ``split=True`` ``(code, tests, targets)``."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.n_workers)
        one = (lambda j: self.run_split(*j)) if split else (lambda j: self.run(*j))
        return list(self._pool.map(one, jobs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        with self._lock:
            for w in self._all:
                w.close()
            self._all.clear()
            self._idle = queue.Queue()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


@atexit.register
def _close_workers_at_exit() -> None:
    """Sandboxes nobody closed (the envs' shared oracle): stop their workers, remove their cgroups."""
    for w in list(_live_workers):
        try:
            w.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def run_plain(files: Mapping[str, str], targets: Sequence[str], timeout: float = 60.0) -> tuple[int, float]:
    """``python -m pytest -q targets`` in a temp copy, no containment: (exit code, seconds)."""
    with tempfile.TemporaryDirectory(prefix="rlplain_") as d:
        for rel, text in files.items():
            p = Path(d, rel)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *targets],
                              cwd=d, capture_output=True, timeout=timeout)
        return proc.returncode, time.perf_counter() - t0
