"""DERL: grammar, compiled programs, masked sampling, GRPO, baselines, the meta-loop and its resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import rewardlab
from rewardlab.config import parse_config
from rewardlab.core.terms import build_stack
from rewardlab.derl.loop import read_candidates, run_derl
from rewardlab.derl.search import (
    EvolutionSearch,
    GrpoSearch,
    LLMSearch,
    Proposal,
    RandomSearch,
    ScriptedProposer,
)
from rewardlab.errors import ConfigError
from rewardlab.shaping.derl_program import Grammar, ProgramError, ProgramTerm, from_tokens, parse, to_text, to_tokens

PRIMS = ["env", "step", "novelty", "corner"]
REPO = Path(__file__).resolve().parents[2]


# -- grammar ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ("env", "env"),
    ("add(env,scale(0.50, step))", "add(env, scale(0.5, step))"),
    ("gate(gt(novelty, 0.3), clip(mul(env, corner), 2))", "gate(gt(novelty, 0.3), clip(mul(env, corner), 2))"),
    ("scale(-1e-1, env)", "scale(-0.1, env)"),
])
def test_parse_roundtrip(text, canonical):
    g = Grammar(PRIMS)
    assert g.check(text) == canonical
    tree = parse(canonical)
    assert to_text(from_tokens(to_tokens(tree))) == canonical


@pytest.mark.parametrize("text, message", [
    ("", "empty program"),
    ("add(env", "unexpected end of program"),
    ("add(env, step, novelty)", "add takes 2 arguments"),
    ("scale(env, 0.5)", "expected a number as argument 1 of scale"),
    ("add(env, 0.5)", "cannot stand alone"),
    ("add(env, stpe)", "unknown primitive 'stpe'. Did you mean 'step'?"),
    ("sum(env, step)", "unknown operator 'sum'"),
    ("clip(env, 0)", "clip bound must be > 0"),
    ("env step", "unexpected 'step'"),
    ("add(env; step)", "unexpected character ';'"),
    ("scale", "needs arguments"),
    ("add(add(add(add(env, env), env), env), env)", "max_depth=4"),
    ("add(add(env, env), add(add(env, env), add(env, add(env, env))))", "max_tokens"),
])
def test_invalid_programs_name_the_problem(text, message):
    with pytest.raises(ProgramError, match=message.replace("(", r"\(").replace("?", r"\?")):
        Grammar(PRIMS, max_tokens=12, max_depth=4).check(text)


def test_disabled_operator_is_rejected():
    with pytest.raises(ProgramError, match="operator 'mul' is not enabled"):
        Grammar(PRIMS, operators=["add", "scale"]).check("mul(env, step)")


def test_compiled_program_matches_the_equivalent_stack_on_a_real_env():
    """add(env, scale(0.5, step)) is the stack env + 0.5*step_penalty, step by step on CartPole."""
    prims = {"env": {"name": "env"}, "step": {"name": "step_penalty", "params": {"value": 0.1}}}
    prog = [{"name": "derl_program", "params": {"program": "add(env, scale(0.5, step))", "primitives": prims}}]
    ref = ["env", {"name": "step_penalty", "weight": 0.5, "params": {"value": 0.1}}]
    a, b = rewardlab.make_vec("CartPole-v1", 3, reward=prog), rewardlab.make_vec("CartPole-v1", 3, reward=ref)
    a.reset(seed=1)
    b.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(40):
        act = rng.integers(0, 2, 3)
        ra, rb = a.step(act)[1], b.step(act)[1]
        np.testing.assert_allclose(ra, rb, rtol=1e-6)
        assert np.allclose(ra, 0.95)


def test_program_operators_values():
    prims = {"env": {"name": "env"}}
    from rewardlab.core.transition import Transition

    t = Transition(None, None, None, np.array([2.0, -1.0, 0.5]), np.zeros(3, bool), np.zeros(3, bool))
    expect = {
        "mul(env, env)": [4.0, 1.0, 0.25],
        "clip(env, 1)": [1.0, -1.0, 0.5],
        "gt(env, 0.3)": [1.0, 0.0, 1.0],
        "gate(scale(-1, env), env)": [0.0, -1.0, 0.0],
        "add(scale(3, env), env)": [8.0, -4.0, 2.0],
    }
    for text, want in expect.items():
        np.testing.assert_allclose(ProgramTerm(text, prims)(t), want)


def test_stateful_primitive_is_evaluated_once_per_step():
    """novelty used twice in a program counts each state once (1/sqrt(n) with n = 1, 2, 3)."""
    from rewardlab.core.transition import Transition

    term = ProgramTerm("add(novelty, novelty)", {"novelty": {"name": "novelty"}})
    t = Transition(None, None, np.zeros((1, 1)), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    out = [float(term(t)[0]) for _ in range(3)]
    np.testing.assert_allclose(out, [2.0, 2 / np.sqrt(2), 2 / np.sqrt(3)], rtol=1e-6)


def test_program_term_rejects_bad_programs_and_primitives():
    with pytest.raises(ConfigError, match="derl_program: unknown primitive 'bonus'"):
        build_stack([{"name": "derl_program", "params": {"program": "bonus", "primitives": {"env": "env"}}}])
    with pytest.raises(ConfigError, match="weights belong in the program"):
        ProgramTerm("env", {"env": {"name": "env", "weight": 2}})
    with pytest.raises(ConfigError, match="unknown reward term 'nvelty'"):
        ProgramTerm("x", {"x": {"name": "nvelty"}})


# -- samplers --------------------------------------------------------------------------------

def _perturbed_grpo(g: Grammar, seed: int) -> GrpoSearch:
    import torch

    s = GrpoSearch(g, seed=seed)
    with torch.no_grad():  # a non-uniform policy: the mask, not luck, must keep programs valid
        gen = torch.Generator().manual_seed(seed)
        s.policy.head.weight.copy_(torch.randn(s.policy.head.weight.shape, generator=gen) * 3)
    return s


@pytest.mark.parametrize("max_tokens, max_depth", [(1, 1), (4, 2), (10, 4), (20, 6)])
def test_masked_samplers_only_emit_valid_programs(max_tokens, max_depth):
    g = Grammar(PRIMS, max_tokens=max_tokens, max_depth=max_depth)
    sizes = []
    for search in (RandomSearch(g, seed=1, unique=False), _perturbed_grpo(g, 2)):
        for p in search.propose(150):
            tree = parse(p.text)
            g.validate(tree)  # raises if invalid
            assert p.tokens == to_tokens(tree)
            sizes.append(tree.size)
    assert max(sizes) <= max_tokens
    if max_tokens >= 4:
        assert len(set(sizes)) > 1  # really explores the space, not one fixed shape


def test_random_search_unique_within_a_round():
    g = Grammar(PRIMS, max_tokens=6)
    texts = [p.text for p in RandomSearch(g, seed=0).propose(12)]
    assert len(set(texts)) == 12


def test_grpo_raises_the_probability_of_high_scoring_programs():
    """Toy score: 1 for the program ``corner``, 0 for anything else. Its probability must grow."""
    g = Grammar(PRIMS, max_tokens=6, max_depth=3)
    search = GrpoSearch(g, seed=0, learning_rate=0.05, unique=False)
    probe = "corner"
    before = search.logprob(probe)
    # ~uniform at the start (zero-initialised head): 1 of 10 valid first tokens
    assert abs(before - np.log(0.1)) < 1e-5 and abs(before - search.logprob("env")) < 1e-6
    fractions = []
    for _ in range(8):
        props = search.propose(16)
        scores = [float(p.text == probe) for p in props]
        fractions.append(np.mean(scores))
        search.observe(props, scores)
    after = search.logprob(probe)
    assert after > np.log(0.5), (before, after)
    assert np.mean(fractions[-3:]) > np.mean(fractions[:2]) + 0.4, fractions


def test_grpo_equal_scores_leave_the_policy_unchanged():
    g = Grammar(PRIMS, max_tokens=6)
    s = GrpoSearch(g, seed=0)
    before = s.logprob("add(env, corner)")
    assert s.observe(s.propose(4), [0.5] * 4)["grpo/skipped"] == 1.0
    assert s.logprob("add(env, corner)") == before


def test_search_state_roundtrip(tmp_path):
    g = Grammar(PRIMS, max_tokens=6)
    a = GrpoSearch(g, seed=3)
    props = a.propose(4)
    a.observe(props, [0, 1, 0, 1])
    a.save(tmp_path / "s.pt")
    b = GrpoSearch(g, seed=99)
    b.load(tmp_path / "s.pt")
    assert [p.text for p in a.propose(5)] == [p.text for p in b.propose(5)]


def test_evolution_mutates_the_elite():
    g = Grammar(PRIMS, max_tokens=8, max_depth=4)
    evo = EvolutionSearch(g, seed=0, elite=2)
    first = evo.propose(4)
    evo.observe(first, [0.0, 0.0, 1.0, 0.9])
    children = evo.propose(6)
    elite = {first[2].text, first[3].text}
    for c in children:
        g.check(c.text)
        assert c.text not in elite
    # children share structure with a parent: a primitive of the elite appears in most of them
    elite_prims = {t for e in elite for t in to_tokens(parse(e)) if t in PRIMS}
    assert sum(any(t in elite_prims for t in c.tokens) for c in children) >= 4


def test_llm_search_with_scripted_proposer_parses_and_rejects():
    """ScriptedProposer is a deterministic stand-in for an LLM (it ignores the prompt)."""
    g = Grammar(PRIMS)
    proposer = ScriptedProposer(["```\nadd(env, scale(0.1, novelty))\n```", "Program: gate(corner, env)",
                                 "I think the reward should be env + 3", "add(env, bonus)"])
    search = LLMSearch(g, proposer)
    props = search.propose(4)
    assert [p.valid for p in props] == [True, True, False, False]
    assert props[0].text == "add(env, scale(0.1, novelty))"
    assert "unknown primitive 'bonus'" in props[3].error
    search.observe(props, [0.7, 0.2, 0.0, 0.0])
    prompt = search.prompt()
    assert "0.700  add(env, scale(0.1, novelty))" in prompt and "corner" in prompt
    assert len(proposer.prompts) == 4
    assert len(set(proposer.prompts)) == 4 and "proposal 3 of 4" in proposer.prompts[2]  # distinct cache keys


# -- config ----------------------------------------------------------------------------------

def _grid_config(tmp_path: Path, **derl) -> dict:
    return {
        "name": "derl_test",
        "env": {"id": "toy/GridWorld-v0", "n_envs": 2, "kwargs": {"size": 3, "max_episode_steps": 12}},
        "agent": {"name": "ppo", "params": {"n_steps": 16, "n_epochs": 1, "n_minibatches": 1}},
        "train": {"total_steps": 64, "seeds": [0]},
        "eval": {"every_steps": 32, "episodes": 2, "final_episodes": 4, "n_envs": 2},
        "log": {"dir": str(tmp_path / "runs"), "tensorboard": False, "checkpoint_every": 32},
        "derl": {"rounds": 2, "candidates": 3, "workers": 0, "max_tokens": 5,
                 "primitives": {"env": {"name": "env"}, "step": {"name": "step_penalty"},
                                "corner": {"name": "grid_cell", "params": {"cell": [0, 2]}}}, **derl},
    }


def test_config_errors_name_the_field(tmp_path):
    data = _grid_config(tmp_path)
    data["derl"]["primitives"]["x"] = {"name": "nvelty"}
    with pytest.raises(ConfigError, match="primitive 'x': unknown reward term 'nvelty'. Did you mean 'novelty'"):
        parse_config(data)
    data = _grid_config(tmp_path, method="llm")
    with pytest.raises(ConfigError, match="method llm needs an llm: section"):
        parse_config(data)
    data = _grid_config(tmp_path, candidates=1)
    with pytest.raises(ConfigError, match="derl.candidates"):
        parse_config(data)


# -- the loop --------------------------------------------------------------------------------

def test_invalid_programs_score_minus_one_by_default_and_failure_score_overrides(tmp_path):
    """The DERL reference (expression_check.py) scores an invalid program -1; 0 stays an option.
    Every reply is invalid, so nothing trains."""
    replies = {"proposer": "rewardlab.derl.search:ScriptedProposer",
               "params": {"replies": ["add(env, nothing)", "scale(2)", ""]}}
    for extra, expected in (({}, -1.0), ({"failure_score": 0.0}, 0.0)):
        data = _grid_config(tmp_path / str(expected), method="llm", rounds=1, llm=replies, **extra)
        summary = run_derl(parse_config(data))
        assert [c["status"] for c in summary.candidates] == ["invalid"] * 3
        assert [c["score"] for c in summary.candidates] == [expected] * 3
        assert summary.rounds[0]["mean_score"] == expected


def test_loop_in_process_scores_invalid_llm_programs_as_failures(tmp_path):
    data = _grid_config(tmp_path, method="llm", rounds=1,
                        llm={"proposer": "rewardlab.derl.search:ScriptedProposer",
                             "params": {"replies": ["env", "add(env, nothing)", "scale(2, corner)"]}})
    cfg = parse_config(data)
    summary = run_derl(cfg)
    rows = {c["index"]: c for c in summary.candidates}
    assert rows[1]["status"] == "invalid" and rows[1]["score"] == -1.0
    assert "unknown primitive 'nothing'" in rows[1]["error"]
    assert rows[0]["status"] == rows[2]["status"] == "ok"
    for r in (rows[0], rows[2]):
        assert Path(r["run_dir"], "summary.json").is_file()
        assert r["curve"]["seed_0"][-1][0] >= 64  # the final evaluation point of the curve
    assert json.loads((summary.run_dir / "summary.json").read_text())["failed"] == 1


def _write_yaml(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "derl.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_smoke_runs_rounds_in_worker_processes(tmp_path):
    data = _grid_config(tmp_path, workers=2, rounds=4)
    path = _write_yaml(tmp_path, data)
    res = subprocess.run([sys.executable, "-m", "rewardlab.cli", "run", str(path), "--set", "derl.rounds=2",
                          "--quiet"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "best program:" in res.stdout and "DERL (grpo): rounds" in res.stdout
    run_dir = next((tmp_path / "runs" / "derl").glob("derl_test__*"))
    rows = read_candidates(run_dir)
    assert sorted((r["round"], r["index"]) for r in rows) == [(r, i) for r in range(2) for i in range(3)]
    assert all(r["status"] == "ok" for r in rows)
    assert (run_dir / "rounds" / "r001" / "state.pt").is_file()


@pytest.mark.slow
def test_kill_9_mid_round_then_resume_loses_and_duplicates_nothing(tmp_path):
    data = _grid_config(tmp_path, workers=1, rounds=2, candidates=3)
    data["train"]["total_steps"] = 1024  # long enough that the kill lands inside a round
    path = _write_yaml(tmp_path, data)
    cmd = [sys.executable, "-m", "rewardlab.cli", "run", str(path), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    cand = None
    for _ in range(1200):  # wait (up to 10 min) for the first finished candidate
        found = list((tmp_path / "runs" / "derl").glob("derl_test__*/candidates.jsonl"))
        if found and read_candidates(found[0].parent):
            cand = found[0]
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.5)
    assert cand is not None
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes
    proc.wait()
    run_dir = cand.parent
    before = read_candidates(run_dir)
    assert 1 <= len(before) < 6 and not (run_dir / "summary.json").exists()
    proposals_r0 = (run_dir / "rounds" / "r000" / "proposals.json").read_text()

    res = subprocess.run([sys.executable, "-m", "rewardlab.cli", "run", "--resume", str(run_dir), "--quiet"],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in (run_dir / "candidates.jsonl").read_text().splitlines()]
    keys = [(r["round"], r["index"]) for r in lines]
    assert sorted(keys) == [(r, i) for r in range(2) for i in range(3)]  # none lost, none twice
    assert (run_dir / "rounds" / "r000" / "proposals.json").read_text() == proposals_r0
    for old in before:  # finished candidates were kept, not re-run
        new = next(r for r in lines if (r["round"], r["index"]) == (old["round"], old["index"]))
        assert new == old
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["candidates"] == 6 and len(summary["rounds"]) == 2


def test_resume_rejects_a_non_derl_directory(tmp_path):
    from rewardlab.errors import RunDirError

    with pytest.raises(RunDirError, match="not a DERL run directory"):
        run_derl(resume=tmp_path)


def test_proposal_roundtrip():
    p = Proposal("add(env, step)", ["add", "env", "step"])
    assert Proposal(**p.as_dict()) == p and p.valid


def test_validation_env_scores_candidates_on_held_out_settings(tmp_path):
    """derl.validation: the trained agent is reloaded and evaluated on other env kwargs."""
    data = _grid_config(tmp_path, method="random", rounds=1, candidates=2,
                        validation={"env_kwargs": {"start": [2, 0]}, "episodes": 6})
    summary = run_derl(parse_config(data))
    for row in summary.candidates:
        assert row["status"] == "ok", row.get("error")
        assert row["score_metric"] == "validation_true_return"
        val = json.loads(Path(row["run_dir"], "seed_0", "validation.json").read_text())
        assert val["env_kwargs"]["start"] == [2, 0] and val["env_kwargs"]["size"] == 3 and val["episodes"] == 6
        assert row["score"] == pytest.approx(val["true_return_mean"])
        assert "train_env_score" in row
