"""Bad input gets one clear message naming the problem (config, names, values, run dirs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rewardlab.cli import main
from rewardlab.config import apply_overrides, load_config
from rewardlab.errors import ConfigError

BASE = {
    "name": "t",
    "env": {"id": "CartPole-v1", "n_envs": 2},
    "reward": {"terms": ["env", {"name": "step_penalty", "params": {"value": 0.01}}]},
    "agent": {"name": "sb3_ppo", "params": {"n_steps": 64, "batch_size": 64}},
    "train": {"total_steps": 256},
    "eval": {"every_steps": 128, "episodes": 2, "final_episodes": 2, "n_envs": 2},
    "log": {"tensorboard": False, "checkpoint_every": 128},
}


def write(tmp_path: Path, data) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, " ".join((cap.err + cap.out).split())


def test_malformed_yaml_names_line(tmp_path, capsys):
    p = write(tmp_path, "env:\n  id: CartPole-v1\n  n_envs: [1, 2\n")
    code, out = run_cli(capsys, "check", p)
    assert code == 2
    assert "malformed YAML" in out and "line" in out


def test_empty_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("does/not/exist.yaml")


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"env": {"id": "minihack/Room-5x6"}}, "Did you mean 'minihack/Room-5x5'"),
        ({"reward": {"terms": ["step_penalti"]}}, "Did you mean 'step_penalty'"),
        ({"agent": {"name": "sb3_ppp"}}, "Did you mean 'sb3_ppo'"),
        ({"agent": {"name": "sb3_ppo", "gamma": 1.5}},
         "agent.gamma: Input should be less than or equal to 1 (got 1.5)"),
        ({"env": {"id": "CartPole-v1", "n_envs": "many"}}, "env.n_envs"),
        ({"train": {"total_steps": 0}}, "train.total_steps"),
        ({"train": {"seeds": [1, 1]}}, "seeds must be distinct"),
        ({"env": {"id": "CartPole-v1", "nenvs": 2}}, "env.nenvs: unknown field in env; allowed: id, n_envs, kwargs"),
        ({"reward": {"terms": ["env"], "clip": [1, -1]}}, "clip low (1.0) must be smaller than clip high (-1.0)"),
        ({"reward": {"terms": []}}, "at least one reward term"),
    ],
)
def test_invalid_values_name_the_field(tmp_path, capsys, patch, expected):
    data = {**BASE, **patch}
    code, out = run_cli(capsys, "check", write(tmp_path, data))
    assert code == 2
    assert expected in out
    assert "Traceback" not in out


def test_unknown_term_param_lists_valid(tmp_path, capsys):
    data = {**BASE, "reward": {"terms": [{"name": "step_penalty", "params": {"valu": 1}}]}}
    code, out = run_cli(capsys, "check", write(tmp_path, data))
    assert code == 2 and "no parameter 'valu'" in out and "valid parameters: value" in out


def test_unknown_agent_param_lists_valid(tmp_path, capsys):
    data = {**BASE, "agent": {"name": "sb3_ppo", "params": {"n_step": 64}}}
    code, out = run_cli(capsys, "run", write(tmp_path, data), "--out", tmp_path / "runs", "--quiet")
    assert code == 2 and "agent.params.n_step: unknown parameter for agent 'sb3_ppo' (SB3 PPO)" in out
    assert "Did you mean 'n_steps'?" in out
    assert not (tmp_path / "runs").exists()  # refused before the run directory is made


def test_check_ok(tmp_path, capsys):
    code, out = run_cli(capsys, "check", write(tmp_path, BASE))
    assert code == 0 and "ok" in out and "RewardStack(1*env, 1*step_penalty)" in out


def test_overrides_select_terms_by_name():
    data = apply_overrides(BASE, ["reward.terms.step_penalty.weight=0.5", "train.seeds=[3, 4]", "agent.gamma=0.9"])
    assert data["reward"]["terms"][1]["weight"] == 0.5
    assert data["train"]["seeds"] == [3, 4] and data["agent"]["gamma"] == 0.9
    assert BASE["reward"]["terms"][1].get("weight") is None  # the input is not modified
    with pytest.raises(ConfigError, match="no list item named 'potential'"):
        apply_overrides(BASE, ["reward.terms.potential.weight=1"])
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(BASE, ["agent.gamma"])


def test_resume_on_non_run_dir(tmp_path, capsys):
    code, out = run_cli(capsys, "run", "--resume", tmp_path)
    assert code == 2 and "is not a rewardlab run directory" in out


def test_plot_on_non_run_dir(tmp_path, capsys):
    code, out = run_cli(capsys, "plot", tmp_path, "--out", tmp_path / "x.png")
    assert code == 2 and "no metrics.jsonl" in out


def test_list_shows_registries(capsys):
    code, out = run_cli(capsys, "list")
    assert code == 0
    for name in ("minihack/Room-5x5", "potential", "novelty", "minihack/stairs_distance", "sb3_ppo"):
        assert name in out
