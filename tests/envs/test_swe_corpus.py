"""The SWE task corpus: size, variety, live validation, shipped outcomes == live outcomes,
the corpus and the modules as package data (JSON, real ``.py`` files pytest does not collect)."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.envs.swe import corpus
from rewardlab.envs.swe.corpus import OPERATORS, corpus_json, generate_corpus, load_corpus, mutations, validate_corpus
from rewardlab.envs.swe.sandbox import Sandbox
from rewardlab.envs.swe.sources import MODULES, NAMES

ROOT = Path(__file__).resolve().parents[2]
SWE = ROOT / "rewardlab" / "envs" / "swe"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2) as s:
        yield s


def test_corpus_size_splits_and_variety():
    tasks, outcomes = load_corpus()
    assert len(tasks) >= 40
    splits = collections.Counter(t.split for t in tasks)
    assert splits["train"] >= 25 and splits["test"] >= 10
    assert {t.module for t in tasks if t.split == "test"}.isdisjoint({t.module for t in tasks if t.split == "train"})
    ops = collections.Counter(t.bug["operator"] for t in tasks)
    assert set(ops) == set(OPERATORS), ops
    for t in tasks:
        assert len(t.tests) >= 5
        assert len(t.candidates) == 6 and t.candidate_kinds.count("fix") == 1
        assert t.candidates[t.fix_index] == t.fix
        assert set(outcomes[t.task_id]) == {"buggy", *map(str, range(6))}


def test_sources_pass_their_own_suites(sb):
    runs = sb.run_many([({f"{n}.py": s, f"tests/test_{n}.py": t}, ["tests"]) for n, (s, t) in MODULES.items()])
    for name, run in zip(MODULES, runs, strict=True):
        assert run.status == "ok" and run.outcomes and all(v == "passed" for v in run.outcomes.values()), name


def test_corpus_validation_live(sb):
    """Every task fails ≥1 test before the fix and passes all after (run in the sandbox)."""
    tasks, _ = load_corpus()
    assert validate_corpus(list(tasks), sb) == []


def test_shipped_outcomes_agree_with_live_runs(sb):
    tasks, outcomes = load_corpus()
    sample = tasks[::4]  # every 4th task, all 7 states each
    jobs, keys = [], []
    for t in sample:
        for c in [None, *range(len(t.candidates))]:
            jobs.append((t.apply(c), t.targets))
            keys.append((t, "buggy" if c is None else str(c)))
    for (t, key), run in zip(keys, sb.run_many(jobs), strict=True):
        assert run.passed_mask(t.tests) == outcomes[t.task_id][key], (t.task_id, key)


def test_wrong_candidates_never_fix_and_fix_always_does():
    tasks, outcomes = load_corpus()
    for t in tasks:
        o = outcomes[t.task_id]
        assert not all(o["buggy"])
        for i in range(6):
            assert all(o[str(i)]) == (i == t.fix_index), (t.task_id, i)


def test_mutations_cover_operators_and_are_deterministic():
    src = MODULES["numeric"][0]
    a, b = mutations(src), mutations(src)
    assert a == b
    assert {m.operator for m in a} >= {"wrong_comparison", "swapped_operator", "off_by_one", "missing_branch"}
    for m in a:
        assert m.new != m.old


def test_modules_are_the_files_under_data_in_a_fixed_order():
    data = SWE / "data" / "modules"
    assert sorted(p.stem for p in data.glob("*.py")) == sorted(NAMES)
    assert sorted(p.stem for p in (data / "tests").glob("*.py")) == sorted(f"test_{n}" for n in NAMES)
    assert list(MODULES) == list(NAMES)
    for name, (src, tests) in MODULES.items():
        assert src == (data / f"{name}.py").read_text() and tests == (data / "tests" / f"test_{name}.py").read_text()
    assert not list((SWE / "data").rglob("__init__.py"))  # not a package: nothing imports these as rewardlab code


def test_pytest_does_not_collect_the_task_modules():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          str(SWE)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rewardlab/envs/swe/corpus.py" in out.stdout  # the doctests are collected ...
    assert "data/" not in out.stdout and "test_strutils" not in out.stdout  # ... the task modules are not


def test_shipped_json_is_the_writer_output_of_the_loaded_corpus():
    """Loading and writing again gives the shipped file byte for byte (the records are complete)."""
    text = (SWE / "data" / "corpus.json").read_text(encoding="utf-8")
    assert corpus_json(*load_corpus()) == text


def test_load_corpus_refuses_a_corpus_built_from_other_sources(monkeypatch):
    digest = corpus._sources_digest()
    monkeypatch.setattr(corpus, "_sources_digest", lambda: {**digest, "numeric": "0" * 20})
    with pytest.raises(ValueError, match=r"\['numeric'\].*--write"):
        load_corpus.__wrapped__()


@pytest.mark.slow
def test_regenerating_reproduces_the_shipped_json(sb):
    """``python -m rewardlab.envs.swe.corpus --write`` is deterministic: generating the corpus
    again (every mutant and candidate run live, ~2 min on 2 cores) gives the shipped bytes."""
    tasks, outcomes = generate_corpus(sb)
    assert corpus_json(tasks, outcomes) == (SWE / "data" / "corpus.json").read_text(encoding="utf-8")
