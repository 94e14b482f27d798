"""``rewardlab run`` with ``agent: jax_ppo``: every seed in one compiled program, the project's
run directory per seed (read by ``rewardlab.results``), checkpoints and ``--resume`` at chunk
boundaries, and the config check for terms without a JAX version."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("jax")
pytest.importorskip("gymnax")

from rewardlab.config import parse_config  # noqa: E402
from rewardlab.errors import ConfigError, RunDirError  # noqa: E402
from rewardlab.experiment.results import load_runs  # noqa: E402
from rewardlab.experiment.runner import run_experiment  # noqa: E402

BASE = {
    "name": "jax_cartpole",
    "env": {"id": "gymnax/CartPole-v1", "n_envs": 4},
    "reward": {"terms": ["env", {"name": "step_penalty", "params": {"value": 0.01}}]},
    "agent": {"name": "jax_ppo", "gamma": 0.99, "params": {"n_steps": 32, "learning_rate": 0.001}},
    "train": {"total_steps": 6 * 128, "seeds": [0, 1, 2]},
    "eval": {"every_steps": 256, "episodes": 4, "final_episodes": 6},
    "log": {"tensorboard": False, "checkpoint_every": 256},
}


def _rows(seed_dir):
    return [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines()]


def test_jax_ppo_run_writes_every_seed_and_resumes_to_the_same_numbers(tmp_path):
    cfg = parse_config(BASE)
    summary = run_experiment(cfg, out=tmp_path / "whole")
    run = summary.run_dir
    assert [s.seed for s in summary.seeds] == [0, 1, 2]
    for seed in (0, 1, 2):
        d = run / f"seed_{seed}"
        assert json.loads((d / "status.json").read_text()) == {"status": "done", "step": 768}
        final = json.loads((d / "final_eval.json").read_text())
        assert final["episodes"] == 6 and final["success_rate"] is None  # CartPole has no success
        rows = _rows(d)
        train = [r for r in rows if r["kind"] == "train"]
        assert [r["step"] for r in train] == [128 * (u + 1) for u in range(6)]
        assert {"charts/true_return", "charts/shaped_return", "reward_terms/env", "reward_terms/step_penalty",
                "losses/policy_loss", "charts/SPS"} <= set().union(*train)
        assert [r["step"] for r in rows if r["kind"] == "eval"] == [256, 512, 768]
        assert rows[-1]["kind"] == "final"
        # per-term sums add up to the shaped return (episodes are averaged the same way)
        r = next(r for r in train if "charts/true_return" in r)
        assert r["reward_terms/env"] + r["reward_terms/step_penalty"] == pytest.approx(r["charts/shaped_return"])
        assert r["reward_terms/env"] == pytest.approx(r["charts/true_return"])
    assert len(load_runs(run).finals()) == 3
    assert json.loads((run / "summary.json").read_text())["batched"]["runs_in_one_program"] == 3

    # Interrupt after the first chunk (2 updates), then resume: the same rows as the whole run.
    def stop(seed, step, total, sps, ret):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, out=tmp_path / "cut", on_progress=stop)
    cut = next((tmp_path / "cut").iterdir())
    assert json.loads((cut / "seed_1" / "status.json").read_text())["status"] == "interrupted"
    assert max(r["step"] for r in _rows(cut / "seed_1")) == 256
    run_experiment(resume=cut)

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "charts/SPS"} for r in rows]

    for seed in (0, 1, 2):
        assert strip(_rows(cut / f"seed_{seed}")) == strip(_rows(run / f"seed_{seed}"))
        assert (json.loads((cut / f"seed_{seed}" / "final_eval.json").read_text())
                == json.loads((run / f"seed_{seed}" / "final_eval.json").read_text()))

    # A checkpoint whose state file no longer matches its manifest is refused, not trained on.
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, out=tmp_path / "damaged", on_progress=stop)
    damaged = next((tmp_path / "damaged").iterdir())
    state = damaged / "checkpoint" / "jax_state.npz"
    state.write_bytes(state.read_bytes()[:-8])
    with pytest.raises(RunDirError, match="jax_state.npz.*refusing to resume from a damaged checkpoint"):
        run_experiment(resume=damaged)


def test_a_term_without_a_jax_version_fails_the_config_check():
    data = {**BASE, "reward": {"terms": ["env", {"name": "oni", "params": {}}]}}
    with pytest.raises(ConfigError, match=r"reward.terms.1.name: term 'oni' has no version for agent 'jax_ppo'; "
                                          r"terms with one: derl_program, env, novelty, open_door, pickup, "
                                          r"potential, reach"):
        parse_config(data)


def test_reward_variants_train_in_one_program_and_get_a_run_directory_each(tmp_path):
    data = {**BASE, "train": {"total_steps": 2 * 128, "seeds": [0, 1]},
            "eval": {"every_steps": 128, "episodes": 2, "final_episodes": 2}, "log": {**BASE["log"],
                                                                                      "checkpoint_every": 128}}
    data["reward"] = {"terms": data["reward"]["terms"],
                      "variants": {"plain": {"step_penalty.weight": 0.0}, "penalised": {"step_penalty.value": 0.5}}}
    summary = run_experiment(parse_config(data), out=tmp_path)
    run = summary.run_dir
    assert len(summary.seeds) == 4
    top = json.loads((run / "summary.json").read_text())
    assert sorted(top["variants"]) == ["penalised", "plain"] and top["batched"]["runs_in_one_program"] == 4
    for name in ("plain", "penalised"):
        cfg = parse_config(__import__("yaml").safe_load((run / name / "config.yaml").read_text()))
        assert cfg.name == f"jax_cartpole-{name}" and cfg.reward.variants is None
        assert len(load_runs(run / name).finals()) == 2
    penalty = {t.name: t for t in parse_config(__import__("yaml").safe_load(
        (run / "penalised" / "config.yaml").read_text())).reward.terms}["step_penalty"]
    assert penalty.params["value"] == 0.5
    for seed in (0, 1):
        plain = [r for r in _rows(run / "plain" / f"seed_{seed}") if "charts/true_return" in r]
        pen = [r for r in _rows(run / "penalised" / f"seed_{seed}") if "charts/true_return" in r]
        assert all(r["charts/shaped_return"] == pytest.approx(r["charts/true_return"]) for r in plain)
        assert all(r["reward_terms/step_penalty"] == pytest.approx(-0.5 * r["charts/episode_length"]) for r in pen)
    with pytest.raises(Exception, match="is one variant of the run"):
        run_experiment(resume=run / "plain")
    with pytest.raises(ConfigError, match="reward.variants.plain.step_penalty.valu: not a reward parameter a variant"):
        data["reward"]["variants"] = {"plain": {"step_penalty.valu": 0.0}}
        run_experiment(parse_config(data), out=tmp_path / "bad")
    data["agent"] = {"name": "ppo"}
    with pytest.raises(ConfigError, match="reward.variants: agent 'ppo' trains one reward per run"):
        parse_config(data)


def test_cli_run_of_variants_ends_with_the_comparison_table_and_plot(tmp_path, capsys):
    """``rewardlab run`` of a file with ``reward.variants`` reports the variants side by side (IQM
    [95% CI], P(> first variant)) and writes results.json and compare.png into the run."""
    import yaml

    from rewardlab.cli import main

    data = {**BASE, "train": {"total_steps": 2 * 128, "seeds": [0, 1, 2, 3, 4]},
            "eval": {"every_steps": 256, "episodes": 2, "final_episodes": 3},
            "log": {**BASE["log"], "dir": str(tmp_path)}}
    data["reward"] = {"terms": data["reward"]["terms"],
                      "variants": {"plain": {"step_penalty.weight": 0.0}, "penalised": {"step_penalty.value": 0.5}}}
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # the file's variant order is the report's
    assert main(["run", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "IQM" in out and "P(>" in out and "penalised" in out and "per seed" not in out
    run = next(tmp_path.glob("jax_cartpole__*"))
    res = json.loads((run / "results.json").read_text())
    assert [v["name"] for v in res["variants"]] == ["plain", "penalised"]
    assert all(v["seeds"] == 5 for v in res["variants"]) and (run / "compare.png").stat().st_size > 0


def test_a_jax_env_built_with_bad_kwargs_is_named_as_such_and_a_non_jax_env_is_refused(tmp_path):
    bad_kwargs = {**BASE, "env": {"id": "minigrid/MiniGrid-DoorKey-5x5", "n_envs": 2, "kwargs": {"no_such": 1}}}
    with pytest.raises(ConfigError, match=r"env \(minigrid/MiniGrid-DoorKey-5x5\): .*no_such") as e:
        run_experiment(parse_config(bad_kwargs), out=tmp_path)
    assert "needs a JAX env" not in str(e.value)
    with pytest.raises(ConfigError, match="agent jax_ppo needs a JAX env"):
        run_experiment(parse_config({**BASE, "env": {"id": "CartPole-v1", "n_envs": 2}}), out=tmp_path)
