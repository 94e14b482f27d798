"""``rewardlab check`` validates the agent before anything is built or written: typed
``agent.params`` and the reward terms' hooks against the hooks the agent honours."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rewardlab.cli import main
from rewardlab.config import parse_config
from rewardlab.config.agents import agents_honouring
from rewardlab.errors import ConfigError

BASE = {
    "name": "t",
    "env": {"id": "CartPole-v1", "n_envs": 2},
    "reward": {"terms": ["env"]},
    "agent": {"name": "ppo", "params": {"n_steps": 16}},
    "train": {"total_steps": 64},
    "eval": {"every_steps": 64, "episodes": 1, "final_episodes": 1, "n_envs": 1},
    "log": {"tensorboard": False, "checkpoint_every": 64},
}
BARFI = {"name": "barfi", "params": {"aux": "cartpole_upright"}}


def with_(agent: str, params: dict | None = None, terms: list | None = None) -> dict:
    return {**BASE, "agent": {"name": agent, "params": params or {}}, "reward": {"terms": terms or ["env"]}}


def check(tmp_path: Path, capsys, data: dict, *extra: str) -> tuple[int, str]:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["check", str(path), *extra])
    cap = capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created on disk
    return code, " ".join((cap.err + cap.out).split())


def test_check_refuses_barfi_under_sb3_ppo_naming_both(tmp_path, capsys):
    code, out = check(tmp_path, capsys, with_("sb3_ppo", terms=[BARFI]))
    assert code == 2
    # The "use ..." list is generated from HONOURED_HOOKS: "ppo, pg or text_ppo" plus any later agent.
    others = agents_honouring("update")
    assert others[:3] == ["ppo", "pg", "text_ppo"]
    use = f"{', '.join(others[:-1])} or {others[-1]}"
    assert f"term 'barfi' learns through update(); agent 'sb3_ppo' never calls it: use {use}" in out


def test_the_hook_mismatch_is_reported_before_the_params_of_the_wrong_agent(tmp_path, capsys):
    code, out = check(tmp_path, capsys, with_("sb3_ppo", {"n_minibatches": 4}, terms=[BARFI]))
    assert code == 2 and "term 'barfi' learns through update()" in out


@pytest.mark.parametrize("agent", ["ppo", "pg"])
def test_barfi_is_fine_under_the_ppo_core(agent):
    parse_config(with_(agent, terms=[BARFI]))


@pytest.mark.parametrize(("terms", "ok"), [
    ([{"name": "oni", "params": {"backend": {"name": "scripted", "rules": "oni_nethack"}}}], True),  # lookup
    ([{"name": "oni", "params": {"backend": {"name": "scripted", "rules": "oni_nethack"},
                                 "variant": "classifier"}}], False),
    ([{"name": "calm", "params": {}}], True),  # calm's update only reports counters
    (["env", {"name": "step_penalty", "params": {"value": 0.1}}], True),
])
def test_hook_check_follows_what_a_term_needs(terms, ok):
    data = with_("sb3_ppo", terms=terms)
    if ok:
        parse_config(data)
    else:
        with pytest.raises(ConfigError, match="term 'oni' learns through update\\(\\); agent 'sb3_ppo' never calls it"):
            parse_config(data)


def test_renamed_term_is_named_with_its_kind():
    with pytest.raises(ConfigError, match=r"term 'learned \(barfi\)' learns through update\(\); agent 'sb3_a2c'"):
        parse_config(with_("sb3_a2c", terms=[{**BARFI, "as": "learned"}]))


def test_check_refuses_a_bad_agent_param_naming_the_field(tmp_path, capsys):
    code, out = check(tmp_path, capsys, with_("ppo", {"lerning_rate": 1e-3}))
    assert code == 2
    assert "agent.params.lerning_rate: unknown parameter for agent 'ppo'. Did you mean 'learning_rate'?" in out
    code, out = check(tmp_path, capsys, with_("ppo", {"n_steps": -3}))
    assert code == 2 and "agent.params.n_steps: -3 is invalid for agent 'ppo'; allowed: an integer >= 1" in out
    code, out = check(tmp_path, capsys, BASE, "--set", "agent.params.n_epochs=0")
    assert code == 2 and "agent.params.n_epochs: 0 is invalid" in out


def test_run_refuses_before_making_the_run_directory(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(with_("sb3_ppo", terms=[BARFI])))
    code = main(["run", str(path), "--out", str(tmp_path / "runs"), "--quiet"])
    cap = capsys.readouterr()
    assert code == 2 and "never calls it" in cap.err + cap.out
    assert not (tmp_path / "runs").exists()
