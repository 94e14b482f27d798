"""Batched DERL: with jax_ppo, a round's valid programs train as reward variants of one compiled
program; each candidate's score is its own variant's final success/return; invalid programs and
primitives without a JAX version are handled before any training."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gymnax")

from rewardlab.config import parse_config  # noqa: E402
from rewardlab.derl.loop import read_candidates, run_derl  # noqa: E402
from rewardlab.errors import ConfigError  # noqa: E402


def _config(tmp_path, **derl) -> dict:
    return {
        "name": "jderl",
        "env": {"id": "gymnax/CartPole-v1", "n_envs": 4},
        "agent": {"name": "jax_ppo", "gamma": 0.99, "params": {"n_steps": 32, "learning_rate": 0.001}},
        "train": {"total_steps": 2 * 128, "seeds": [0, 1]},
        "eval": {"every_steps": 256, "episodes": 2, "final_episodes": 4},
        "log": {"dir": str(tmp_path / "runs"), "tensorboard": False, "checkpoint_every": 256},
        "derl": {"method": "llm", "rounds": 1, "candidates": 3, "max_tokens": 5, "max_depth": 3,
                 "llm": {"proposer": "rewardlab.derl.search:ScriptedProposer", "params": {"replies": [
                     "add(env, scale(-1, step))", "scale(3, env)", "add(env, bonus)"]}},
                 "primitives": {"env": {"name": "env"},
                                "step": {"name": "step_penalty", "params": {"value": 0.5}}}} | derl,
    }


def test_a_round_of_programs_trains_in_one_program_and_scores_each_variant(tmp_path):
    summary = run_derl(parse_config(_config(tmp_path)))
    rows = sorted(read_candidates(summary.run_dir), key=lambda c: c["index"])
    assert [r["status"] for r in rows] == ["ok", "ok", "invalid"]
    assert rows[2]["score"] == -1.0  # the DERL reference's score of an invalid program
    batches = list((summary.run_dir / "inner" / "r000_batch").glob("jderl_r000__*"))
    assert len(batches) == 1  # both valid programs, both seeds: one compiled run
    for r in rows[:2]:
        result = json.loads((batches[0] / f"c{r['index']:02d}" / "summary.json").read_text())
        assert r["score"] == pytest.approx(result["true_return_mean"])  # CartPole has no success flag
        assert r["score_metric"] == "true_return" and len(r["score_per_seed"]) == 2
        cfg = (batches[0] / f"c{r['index']:02d}" / "config.yaml").read_text()
        assert r["program"].split("(")[0] in cfg  # the variant's own program is in its config


def test_primitives_without_a_jax_version_are_refused_before_training(tmp_path):
    data = _config(tmp_path, primitives={"env": {"name": "env"}, "oni": {"name": "oni"}})
    with pytest.raises(ConfigError, match=r"derl.primitives \['oni'\]: .* no JAX version"):
        run_derl(parse_config(data))
