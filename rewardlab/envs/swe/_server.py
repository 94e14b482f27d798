"""Sandbox worker: a warm fork server that runs pytest suites on untrusted code, contained.

Started by :mod:`rewardlab.envs.swe.sandbox` as a script (``python -I -S _server.py CONFIG``)
with an empty environment, normally as pid 1 of fresh pid, mount and network namespaces
(``unshare``); it never imports rewardlab, and ``-S`` keeps every ``.pth`` file (the editable
install's among them) from running. Protocol on stdin/stdout: 4-byte big-endian length + JSON.

Processes, all inside the worker's pid namespace:

- **server** (pid 1, root): once, builds the private filesystem view and pivots into it; per
  request writes the files into a fresh workspace, hands the run to the zygote, reads the run's
  output and results from pipes (it never opens a path the tests could have touched), checks
  that no process of the run is left, and answers.
- **zygote**: forked before the first request, so its memory never held a request (no earlier
  repository -- say, a fixed one -- can be read back from a test's copy of it); imports pytest
  once (the warm part; with ``preload`` also its plugins, then freezes its heap out of the GC)
  and forks one run leader per request. A split run's test files may come with the host's
  assertion-rewritten bytecode (``_write_pycs``), written beside them in the test directory.
- **run leader**: joins the worker's cgroup, enters a new pid + mount namespace, forks the run's
  init, enforces the wall-clock limit (SIGKILL to the init ends the whole run namespace), and
  reports exit status, CPU time, leftovers and OOM kills.
- **run init** (pid 1 of the run's namespace): fresh ``/proc`` (``hidepid=2``), ``/tmp`` and
  ``/dev/shm``; forks the test process (plain run) or the test and code processes (split run,
  ``_split.py``); when the test process exits it exits too, and the kernel kills whatever is left.

The view (``build_view``): a tmpfs root holding read-only binds of ``/usr`` (and the
``/bin``-style links), the interpreter's prefix with its ``site-packages`` covered by empty
tmpfs, the test dependencies at ``/deps`` (pytest and its requirements only), four ``/dev``
nodes, a two-line ``/etc``, and mount points for the per-run tmpfs. No ``/home``, ``/root``,
``/run``, ``/var``, ``/sys`` or host ``/tmp``: no host unix socket, no rewardlab, no corpus.
"""

from __future__ import annotations

import base64
import ctypes
import gc
import importlib.util
import json
import os
import platform
import resource
import select
import signal
import socket
import struct
import sys
import time

CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
ST_RELATIME = 4096
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 4, 24, 28
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
SECBITS_LOCKED_NOROOT = 0xC3  # NOROOT, NO_CAP_AMBIENT_RAISE and their locks
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())

WORKSPACE, VERIFIER = "/workspace", "/verifier"
OUTPUT_KEEP = 256 << 10  # bytes of the run's output kept (the tail)
RESULTS_MAX = 16 << 20
DEV_NODES = ("null", "zero", "full", "random", "urandom")
TEST_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py", "_rl_split")
OUTCOMES = ("passed", "failed", "error", "skipped")

_libc = ctypes.CDLL(None, use_errno=True)


def _b(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(src), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), f"mount {target}")


def umount(target: str) -> None:
    _check(_libc.umount2(_b(target), MNT_DETACH), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def prctl(option: int, arg: int = 0, arg3: int = 0) -> int:
    return _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(arg3), ctypes.c_ulong(0),
                       ctypes.c_ulong(0))


def pivot_root(new: str) -> None:
    """Make ``new`` the root; the old root is detached (nothing of it stays reachable)."""
    os.chdir(new)
    if SYS_PIVOT_ROOT is not None:
        _check(_libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), b".", b"."), "pivot_root")
        umount(".")  # the old root, stacked on "." by pivot_root(".", ".")
    else:  # other architectures: move the new root over / (the old one stays below, unreachable)
        mount(new, "/", None, MS_BIND | MS_REC)
        os.chroot(".")
    os.chdir("/")


def _mount_flags(path: str) -> int:
    """The per-mount flags of ``path`` a read-only remount must keep (locked in user namespaces)."""
    f = os.statvfs(path).f_flag
    flags = f & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    return flags | (MS_RELATIME if f & ST_RELATIME else 0)


# ---------------------------------------------------------------------------------------
# The private filesystem view (once per worker, as root of its mount namespace)
# ---------------------------------------------------------------------------------------


def build_view(view: dict) -> dict:
    """Pivot into a tmpfs root holding only what a test run needs. Returns what was done."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    held: list[tuple[int, str, bool]] = []  # (O_PATH fd of the source, destination, is a dir)

    def hold(src: str, dest: str) -> None:
        held.append((os.open(src, os.O_PATH | os.O_CLOEXEC), dest, os.path.isdir(src)))

    links = []
    hold("/usr", "/usr")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = "/" + name
        if os.path.islink(p):
            links.append((p, os.readlink(p)))
        elif os.path.isdir(p):
            hold(p, p)
    prefix = view["prefix"]
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        hold(prefix, prefix)
    for dep in view["deps"]:
        hold(dep, "/deps/" + os.path.basename(dep))
    for node in DEV_NODES:
        hold("/dev/" + node, "/dev/" + node)
    if os.path.exists("/etc/ld.so.cache"):
        hold("/etc/ld.so.cache", "/etc/ld.so.cache")
    # Sources are held by fd: the new root may cover their path (a checkout under /tmp).
    new = "/tmp"
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    for d in ("/dev", "/etc", "/deps", "/proc", "/tmp", WORKSPACE, VERIFIER):
        os.makedirs(new + d, mode=0o755, exist_ok=True)
    mount("tmpfs", new + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    os.mkdir(new + "/dev/shm", 0o755)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    for p, target in links:
        os.symlink(target, new + p)
    with open(new + "/etc/passwd", "w") as f:
        f.write(f"root:x:0:0:root:/:/bin/sh\nverifier:x:{view['verifier_uid']}:{view['verifier_gid']}::/:/bin/sh\n"
                f"nobody:x:{view['agent_uid']}:{view['agent_gid']}::/:/bin/sh\n")
    with open(new + "/etc/group", "w") as f:
        f.write(f"root:x:0:\nverifier:x:{view['verifier_gid']}:\nnobody:x:{view['agent_gid']}:\n")
    done: dict = {"bound": [], "hidden": []}
    for fd, dest, is_dir in held:
        target = new + dest
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if is_dir:
            os.makedirs(target, mode=0o755, exist_ok=True)
        elif not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)
        done["bound"].append(dest)
    for path in view["hide"]:  # site-packages of the interpreter: nothing installed is visible
        if os.path.isdir(new + path):
            mount("tmpfs", new + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=755")
            done["hidden"].append(path)
    # Before the pivot: in a user namespace a new procfs needs a fully visible one (the host's) around.
    mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    pivot_root(new)
    with open("/proc/self/mountinfo") as f:
        points = [row.split()[4].replace("\\040", " ") for row in f]
    for mp in points:  # everything read-only but /proc (and the /dev nodes, which are devices)
        if mp == "/proc" or mp.startswith("/proc/") or mp.startswith("/dev/"):
            continue
        mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | _mount_flags(mp))
    return done


def fresh_tmpfs(path: str, size: int, mode: str = "755") -> None:
    """A new, empty tmpfs at ``path`` (whatever was mounted there before is detached)."""
    while os.path.ismount(path):
        umount(path)
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(size)},mode={mode}")


# ---------------------------------------------------------------------------------------
# cgroup (v1 memory+pids or v2), opened by the server before the pivot
# ---------------------------------------------------------------------------------------


class Cgroup:
    """File descriptors of the worker's cgroup: join, set limits, count OOM kills, kill all."""

    def __init__(self, spec: dict):
        self.kind = spec["kind"]
        self.procs = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in spec["procs"]]
        # cgroup.procs is re-opened for every read (v1 serves a cached pid list to an open file).
        self.dir = os.open(os.path.dirname(spec["procs"][0]), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.memory = os.open(spec["memory"], os.O_WRONLY | os.O_CLOEXEC)
        self.pids = os.open(spec["pids"], os.O_WRONLY | os.O_CLOEXEC) if spec.get("pids") else None
        self.oom = os.open(spec["oom"], os.O_RDONLY | os.O_CLOEXEC)
        self.limits: tuple[int, int] | None = None

    def set_limits(self, memory: int, pids: int) -> None:
        if self.limits != (memory, pids):
            os.pwrite(self.memory, str(int(memory)).encode(), 0)
            if self.pids is not None:
                os.pwrite(self.pids, str(int(pids)).encode(), 0)
            self.limits = (memory, pids)

    def join(self) -> None:
        for fd in self.procs:
            os.write(fd, b"0")

    def oom_kills(self) -> int:
        for line in os.pread(self.oom, 4096, 0).decode().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def members(self) -> list[int]:
        fd = os.open("cgroup.procs", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir)
        try:
            data = b""
            while chunk := os.read(fd, 1 << 16):
                data += chunk
        finally:
            os.close(fd)
        return [int(p) for p in data.split()]

    def kill_all(self, spare: int) -> int:
        """SIGKILL every member but ``spare`` until none is left (re-forking ones included)."""
        killed = 0
        for _ in range(5000):
            pids = [p for p in self.members() if p != spare]
            if not pids:
                return killed
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.001)
        raise RuntimeError("processes of the run survive repeated SIGKILL")


# ---------------------------------------------------------------------------------------
# Children: identity, limits, descriptors
# ---------------------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    """Root of a user namespace has no other uid to become: give up every capability instead."""
    for cap in range(64):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    _check(prctl(PR_SET_SECUREBITS, SECBITS_LOCKED_NOROOT), "securebits")
    head, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(head), ctypes.byref(data)), "capset")


def _close_fds_except(keep: set[int]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def enter_child(cfg: dict, cmd: dict, out_w: int, keep: set[int], uid: int | None, gid: int | None, cwd: str,
                hide: str | None, paths: list[str], dumpable: bool = True, own_tmp: bool = False) -> None:
    """Everything a test or code process does before running anything untrusted. ``hide``: the
    other process's directory, unmounted from this one's view; ``own_tmp``: a /tmp and /dev/shm
    of its own (the split run's test process shares nothing writable with the code)."""
    lim = cmd["limits"]
    cpu = int(lim["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim["memory_bytes"], lim["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_bytes"], lim["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    _close_fds_except(keep)
    if hide is not None and cfg["ns"]["mount"]:  # the other process's files are not in this view
        unshare(CLONE_NEWNS)
        umount(hide)
        for path in ("/tmp", "/dev/shm") if own_tmp else ():
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(lim['disk_bytes'])},mode=1777")
    if cfg["ns"]["user"]:
        _drop_capabilities()
    elif uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    _check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    if not dumpable:
        prctl(PR_SET_DUMPABLE, 0)
    # NPROC counts processes of the (unprivileged) real uid; root ignores it, hence the uid drop.
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cwd, "TMPDIR": cfg["tmp"], "LANG": "C.UTF-8",
                       "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    sys.dont_write_bytecode = True
    sys.path[:] = paths
    sys.path_importer_cache.clear()
    if not cfg["ns"]["net"]:
        _block_sockets()


def _block_sockets() -> None:
    """Fallback when no network namespace exists: refuse connects from Python code."""

    def refuse(*_a, **_k):
        raise PermissionError("network access is disabled in the rewardlab sandbox")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.socket.sendto = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


class Collect:
    """pytest plugin: per-test outcome, streamed as JSON lines to ``fd`` (the last line per test wins)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.outcomes: dict[str, str] = {}
        self.collect_errors: list[str] = []

    def _emit(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data):]

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call":
            outcome = report.outcome
        elif report.failed:
            outcome = "error"
        elif report.skipped:
            outcome = "skipped"
        else:
            return
        if self.outcomes.get(report.nodeid, "passed") == "passed" and self.outcomes.get(report.nodeid) != outcome:
            self.outcomes[report.nodeid] = outcome
            self._emit({"t": report.nodeid, "o": outcome})

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collect_errors.append(report.nodeid or "<session>")

    def done(self, rc: int) -> None:
        self._emit({"done": rc, "errors": self.collect_errors})


def run_pytest(cmd: dict, res_w: int, rootdir: str) -> None:
    import pytest

    plugin = Collect(res_w)
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", rootdir, "--confcutdir", rootdir,
            "-o", "addopts=", *cmd.get("pytest_args", []), *cmd["targets"]]
    try:
        rc = int(pytest.main(args, plugins=[plugin]))
    except BaseException as e:  # noqa: BLE001 - anything the tests raise past pytest
        plugin.collect_errors.append(f"pytest raised {type(e).__name__}")
        rc = 99
    sys.stdout.flush()
    sys.stderr.flush()
    plugin.done(rc)


# ---------------------------------------------------------------------------------------
# Zygote, run leader, run init
# ---------------------------------------------------------------------------------------


def zygote(sock: socket.socket, cfg: dict, cg: Cgroup | None, split) -> None:
    """Fork one run leader per command; never sees a request's files."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)
    sys.path[:] = [*cfg["stdlib"], *cfg["deps_path"]]
    import pytest  # noqa: F401 - the warm part: every run forks from a process that imported it

    if cfg.get("preload"):
        _preload()
        # Everything the zygote holds now lives as long as it does: out of the collector's reach,
        # so the full collections pytest runs at the end of every session (its unraisable-
        # exception plugin) do not traverse the warm heap in each run, nor copy its pages.
        gc.collect()
        gc.freeze()

    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 8)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        cmd = json.loads(msg.decode())
        pid = os.fork()
        if pid == 0:
            sock.close()
            leader(cmd, fds, cfg, cg, split)
        for fd in fds:
            os.close(fd)
        os.waitpid(pid, 0)
        sock.send(b"reaped")  # the server sweeps only after this: the leader is gone


# What ``pytest.main`` imports on every run beyond ``import pytest``: its built-in plugins and
# the standard-library modules they import when configured (pdb for ``debugging``, unittest,
# xml.etree for ``junitxml``). Trusted code only, imported once by the zygote instead of once per
# run; the code process of a split run drops them again (``PRELOADED``), so the repository's own
# modules resolve exactly as without the preload.
PRELOAD_STDLIB = ("pdb", "unittest", "xml.etree.ElementTree", "faulthandler")
PRELOADED: set[str] = set()


def _preload() -> None:
    before = set(sys.modules)
    import _pytest.config

    for name in _pytest.config.default_plugins:
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:
            pass
    for name in PRELOAD_STDLIB:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    PRELOADED.update(set(sys.modules) - before)
    # pytest's report of a failing test looks its source up with inspect.getmodule, whose first
    # call maps the file of every loaded module (~400 here): done once here, not in every run.
    import inspect

    inspect.getmodule(_preload.__code__)


def leader(cmd: dict, fds: list[int], cfg: dict, cg: Cgroup | None, split) -> None:
    """Run leader: cgroup, run namespaces, the wall-clock limit, the report. Never returns."""
    out_w, res_w, rep_w = fds
    report: dict = {}
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if cg is not None:
            cg.join()
        oom0 = cg.oom_kills() if cg is not None else 0
        if cfg["nested"]:
            unshare(CLONE_NEWPID | CLONE_NEWNS)
        info_r, info_w = os.pipe()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(rep_w)
            os.close(info_r)
            run_init(cmd, out_w, res_w, info_w, cfg, cg, split)
        os.close(out_w)
        os.close(res_w)
        os.close(info_w)
        status, usage, timed_out = _wait_with_deadline(pid, t0 + float(cmd["limits"]["wall_s"]))
        try:  # the run's session (without a pid namespace the init's death does not end it)
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        report["duration"] = time.perf_counter() - t0
        report["timeout"] = timed_out
        report["exit"] = os.waitstatus_to_exitcode(status)
        report["cpu_s"] = usage.ru_utime + usage.ru_stime
        leftovers = os.read(info_r, 64)
        report["leftovers"] = int(leftovers) if leftovers.strip().isdigit() else 0
        if cg is not None:
            report["leftovers"] += cg.kill_all(spare=os.getpid())  # nonzero only without pid namespaces
            report["oom_kills"] = cg.oom_kills() - oom0
    except BaseException as e:  # noqa: BLE001 - reported to the server, which fails the request
        report["error"] = f"{type(e).__name__}: {e}"
    try:
        os.write(rep_w, json.dumps(report).encode())
    finally:
        os._exit(0)


def _wait_with_deadline(pid: int, deadline: float):
    """``(wait status, rusage, timed out)``; SIGKILL at the deadline (the run namespace's init)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    delay = 0.0005
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return status, usage, False
        left = deadline - time.perf_counter()
        if left <= 0:
            try:
                os.killpg(pid, signal.SIGKILL)  # the run's session (its init leads it)
            except ProcessLookupError:
                os.kill(pid, signal.SIGKILL)  # the init has not made its session yet
            _, status, usage = os.wait4(pid, 0)
            return status, usage, True
        if pidfd is not None:
            select.select([pidfd], [], [], left)
        else:
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, 0.01)


def run_init(cmd: dict, out_w: int, res_w: int, info_w: int, cfg: dict, cg: Cgroup | None, split) -> None:
    """pid 1 of the run's namespace: fresh /proc, /tmp, /dev/shm; the test (and code) process."""
    code = 70
    try:
        os.setsid()  # one session for the run: the test and code processes stay in it
        lim = cmd["limits"]
        if cfg["nested"]:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
            for path in ("/tmp", "/dev/shm"):
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(lim['disk_bytes'])},mode=1777")
        workspace, verifier = cmd["workspace"], cmd.get("verifier")
        if cmd["mode"] == "plain":
            pid = os.fork()
            if pid == 0:
                _plain_child(cmd, out_w, res_w, cfg, workspace)
            others: list[int] = []
        else:
            t2c_r, t2c_w = os.pipe()
            c2t_r, c2t_w = os.pipe()
            code_pid = os.fork()
            if code_pid == 0:
                _code_child(cmd, out_w, t2c_r, c2t_w, cfg, workspace, verifier, split)
            pid = os.fork()
            if pid == 0:
                _test_child(cmd, out_w, res_w, c2t_r, t2c_w, cfg, workspace, verifier, split)
            for fd in (t2c_r, t2c_w, c2t_r, c2t_w):
                os.close(fd)
            others = [code_pid]
        os.close(out_w)
        os.close(res_w)
        while True:  # reap everything; stop when the test process is gone
            wpid, status = os.waitpid(-1, 0)
            others = [p for p in others if p != wpid]
            if wpid == pid:
                code = os.waitstatus_to_exitcode(status)
                code = code if code >= 0 else 128 - code
                break
        grace = time.monotonic() + 1.0
        while others and time.monotonic() < grace:  # the code process exits when the tests close its pipe
            wpid, _ = os.waitpid(-1, os.WNOHANG)
            others = [p for p in others if p != wpid]
            time.sleep(0.0005 if wpid == 0 else 0)
        # With a pid namespace the kernel kills what is left when this process exits; without one
        # the leader kills this session and (with a cgroup) every other process of the run.
        left = sum(1 for n in os.listdir("/proc") if n.isdigit() and int(n) != 1) if cfg["nested"] else 0
        os.write(info_w, str(left).encode())
    except BaseException:  # noqa: BLE001
        code = 71
    os._exit(code & 0xFF)


def _plain_child(cmd: dict, out_w: int, res_w: int, cfg: dict, workspace: str) -> None:
    try:
        enter_child(cfg, cmd, out_w, {res_w}, cfg.get("agent_uid"), cfg.get("agent_gid"), workspace, None,
                    [workspace, *cfg["stdlib"], *cfg["deps_path"]])
        run_pytest(cmd, res_w, workspace)
        os._exit(0)
    except BaseException:  # noqa: BLE001
        os._exit(98)


def _code_child(cmd: dict, out_w: int, rfd: int, wfd: int, cfg: dict, workspace: str, verifier: str | None,
                split) -> None:
    """The split run's code process: the repository, no pytest, no tests, answers over the pipes."""
    try:
        enter_child(cfg, cmd, out_w, {rfd, wfd}, cfg.get("agent_uid"), cfg.get("agent_gid"), workspace, verifier,
                    [workspace, *cfg["stdlib"]])
        for name in list(sys.modules):
            if name.split(".")[0] in TEST_PACKAGES or name in PRELOADED:
                del sys.modules[name]
        inspect = sys.modules.get("inspect")
        if PRELOADED and inspect is not None:  # the preload's file map: as if never built
            inspect.modulesbyfile.clear()
            inspect._filesbymodname.clear()
        split.serve(rfd, wfd, workspace)
        os._exit(0)
    except BaseException:  # noqa: BLE001
        os._exit(98)


def _test_child(cmd: dict, out_w: int, res_w: int, rfd: int, wfd: int, cfg: dict, workspace: str, verifier: str,
                split) -> None:
    """The split run's test process: pytest over the tests; repository modules are proxies."""
    try:
        enter_child(cfg, cmd, out_w, {res_w, rfd, wfd}, cfg.get("verifier_uid"), cfg.get("verifier_gid"), verifier,
                    workspace, [*cfg["stdlib"], *cfg["deps_path"]], dumpable=False, own_tmp=True)
        split.install(rfd, wfd, cmd["modules"])
        run_pytest(cmd, res_w, verifier)
        os._exit(0)
    except BaseException:  # noqa: BLE001
        os._exit(98)


# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------


def _safe_path(root: str, rel: object) -> str | None:
    if type(rel) is not str or not rel or "\0" in rel or rel.startswith("/"):
        return None
    path = os.path.normpath(os.path.join(root, rel))
    return path if path.startswith(root + os.sep) else None


def _write_tree(root: str, files: dict, uid: int | None, gid: int | None) -> None:
    """Write ``files`` into the fresh, empty ``root`` (no path in it can be a planted link)."""
    for rel, text in files.items():
        path = _safe_path(root, rel)
        parent = os.path.dirname(path)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    if uid is not None:
        for d, _dirs, names in os.walk(root):
            os.chown(d, uid, gid)
            for n in names:
                os.chown(os.path.join(d, n), uid, gid, follow_symlinks=False)


def _write_pycs(root: str, pycs: dict, test_files: dict) -> None:
    """The host's assertion-rewritten bytecode of the (trusted) test files, where pytest looks for
    it (``tests/__pycache__/test_x.<tag>-pytest-<version>.pyc``). Only beside a test file of this
    request; pytest checks the source hash in the header and rewrites the file itself when it does
    not match. The code process never sees this directory."""
    for rel, data in pycs.items():
        path = _safe_path(root, rel)
        parts = rel.split("/") if type(rel) is str else []
        if path is None or type(data) is not str or len(parts) < 2 or parts[-2] != "__pycache__" \
                or not parts[-1].endswith(".pyc"):
            raise ValueError(f"bad test bytecode path {rel!r}")
        source = "/".join([*parts[:-2], parts[-1].split(".", 1)[0] + ".py"])
        if source not in test_files:
            raise ValueError(f"test bytecode {rel!r} has no test file")
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data, validate=True))


def _top_modules(files: dict) -> list[str]:
    names = set()
    for rel in files:
        first = rel.split("/")[0]
        name = first[:-3] if first.endswith(".py") else first if "/" in rel else ""
        if name.isidentifier():
            names.add(name)
    return sorted(names)


class Server:
    def __init__(self, cfg: dict, cg: Cgroup | None, zsock: socket.socket, zpid: int):
        self.cfg, self.cg, self.zsock, self.zpid = cfg, cg, zsock, zpid
        self.counter = 0
        self.scratch = None if cfg["ns"]["mount"] else cfg["scratch"]

    def _dirs(self, split: bool) -> tuple[str, str | None]:
        if self.scratch is None:
            return WORKSPACE, (VERIFIER if split else None)
        self.counter += 1
        ws = os.path.join(self.scratch, f"ws{self.counter}")
        return ws, (os.path.join(self.scratch, f"tests{self.counter}") if split else None)

    def handle(self, req: dict) -> dict:
        mode = req.get("mode", "plain")
        if mode not in ("plain", "split"):
            return {"status": "bad_request", "error": f"unknown mode {mode!r}"}
        code_files = req["files"] if mode == "plain" else req["code"]
        test_files = req.get("tests", {}) if mode == "split" else {}
        for rel in [*code_files, *test_files]:
            if _safe_path("/x", rel) is None:
                return {"status": "bad_request", "error": f"file path {rel!r} leaves the workspace"}
        lim = req["limits"]
        ws, tests_dir = self._dirs(mode == "split")
        if self.scratch is None:
            fresh_tmpfs(ws, lim["disk_bytes"])
            if tests_dir:
                fresh_tmpfs(tests_dir, lim["disk_bytes"])
        else:
            os.makedirs(ws, 0o755)
            if tests_dir:
                os.makedirs(tests_dir, 0o755)
        try:
            _write_tree(ws, code_files, self.cfg.get("agent_uid"), self.cfg.get("agent_gid"))
            if tests_dir:
                _write_tree(tests_dir, test_files, None, None)
                _write_pycs(tests_dir, req.get("tests_pyc") or {}, test_files)
            if self.cg is not None:
                self.cg.set_limits(lim["memory_bytes"], int(lim["nproc"]) + 8)
            return self._run(req, mode, ws, tests_dir, code_files)
        finally:
            for d in (ws, tests_dir):
                if d is None:
                    continue
                if self.scratch is None:
                    while os.path.ismount(d):
                        umount(d)
                else:
                    import shutil

                    shutil.rmtree(d, ignore_errors=True)  # fd-based: never follows a planted link

    def _run(self, req: dict, mode: str, ws: str, tests_dir: str | None, code_files: dict) -> dict:
        lim = req["limits"]
        cmd = {"mode": mode, "limits": lim, "targets": req["targets"], "pytest_args": req.get("pytest_args", []),
               "workspace": ws, "verifier": tests_dir, "modules": _top_modules(code_files)}
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        rep_r, rep_w = os.pipe()
        socket.send_fds(self.zsock, [json.dumps(cmd).encode()], [out_w, res_w, rep_w])
        for fd in (out_w, res_w, rep_w):
            os.close(fd)
        bufs = {out_r: bytearray(), res_r: bytearray(), rep_r: bytearray()}
        open_fds = set(bufs)
        deadline = time.monotonic() + float(lim["wall_s"]) + 15.0
        rep_done_at = None
        while open_fds:
            now = time.monotonic()
            if now > deadline or (rep_done_at is not None and now > rep_done_at + 1.0):
                break
            ready, _, _ = select.select(list(open_fds), [], [], 0.05 if rep_done_at else max(deadline - now, 0))
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    open_fds.discard(fd)
                    if fd == rep_r:
                        rep_done_at = time.monotonic()
                    continue
                buf = bufs[fd]
                buf += chunk
                if fd == out_r and len(buf) > 2 * OUTPUT_KEEP:
                    del buf[:-OUTPUT_KEEP]
                elif fd == res_r and len(buf) > RESULTS_MAX:
                    del buf[RESULTS_MAX:]
        for fd in bufs:
            os.close(fd)
        self.zsock.settimeout(max(deadline - time.monotonic(), 1.0))
        if self.zsock.recv(16) != b"reaped":  # a timeout raises: the host replaces this worker
            raise RuntimeError("the zygote went away")
        swept = self.sweep()
        try:
            rep = json.loads(bytes(bufs[rep_r]).decode() or "{}")
        except ValueError:
            rep = {}
        if "error" in rep or "exit" not in rep:
            return {"status": "server_error", "error": rep.get("error", "the run leader did not report")}
        outcomes, done, malformed = {}, None, False
        for line in bytes(bufs[res_r]).splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                malformed = True
                continue
            if type(obj) is dict and type(obj.get("t")) is str and obj.get("o") in OUTCOMES:
                outcomes[obj["t"]] = obj["o"]
            elif type(obj) is dict and "done" in obj:
                done = obj
            else:
                malformed = True
        finished = done is not None and rep["exit"] == 0 and not malformed
        status = "timeout" if rep["timeout"] else ("ok" if finished else "crashed")
        if status != "ok":
            outcomes = {}  # a run that does not finish scores nothing (plain: and its reporter ran the code)
        errors = done.get("errors", []) if done else []
        output = bytes(bufs[out_r][-OUTPUT_KEEP:]).decode("utf-8", errors="replace")
        return {"status": status, "mode": mode, "outcomes": outcomes, "exit_code": rep["exit"],
                "collect_errors": [e for e in errors if type(e) is str], "duration": rep.get("duration", 0.0),
                "cpu_s": rep.get("cpu_s", 0.0), "leftover_processes": rep.get("leftovers", 0) + swept,
                "oom_kills": rep.get("oom_kills", 0), "output": output[-int(req.get("output_chars", 4000)):]}

    def sweep(self) -> int:
        """As pid 1: every process but the zygote must be gone (repeated SIGKILL until it is)."""
        if not self.cfg["pid1"]:
            return 0
        killed = 0
        for _ in range(5000):
            self._reap()
            alive = []
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) in (1, self.zpid):
                    continue
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        state = f.read().rsplit(b")", 1)[1].split()[0]
                except (OSError, IndexError):
                    continue
                if state != b"Z":
                    alive.append(int(name))
            if not alive:
                return killed
            for p in alive:
                try:
                    os.kill(p, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.001)
        raise RuntimeError("processes of a run survive repeated SIGKILL")

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.zpid:
                raise RuntimeError("the zygote died")


def _read_msg(stream) -> dict | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    return json.loads(stream.read(n).decode())


def _write_msg(stream, obj: dict) -> None:
    data = json.dumps(obj).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _load_split(path: str):
    spec = importlib.util.spec_from_file_location("_rl_split", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_rl_split"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    cfg = json.loads(sys.argv[1])
    cfg["pid1"] = os.getpid() == 1
    cfg["nested"] = cfg["pid1"] and cfg["ns"]["mount"]
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    split = _load_split(cfg["split_module"])
    cg = Cgroup(cfg["cgroup"]) if cfg.get("cgroup") else None
    setup: dict = {}
    if cfg["ns"]["mount"]:
        setup = build_view(cfg["view"])
        cfg["deps_path"] = ["/deps"]
        cfg["tmp"] = "/tmp"
    else:
        import tempfile

        cfg["deps_path"] = sorted({os.path.dirname(p) for p in cfg["view"]["deps"]})
        cfg["scratch"] = tempfile.mkdtemp(prefix="rlsbx_")
        os.chmod(cfg["scratch"], 0o755)
        cfg["tmp"] = cfg["scratch"]
    cfg["stdlib"] = [p for p in sys.path if p]
    sys.executable = cfg["view"]["executable"]
    sys.prefix = sys.exec_prefix = sys.base_prefix
    if cfg["ns"]["mount"] and not cfg["ns"]["user"]:
        cfg.update({k: cfg["view"][k] for k in ("agent_uid", "agent_gid", "verifier_uid", "verifier_gid")})
    zsock, zchild = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    zpid = os.fork()
    if zpid == 0:
        zsock.close()
        try:
            zygote(zchild, cfg, cg, split)
        finally:
            os._exit(1)
    zchild.close()
    server = Server(cfg, cg, zsock, zpid)
    _write_msg(stdout, {"ready": True, "pid1": cfg["pid1"], "nested": cfg["nested"], "setup": setup,
                        "cgroup": cg.kind if cg else None, "uid_split": "verifier_uid" in cfg})
    while (req := _read_msg(stdin)) is not None:
        try:
            res = server.handle(req)
        except Exception as e:  # noqa: BLE001 - report; the host replaces this worker
            _write_msg(stdout, {"status": "server_error", "error": f"{type(e).__name__}: {e}", "outcomes": {}})
            raise SystemExit(3) from None
        _write_msg(stdout, res)
    if server.scratch:
        import shutil

        shutil.rmtree(server.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
