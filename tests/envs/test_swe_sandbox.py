"""Containment of the SWE sandbox: each test runs hostile test code and checks the host.

The tests for the holes of issue #23 (host environment, links planted for the output, host unix
sockets, state across runs, a filled /tmp, re-forking processes, resident memory, rewardlab
importable, a hung worker) each failed against the sandbox before the fix.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from rewardlab.envs.swe.sandbox import Limits, Sandbox, isolation_report, run_plain

REPO = Path(__file__).resolve().parents[2]
ISOLATED = isolation_report()["unshare"] is not None
VIEW = "mount" in (isolation_report()["unshare"] or "")  # the private filesystem view
needs_view = pytest.mark.skipif(not VIEW, reason="needs a mount namespace (unshare)")


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=1, limits=Limits(wall_s=4.0, cpu_s=3, memory_bytes=512 << 20, file_bytes=1 << 20,
                                         nproc=16)) as s:
        yield s


def suite(body: str, name: str = "test_x") -> dict[str, str]:
    """A one-file suite: ``test_ok`` passes, ``name`` runs ``body``."""
    code = "import os, sys, socket, subprocess\n\ndef test_ok():\n    assert True\n\n"
    code += f"def {name}():\n" + "".join(f"    {ln}\n" for ln in body.splitlines())
    return {"tests/test_s.py": code}


def run(sb: Sandbox, body: str):
    t0 = time.monotonic()
    res = sb.run(suite(body), ["tests"])
    return res, time.monotonic() - t0


def test_reports_per_test_outcomes(sb):
    res, _ = run(sb, "assert 1 == 2")
    assert res.status == "ok"
    assert res.outcomes == {"tests/test_s.py::test_ok": "passed", "tests/test_s.py::test_x": "failed"}
    assert "assert 1 == 2" in res.output


def test_infinite_loop_is_killed_and_worker_survives(sb):
    res, _ = run(sb, "while True:\n    pass")
    assert res.status in ("timeout", "crashed")  # wall limit or RLIMIT_CPU, whichever first
    assert not res.passed("tests/test_s.py::test_x")
    assert sb.run(suite("assert True"), ["tests"]).outcomes["tests/test_s.py::test_x"] == "passed"


def test_sleeping_test_hits_wall_limit(sb):
    res, elapsed = run(sb, "import time\ntime.sleep(60)")
    assert res.status == "timeout"
    assert elapsed < 30  # killed well before the sleep ends (generous: shared CPU)


def test_fork_bomb_is_contained(sb):
    res, _ = run(sb, "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert res.status in ("timeout", "crashed", "ok")
    assert not res.passed("tests/test_s.py::test_x")
    # Nothing survives the run: a new run works and the host has no leftover bomb processes.
    assert sb.run(suite("assert True"), ["tests"]).status == "ok"


def test_huge_allocation_fails_inside_the_test(sb):
    res, _ = run(sb, "x = bytearray(8 * 1024 ** 3)")
    assert res.status == "ok"
    assert res.outcomes["tests/test_s.py::test_x"] == "failed"
    assert "MemoryError" in res.output
    assert res.passed("tests/test_s.py::test_ok")


def test_big_file_write_hits_file_size_limit(sb):
    res, _ = run(sb, "open('big.bin', 'wb').write(b'0' * (4 << 20))")
    assert not res.passed("tests/test_s.py::test_x")


@needs_view
def test_writes_outside_workspace_do_not_reach_host(sb):
    tag = uuid.uuid4().hex
    targets = [f"/tmp/outside_{tag}", str(REPO / f"outside_{tag}"), f"/dev/shm/outside_{tag}"]
    body = "written = []\n"
    for p in targets:
        body += f"try:\n    open({p!r}, 'w').write('x')\n    written.append({p!r})\nexcept OSError:\n    pass\n"
    body += "print('WRITTEN', written)"
    res, _ = run(sb, body)
    assert res.status == "ok"
    for p in targets:
        assert not os.path.exists(p), f"sandboxed test wrote {p} on the host"


@pytest.mark.skipif(not ISOLATED, reason="needs a network namespace (unshare)")
def test_socket_connection_fails(sb):
    body = ("s = socket.socket()\ns.settimeout(2)\n"
            "s.connect(('1.1.1.1', 53))")
    res, _ = run(sb, body)
    assert res.outcomes["tests/test_s.py::test_x"] == "failed"
    assert "Network is unreachable" in res.output or "PermissionError" in res.output


def test_socket_hook_without_namespace():
    """The fallback layer alone: no namespaces, Python-level socket hook."""
    with Sandbox(workers=1, isolate=False) as s:
        assert s.info["socket_hook"] and not s.info["net_namespace"]
        res = s.run(suite("socket.create_connection(('127.0.0.1', 9), timeout=1)"), ["tests"])
        assert res.outcomes["tests/test_s.py::test_x"] == "failed"
        assert "network access is disabled" in res.output


def test_os_system_cannot_escape(sb):
    tag = uuid.uuid4().hex[:12]
    marker = f"/tmp/system_{tag}"
    # A background process outliving the test, and a shell write outside the workspace.
    body = (f"os.system('sleep 1000.{int(tag, 16) % 1000} & touch {marker}')\n"
            f"assert os.system('true') == 0")
    res, _ = run(sb, body)
    assert res.outcomes["tests/test_s.py::test_x"] == "passed"
    assert not os.path.exists(marker)
    time.sleep(0.2)
    mine = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"sleep\x001000.{int(tag, 16) % 1000}".encode() in cmd:
            mine.append(pid)
    assert mine == [] or not isolation_report()["unshare"], f"background process survived: {mine}"


def test_sys_exit_and_os_exit_inside_tests(sb):
    res, _ = run(sb, "sys.exit(0)")
    assert res.status == "ok"
    assert res.outcomes["tests/test_s.py::test_x"] == "failed"  # SystemExit is a failure, not a pass
    res, _ = run(sb, "os._exit(0)")
    assert res.status == "crashed"
    assert res.passed_mask(["tests/test_s.py::test_ok", "tests/test_s.py::test_x"]) == [False, False]


def test_bad_path_is_rejected(sb):
    res = sb.run({"../escape.py": "x = 1\n", "tests/test_a.py": "def test_a():\n    pass\n"}, ["tests"])
    assert res.status == "bad_request"


def test_plain_pytest_reference_agrees():
    files = {"m.py": "def f():\n    return 1\n",
             "tests/test_m.py": "from m import f\ndef test_f():\n    assert f() == 1\n"}
    rc, _ = run_plain(files, ["tests"])
    assert rc == 0


# ---------------------------------------------------------------------------------------
# Issue #23, isolation holes 1-7 (each test failed against the sandbox before the fix)
# ---------------------------------------------------------------------------------------


def test_host_environment_does_not_reach_the_tests(monkeypatch):
    """1. A variable of the host process (an API key, say) is not visible to code under test."""
    secret = f"rl-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("REWARDLAB_TEST_SECRET", secret)
    body = (f"seen = [k for k, v in os.environ.items() if {secret!r} in v or k == 'REWARDLAB_TEST_SECRET']\n"
            "for name in os.listdir('/proc'):\n"
            "    try:\n"
            "        seen += [name] if b'REWARDLAB_TEST_SECRET' in open(f'/proc/{name}/environ', 'rb').read() else []\n"
            "    except OSError:\n"
            "        pass\n"
            "extra = [k for k in os.environ if not k.startswith('PYTEST_') and k not in {'PATH', 'HOME', 'TMPDIR', "
            "'LANG', 'PYTHONDONTWRITEBYTECODE', 'PYTEST_DISABLE_PLUGIN_AUTOLOAD'}]\n"
            "assert seen == [] and extra == [], (seen, extra)")
    with Sandbox(workers=1) as s:  # started after the variable was set
        res = s.run(suite(body), ["tests"])
    assert res.outcomes["tests/test_s.py::test_x"] == "passed", res.output


@pytest.fixture
def host_secret_file():
    """A root-only file on the host, outside the sandbox's private /tmp."""
    d = tempfile.mkdtemp(prefix="rl_secret_", dir="/var/tmp")
    path = Path(d, "secret.txt")
    marker = f"HOST-SECRET-{uuid.uuid4().hex}"
    path.write_text(marker)
    path.chmod(0o600)
    yield path, marker
    path.unlink()
    os.rmdir(d)


def test_output_is_never_read_through_a_link_the_tests_planted(sb, host_secret_file):
    """2. The tests replace every file of their workspace (the old output file among them) by a
    link to a root-only host file: its content must not come back in ``TestRun.output``."""
    path, marker = host_secret_file
    body = ("for name in set(os.listdir('.')) | {'.pytest_output.txt'}:\n"
            "    if name.endswith('.txt') or name.startswith('.'):\n"
            "        try:\n"
            "            os.remove(name)\n"
            "        except OSError:\n"
            "            pass\n"
            f"        os.symlink({str(path)!r}, name)\n"
            "print('planted')")
    res = sb.run(suite(body), ["tests"])
    assert marker not in res.output
    res = sb.run_split({"m.py": "x = 1\n"}, suite(body), ["tests"])
    assert marker not in res.output


@needs_view
def test_host_unix_sockets_are_unreachable(sb):
    """3. A unix socket of a host server (filesystem and abstract namespace) cannot be reached."""
    d = tempfile.mkdtemp(prefix="rl_sock_", dir="/var/tmp")
    os.chmod(d, 0o755)
    path = os.path.join(d, "s")
    abstract = f"\0rl_sock_{uuid.uuid4().hex}"
    accepted = []
    servers = []
    for addr in (path, abstract):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(addr)
        srv.listen(4)
        srv.settimeout(0.2)
        servers.append(srv)
    os.chmod(path, 0o777)
    stop = threading.Event()

    def serve(srv):
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.sendall(b"HOST-SOCKET-SECRET")
            conn.close()

    threads = [threading.Thread(target=serve, args=(srv,), daemon=True) for srv in servers]
    for t in threads:
        t.start()
    body = (f"for addr in ({path!r}, {abstract!r}):\n"
            "    c = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        c.connect(addr)\n"
            "        print('GOT', c.recv(100))\n"
            "    except OSError as e:\n"
            "        print('refused', e)")
    try:
        res = sb.run(suite(body), ["tests"])
    finally:
        stop.set()
        for t in threads:
            t.join()
        for srv in servers:
            srv.close()
        os.unlink(path)
        os.rmdir(d)
    assert res.status == "ok"
    assert accepted == [] and "HOST-SOCKET-SECRET" not in res.output, res.output


@needs_view
def test_tmp_and_shm_are_fresh_for_every_run(sb):
    """4. Files one run plants in /tmp and /dev/shm are gone for the next run."""
    tag = uuid.uuid4().hex
    plant = f"for d in ('/tmp', '/dev/shm'):\n    open(f'{{d}}/plant_{tag}', 'w').write('x')"
    check = (f"left = [d for d in ('/tmp', '/dev/shm') if os.path.exists(f'{{d}}/plant_{tag}')]\n"
             "assert left == [], left")
    assert sb.run(suite(plant), ["tests"]).outcomes["tests/test_s.py::test_x"] == "passed"
    res = sb.run(suite(check), ["tests"])
    assert res.outcomes["tests/test_s.py::test_x"] == "passed", res.output


@needs_view
def test_a_run_that_fills_tmp_does_not_poison_the_next(sb):
    """5. After one run fills /tmp and /dev/shm to the last page, the next run (a corpus task's
    fixed repository) still runs and reports every outcome."""
    from rewardlab.envs.swe.corpus import load_corpus

    fill = ("for d in ('/tmp', '/dev/shm'):\n"
            "    for size in (1 << 20, 1 << 12):\n"
            "        for i in range(4096):\n"
            "            try:\n"
            "                open(f'{d}/fill{size}_{i}', 'wb').write(b'0' * size)\n"
            "            except OSError:\n"
            "                break")
    sb.run(suite(fill), ["tests"])
    task = load_corpus()[0][0]
    res = sb.run(task.fix.apply(task.files), task.targets)
    assert res.status == "ok"
    assert res.all_passed(task.tests), res.output


def _host_processes_with(tag: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if tag.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not ISOLATED or "pid" not in (isolation_report()["unshare"] or ""),
                    reason="needs a pid namespace (unshare)")
def test_re_forking_processes_under_a_sub_reaper_do_not_survive():
    """6. Eight processes that keep re-forking (each generation forks the next and exits; a small
    interpreter, so a fork is faster than one listing of /proc) under a setsid'd sub-reaper:
    the run returns, and none of them is left on the host."""
    tag = f"rlhop{uuid.uuid4().hex[:8]}"
    hop = ("import os\nwhile True:\n    try:\n        if os.fork():\n            os._exit(0)\n"
           "    except OSError:\n        pass\n")
    body = ("import ctypes, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER\n"
            "    for k in range(8):\n"
            "        if os.fork() == 0:\n"
            f"            os.execv(sys.executable, [sys.executable, '-I', '-S', '-c', {hop!r}, {tag!r}])\n"
            "    while True:\n"
            "        try:\n"
            "            os.wait()\n"
            "        except ChildProcessError:\n"
            "            pass\n"
            "time.sleep(0.5)")
    with Sandbox(workers=1, limits=Limits(wall_s=4.0)) as sb:  # default nproc: the hoppers rarely fail to fork
        t0 = time.monotonic()
        res = sb.run(suite(body), ["tests"])
        assert time.monotonic() - t0 < 30
        assert res.outcomes["tests/test_s.py::test_x"] == "passed"
        time.sleep(0.3)
        assert _host_processes_with(tag) == []
        assert sb.run(suite("assert True"), ["tests"]).status == "ok"  # the worker still serves


def test_resident_memory_of_the_whole_run_is_limited():
    """7. Four processes of 200 MiB each cannot all be resident under a 512 MiB limit (each one
    alone fits its 512 MiB address-space limit): either not all four get their memory, or the
    limit's OOM kill ends one that had it (the kernel picks the largest, which may already have
    said so: counting the holders alone was flaky)."""
    body = ("r, w = os.pipe()\n"
            "kids = []\n"
            "for i in range(4):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        try:\n"
            "            block = b'1' * (200 << 20)\n"
            "            os.write(w, b'H')\n"
            "            time.sleep(4)\n"
            "        finally:\n"
            "            os._exit(0)\n"
            "    kids.append(pid)\n"
            "os.close(w)\n"
            "held = 0\n"
            "deadline = time.time() + 3\n"
            "import select\n"
            "while held < 4 and time.time() < deadline:\n"
            "    if select.select([r], [], [], deadline - time.time())[0]:\n"
            "        chunk = os.read(r, 4)\n"
            "        if not chunk:\n"
            "            break\n"
            "        held += len(chunk)\n"
            "print(f'HOLDING {held}', flush=True)\n"
            "killed = 0\n"
            "for pid in kids:\n"
            "    status = os.waitpid(pid, 0)[1]\n"
            "    killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9\n"
            "print(f'KILLED {killed}', flush=True)")
    with Sandbox(workers=1, limits=Limits(wall_s=20.0, memory_bytes=512 << 20, nproc=16)) as s:
        if s.info["cgroup"] is None:
            pytest.skip("no cgroup here: memory is limited per process (RLIMIT_AS) only")
        res = s.run(suite("import time\n" + body), ["tests"], pytest_args=["-s"])  # -s: HOLDING in the output
    held = re.search(r"HOLDING (\d)", res.output)
    killed = re.search(r"KILLED (\d)", res.output)
    assert held is not None and (int(held[1]) < 4 or (killed is not None and int(killed[1]) >= 1)), res.output
    assert res.oom_kills >= 1


@needs_view
def test_rewardlab_and_the_corpus_are_not_reachable_from_a_run(sb):
    """11 (containment side): rewardlab is neither importable nor readable inside a run, and
    installed packages are hidden (this interpreter's and the system's); pytest is there."""
    body = (f"assert not os.path.exists({str(REPO / 'rewardlab')!r})\n"
            "import glob, importlib.util, sys\n"
            "assert importlib.util.find_spec('rewardlab') is None\n"
            "assert importlib.util.find_spec('numpy') is None\n"
            "assert importlib.util.find_spec('pytest') is not None\n"
            "top = set(os.listdir('/')) - {'usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'dev', 'etc', "
            "'deps', 'proc', 'tmp', 'workspace', 'verifier'}\n"
            "assert top <= {sys.base_prefix.split('/')[1]}, top\n"
            "hits = []\n"
            "for d, dirs, fs in os.walk('/'):\n"
            "    dirs[:] = [x for x in dirs if d != '/' or x not in ('proc', 'usr')]\n"
            "    hits += [os.path.join(d, f) for f in fs + dirs if 'rewardlab' in f or f == 'corpus.json']\n"
            "pats = ('/usr/lib*/python3*/*-packages', '/usr/local/lib*/python3*/*-packages',\n"
            "        sys.base_prefix + '/lib/python3*/*-packages')\n"
            "pkgs = [p for pat in pats for p in glob.glob(pat) if os.listdir(p)]\n"
            "assert hits == [] and pkgs == [], (hits, pkgs)")
    res = sb.run(suite(body), ["tests"])
    assert res.outcomes["tests/test_s.py::test_x"] == "passed", res.output


def test_a_hung_worker_is_killed_and_replaced():
    """Every request has a host-side timeout: a worker that stops answering is killed, replaced,
    and the request retried on the new worker."""
    with Sandbox(workers=1, limits=Limits(wall_s=2.0), hang_grace_s=3.0) as s:
        assert s.run(suite("assert True"), ["tests"]).status == "ok"
        (worker,) = s._all
        server = int(Path(f"/proc/{worker.proc.pid}/task/{worker.proc.pid}/children").read_text().split()[0])
        os.kill(server, signal.SIGSTOP)  # the server stops answering (a hang, from the host's side)
        t0 = time.monotonic()
        res = s.run(suite("assert True"), ["tests"])
        elapsed = time.monotonic() - t0
        assert res.status == "ok" and res.passed("tests/test_s.py::test_x")
        assert s.replaced_workers == 1 and s._all[0] is not worker
        assert 4.5 <= elapsed < 60
        time.sleep(0.2)
        assert not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2]


# ---------------------------------------------------------------------------------------
# Split runs: the tests in one process, the code under test in another
# ---------------------------------------------------------------------------------------

SHAPES = '''\
import collections

Point = collections.namedtuple("Point", "x y")
LIMIT = 3


class ShapeError(ValueError):
    pass


class Box:
    def __init__(self, w, h):
        if w <= 0:
            raise ShapeError(f"bad width {w}")
        self.w, self.h = w, h

    def area(self):
        return self.w * self.h

    def __len__(self):
        return 4

    def __eq__(self, other):
        return isinstance(other, Box) and (self.w, self.h) == (other.w, other.h)


def corner(b):
    return Point(b.w, b.h)


def grow(items):
    items.append(len(items))


def shout(msg):
    print(msg.upper())
    return len(msg)


def lookup(d, k):
    return d[k]


def evens(n):
    return (i for i in range(n) if i % 2 == 0)


def ratio(a, b):
    return a / b


def stats(xs):
    return {"min": min(xs), "max": max(xs), "set": set(xs), "pair": (xs[0], xs[-1]), "raw": bytes(xs), "c": 1j}
'''
SHAPES_TESTS = '''\
import pytest

import shapes
from pkg.sub import twice
from shapes import Box, ShapeError, corner, evens, grow, lookup, ratio, shout, stats


def test_function_constant_and_submodule():
    assert twice(21) == 42 and shapes.LIMIT == 3


def test_objects():
    b = Box(2, 3)
    assert b.area() == 6 and len(b) == 4 and b.w == 2
    b.w = 5
    assert b.area() == 15


def test_equality_between_objects_and_isinstance():
    assert Box(1, 2) == Box(1, 2) and Box(1, 2) != Box(2, 1)
    assert isinstance(Box(1, 1), Box) and not isinstance(3, Box)


def test_named_tuple():
    p = corner(Box(4, 5))
    assert p == (4, 5) and p.x == 4 and isinstance(p, tuple)


def test_exceptions():
    with pytest.raises(ShapeError, match="bad width"):
        Box(0, 1)
    with pytest.raises(ValueError):
        Box(-1, 1)
    with pytest.raises(KeyError) as e:
        lookup({"a": 1}, "b")
    assert e.value.args == ("b",)
    with pytest.raises(ZeroDivisionError):
        ratio(1, 0)


def test_mutated_argument():
    xs = [1, 2]
    grow(xs)
    assert xs == [1, 2, 2]


def test_printed_output(capsys):
    assert shout("hi") == 2
    assert capsys.readouterr().out == "HI\\n"


def test_iteration_and_plain_data():
    assert list(evens(7)) == [0, 2, 4, 6]
    assert stats([3, 1, 2]) == {"min": 1, "max": 3, "set": {1, 2, 3}, "pair": (3, 2), "raw": b"\\x03\\x01\\x02",
                                "c": 1j}


def test_fails_plainly():
    assert ratio(1, 4) == 0.3


def test_error_in_code():
    assert lookup({}, "x") == 1
'''


def test_split_run_agrees_with_one_process_pytest(sb):
    """Functions, classes, attributes, ==, isinstance, named tuples, builtin and custom exceptions,
    arguments changed in place, printed output, iteration, plain data: the same outcomes."""
    code = {"shapes.py": SHAPES, "pkg/__init__.py": "", "pkg/sub.py": "def twice(x):\n    return 2 * x\n"}
    tests = {"tests/test_shapes.py": SHAPES_TESTS}
    split = sb.run_split(code, tests, ["tests"])
    plain = sb.run({**code, **tests}, ["tests"])
    expected = {f"tests/test_shapes.py::{name}": "passed" for name in (
        "test_function_constant_and_submodule", "test_objects", "test_equality_between_objects_and_isinstance",
        "test_named_tuple", "test_exceptions", "test_mutated_argument", "test_printed_output",
        "test_iteration_and_plain_data")}
    expected.update({"tests/test_shapes.py::test_fails_plainly": "failed",
                     "tests/test_shapes.py::test_error_in_code": "failed"})
    assert split.mode == "split" and split.status == "ok"
    assert split.outcomes == expected, split.output
    assert plain.outcomes == expected, plain.output
    assert "shapes.py:41: in lookup" in split.output  # the code's traceback, pytest-style
    assert "_split.py" not in split.output and split.leftover_processes == 0


def test_split_code_process_sees_no_tests_no_pytest_and_no_test_process(sb):
    """The code process: no test files, pytest not importable or loaded; as real root it runs as
    another uid than the test process and cannot see it. The test process cannot read the code,
    and the two share no /tmp."""
    code = {"probe.py": (
        "import importlib.util, os, sys\n"
        "open('/tmp/from_code', 'w').write('x')\n"
        "def facts():\n"
        "    return {'tests': [d for d in ('/verifier', 'tests') if os.path.isdir(d) and os.listdir(d)],\n"
        "            'pytest_importable': importlib.util.find_spec('pytest') is not None,\n"
        "            'pytest_loaded': sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')),\n"
        "            'processes': sorted(int(p) for p in os.listdir('/proc')\n"
        "                                if p.isdigit() and int(p) != os.getpid()),\n"
        "            'uid': os.getuid()}\n")}
    tests = {"tests/test_probe.py": (
        "import os, sys\n"
        "from probe import facts\n"
        "def test_facts():\n"
        "    f = facts()\n"
        "    assert f['tests'] == [] and not f['pytest_importable'] and f['pytest_loaded'] == []\n"
        "    if os.getuid() != 0:\n"
        "        assert f['processes'] == [] and f['uid'] != os.getuid()\n"
        "    assert type(sys.modules['probe']).__name__ == 'RemoteModule'\n"
        "    assert not os.path.exists('/tmp/from_code')  # no writable place in common\n"
        "    assert not os.path.isdir('/workspace') or os.listdir('/workspace') == []\n")}
    res = sb.run_split(code, tests, ["tests"])
    assert res.outcomes == {"tests/test_probe.py::test_facts": "passed"}, res.output
    if VIEW and sb.info["uid_split"]:
        res = sb.run_split(code, {"tests/test_uid.py": "import os\ndef test_uid():\n    assert os.getuid() != 0\n"},
                           ["tests"])
        assert res.passed("tests/test_uid.py::test_uid")  # so the uid branch above did run


def test_split_run_when_the_code_crashes_or_hangs():
    """The code process dying fails the tests that still need it (the run finishes: ``ok``); code
    that hangs times the run out, and a run that does not finish reports no outcome (as plain)."""
    code = {"m.py": "import os\ndef ok():\n    return 1\ndef die():\n    os._exit(0)\ndef hang():\n    while True:\n"
                    "        pass\n"}
    crash = {"tests/test_m.py": "from m import die, ok\ndef test_a():\n    assert ok() == 1\n"
                                "def test_b():\n    die()\ndef test_c():\n    assert ok() == 1\n"}
    hang = {"tests/test_m.py": crash["tests/test_m.py"].replace("die", "hang")}
    with Sandbox(workers=1, limits=Limits(wall_s=3.0, cpu_s=10)) as s:
        res = s.run_split(code, crash, ["tests"])
        assert res.status == "ok"
        assert res.outcomes == {"tests/test_m.py::test_a": "passed", "tests/test_m.py::test_b": "failed",
                                "tests/test_m.py::test_c": "failed"}
        res = s.run_split(code, hang, ["tests"])
        assert res.status == "timeout" and res.outcomes == {}
        res = s.run({**code, **hang}, ["tests"])
        assert res.status == "timeout" and res.outcomes == {}


def test_split_run_rejects_overlapping_paths(sb):
    from rewardlab.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="both code and tests"):
        sb.run_split({"tests/test_a.py": ""}, {"tests/test_a.py": ""}, ["tests"])


def _user_namespace_prefix() -> list[str] | None:
    import shutil
    import subprocess

    exe = shutil.which("unshare")
    if exe is None:
        return None
    prefix = [exe, "--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--mount", "--net"]
    ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    return prefix if ok else None


def test_user_namespace_layer_as_an_unprivileged_user_gets_it(monkeypatch):
    """The layer non-root users get (forced here, whoever runs the tests): root of a user namespace
    with no capability and no_new_privs, the private view, and split verdicts."""
    from rewardlab.envs.swe import sandbox

    prefix = _user_namespace_prefix()
    if prefix is None:
        pytest.skip("unprivileged user namespaces are not available")
    monkeypatch.setattr(sandbox, "isolation_report",
                        lambda: {"unshare": "user+pid+mount+net", "root": os.geteuid() == 0, "prefix": prefix})
    body = ("status = dict(line.split(':\t', 1) for line in open('/proc/self/status').read().splitlines())\n"
            "assert status['CapEff'].strip() == status['CapBnd'].strip() == '0000000000000000'\n"
            "assert status['NoNewPrivs'].strip() == '1'\n"
            "import importlib.util\n"
            "assert importlib.util.find_spec('rewardlab') is None\n"
            "assert not [k for k in os.environ if k not in ('PATH', 'HOME', 'TMPDIR', 'LANG',\n"
            "            'PYTHONDONTWRITEBYTECODE') and not k.startswith('PYTEST_')]")
    with Sandbox(workers=1) as s:
        assert s.info["layers"] == "user+pid+mount+net" and not s.info["uid_split"]
        res = s.run(suite(body), ["tests"])
        assert res.outcomes.get("tests/test_s.py::test_x") == "passed", (res.status, res.output)
        code = {"m.py": "import _pytest.python as p\np.Function.runtest = lambda self: None\ndef f():\n    return 1\n"}
        code_ok = {"m.py": "import sys\nsys.path.append('/deps')\n" + code["m.py"]}
        tests = {"tests/test_m.py": "from m import f\ndef test_f():\n    assert f() == 2\n"}
        res = s.run_split(code, tests, ["tests"])  # no pytest in the code process: the import fails
        assert res.outcomes == {} and res.collect_errors == ["tests/test_m.py"]
        assert s.run_split(code_ok, tests, ["tests"]).outcomes == {"tests/test_m.py::test_f": "failed"}


def _worker_cgroups(pid: int) -> list[Path]:
    return [d for h in ("memory", "pids", "") for d in Path("/sys/fs/cgroup", h).glob(f"**/rewardlab-{pid}-*")]


def test_worker_cgroups_do_not_outlive_their_process():
    """A process that exits without closing its sandbox leaves no cgroup behind; one that was
    SIGKILLed leaves its (empty) cgroups until the next sandbox starts, which removes them."""
    import subprocess
    import sys

    script = ("from rewardlab.envs.swe.sandbox import Sandbox\n"
              "sb = Sandbox(workers=1)\n"
              "print(sb.info['cgroup'], flush=True)\n"
              "sb.run({'tests/test_a.py': 'def test_a():\\n    pass\\n'}, ['tests'])\n"
              "print('ran', flush=True)\n")
    done = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = done.communicate(timeout=120)
    if out.split()[0] == "None":
        pytest.skip("no cgroup here")
    assert done.returncode == 0, err
    assert _worker_cgroups(done.pid) == []
    killed = subprocess.Popen([sys.executable, "-c", script + "import time\ntime.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() != "None"
    assert killed.stdout.readline().strip() == "ran"  # killed between runs: its cgroups are empty
    assert _worker_cgroups(killed.pid)
    killed.kill()
    killed.wait()
    time.sleep(0.5)  # the worker's namespace dies with it (unshare --kill-child)
    with Sandbox(workers=1) as s:
        assert s.info["cgroup"] is not None  # starting a worker removes stale cgroups
        assert _worker_cgroups(killed.pid) == []
