"""The SWE sandbox's warm test collection (``Sandbox(preload=True)``, the default): a zygote that
preloads pytest's plugins and freezes its heap out of the GC, and host-rewritten bytecode of the
trusted test files. It must give the old path's verdicts, and nothing the code under test can do
may reach the bytecode pytest runs the tests from.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re

import pytest

from rewardlab.envs.swe.corpus import load_corpus
from rewardlab.envs.swe.sandbox import Sandbox, isolation_report, rewritten_tests

VIEW = "mount" in (isolation_report()["unshare"] or "")


@pytest.fixture(scope="module")
def fast():
    with Sandbox(workers=1) as s:
        yield s


@pytest.fixture(scope="module")
def old():
    with Sandbox(workers=1, preload=False) as s:
        yield s


def _strip_timing(output: str) -> str:
    return re.sub(r" in [0-9.]+s\b", "", output)


def test_fast_path_gives_the_old_paths_outcomes_and_output_on_a_sample(fast, old):
    """A deterministic sample (every 16th task, buggy and fixed): the same per-test outcomes, and
    the same pytest output -- assertion introspection included, so the host's rewriting is
    pytest's own."""
    tasks, _ = load_corpus()
    for t in tasks[::16]:
        for files in (t.files, t.fix.apply(t.files)):
            job = t.split_job(files)
            a, b = old.run_split(*job), fast.run_split(*job)
            assert a.status == b.status == "ok"
            assert a.outcomes == b.outcomes and len(a.outcomes) == len(t.tests), t.task_id
            assert _strip_timing(a.output) == _strip_timing(b.output), t.task_id
        assert "AssertionError: assert" in a.output or a.all_passed(t.tests)
    buggy = fast.run_split(*tasks[0].split_job(tasks[0].files))
    assert not buggy.all_passed(tasks[0].tests) and "\nE       AssertionError: assert " in buggy.output


@pytest.mark.slow
def test_fast_path_reproduces_every_shipped_outcome():
    """The whole shipped corpus, every state (buggy and its 6 candidate edits, 322 runs): the fast
    path's pass masks equal the ones recorded when the corpus was generated on the old path."""
    tasks, outcomes = load_corpus()
    jobs, keys = [], []
    for t in tasks:
        for c in [None, *range(len(t.candidates))]:
            jobs.append(t.split_job(t.apply(c)))
            keys.append((t, "buggy" if c is None else str(c)))
    with Sandbox(workers=2) as sb:
        runs = sb.run_many(jobs, split=True)
    for (t, key), run in zip(keys, runs, strict=True):
        recorded = outcomes[t.task_id][key]
        assert run.status == "ok" or not any(recorded), (t.task_id, key, run.status)  # 2 states loop forever
        assert run.passed_mask(t.tests) == recorded, (t.task_id, key)


PROBE = {"probe.py": (
    "import os, sys\n"
    "def modules():\n"
    "    return sorted(m for m in sys.modules if m != 'probe')\n"
    "def pycache():\n"
    "    return [d for d in ('/verifier/tests/__pycache__', 'tests/__pycache__') if os.path.exists(d)]\n")}
PROBE_TESTS = {"tests/test_probe.py": (
    "import os\n"
    "from probe import modules, pycache\n"
    "def test_probe():\n"
    "    print('MODULES', modules())\n"
    "    print('PYCACHE', os.listdir(os.path.join(os.path.dirname(__file__), '__pycache__'))\n"
    "          if os.path.isdir(os.path.join(os.path.dirname(__file__), '__pycache__')) else [])\n"
    "    assert pycache() == []\n"
    "    assert False, 'show the output'\n")}


def _printed(output: str, tag: str) -> str:
    m = re.search(rf"^{tag} (.*)$", output, re.M)
    assert m, output
    return m.group(1)


def test_code_process_sees_the_same_modules_and_no_bytecode(fast, old):
    """The preload adds nothing to what the code under test finds in ``sys.modules`` (so its
    imports resolve as before), and the test bytecode sits only in the test process's view."""
    a, b = old.run_split(PROBE, PROBE_TESTS, ["tests"]), fast.run_split(PROBE, PROBE_TESTS, ["tests"])
    assert a.status == b.status == "ok"
    assert "AssertionError: show the output" in a.output and "AssertionError: show the output" in b.output
    assert _printed(a.output, "MODULES") == _printed(b.output, "MODULES")
    assert "pdb" not in _printed(b.output, "MODULES") and "_pytest" not in _printed(b.output, "MODULES")
    assert _printed(a.output, "PYCACHE") == "[]"
    assert "test_probe." in _printed(b.output, "PYCACHE")  # the host's bytecode did arrive


def _forged_pyc(task) -> tuple[str, bytes]:
    """A pyc for ``task``'s test file in which every test passes, with the header (source hash) of
    the real test file: what pytest would run if it found it in place of the rewritten tests."""
    from _pytest.assertion import rewrite

    rel = next(p for p in task.files if p.startswith("tests/test_") and p[len("tests/test_"):-3] == task.module)
    source = task.files[rel].encode()
    names = re.findall(r"^def (test_\w+)", task.files[rel], re.M)
    co = compile("".join(f"def {n}(*a, **k):\n    pass\n" for n in names), rel, "exec")
    buf = io.BytesIO()
    rewrite._write_pyc_fp(buf, importlib.util.source_hash(source), co)
    name = rel.rsplit("/", 1)[1][:-3] + rewrite.PYC_TAIL
    return f"tests/__pycache__/{name}", buf.getvalue()


def test_forged_test_bytecode_from_the_code_under_test_changes_nothing(fast):
    """The strongest version of the attack: the code knows the tests (TextEdit can open them) and
    writes an all-pass pyc with the right header everywhere it can, then the buggy repo runs
    again. Control: the same pyc, put where pytest looks by the host, does forge a full pass --
    so the attack fails because of where it can write, not because the pyc is broken."""
    tasks, _ = load_corpus()
    task = tasks[0]
    rel, data = _forged_pyc(task)
    buggy = fast.run_split(*task.split_job(task.files))
    assert buggy.status == "ok" and not buggy.all_passed(task.tests)

    name = rel.rsplit("/", 1)[1]
    attack = (f"import base64 as _b, os as _o\n_P = _b.b64decode({base64.b64encode(data).decode()!r})\n"
              f"for _d in ('/verifier/tests/__pycache__', 'tests/__pycache__', '__pycache__', '/tmp/tests/__pycache__',"
              f" '../verifier/tests/__pycache__'):\n"
              f"    try:\n        _o.makedirs(_d, exist_ok=True)\n"
              f"        open(_o.path.join(_d, {name!r}), 'wb').write(_P)\n    except OSError:\n        pass\n")
    path = task.buggy_file
    attacked = {**task.files, path: attack + task.files[path]}
    for _ in range(2):  # the second run would pick up whatever the first one left behind
        run = fast.run_split(*task.split_job(attacked))
        assert run.status == "ok" and run.outcomes == buggy.outcomes, run.output[-800:]
    again = fast.run_split(*task.split_job(task.files))
    assert again.outcomes == buggy.outcomes

    code, tests, targets = task.split_job(task.files)
    control = fast._submit({"mode": "split", "code": code, "tests": tests, "targets": targets,
                            "limits": fast.limits.as_dict(), "pytest_args": [],
                            "tests_pyc": {rel: base64.b64encode(data).decode()}})
    assert control.status == "ok" and control.all_passed(task.tests)  # in place, the pyc would forge


def test_stale_bytecode_is_ignored():
    """Bytecode whose header hash is not the test file's (a stale cache entry) is never run:
    pytest rewrites the real file instead, so the verdict is the real one."""
    tasks, _ = load_corpus()
    task = tasks[0]
    code, tests, targets = task.split_job(task.files)
    rel = next(p for p in tests if p.endswith(f"test_{task.module}.py"))
    lenient = {rel: re.sub(r"^(\s+)assert ", r"\1assert True or ", tests[rel], flags=re.M)}
    stale = rewritten_tests(lenient)
    assert set(stale) and all("__pycache__" in p for p in stale)
    with Sandbox(workers=1) as sb:
        real = sb.run_split(code, tests, targets)
        run = sb._submit({"mode": "split", "code": code, "tests": tests, "targets": targets,
                          "limits": sb.limits.as_dict(), "pytest_args": [], "tests_pyc": stale})
    assert not real.all_passed(task.tests) and run.outcomes == real.outcomes


def test_rewritten_tests_only_for_test_files_and_cached_on_the_host():
    tests = {"tests/test_a.py": "def test_a():\n    assert 1 == 1\n", "tests/helper.py": "X = 1\n",
             "tests/b_test.py": "def test_b():\n    assert 2\n"}
    out = rewritten_tests(tests)
    assert sorted(p.split("/__pycache__/")[1].split(".")[0] for p in out) == ["b_test", "test_a"]
    assert rewritten_tests(tests) == out  # deterministic (and served from the host's cache)
    assert rewritten_tests({"tests/test_bad.py": "def test(:\n"}) == {}  # pytest reports the syntax error
