"""Values out of range (issue #23, items 13, 14 and 16): non-finite or overflowing weights,
negative or huge seeds, absurd step counts, unknown or wrongly typed env kwargs and agent
params, run names with a path in them, and ``--seeds`` — each a message naming the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rewardlab.cli import main
from rewardlab.config import load_config, parse_config
from rewardlab.config.schema import MAX_SEED, MAX_STEPS, MAX_WEIGHT
from rewardlab.errors import ConfigError

BASE = {"name": "t", "env": {"id": "CartPole-v1", "n_envs": 2}, "reward": {"terms": ["env"]},
        "agent": {"name": "ppo", "params": {"n_steps": 64}}, "train": {"total_steps": 256},
        "eval": {"every_steps": 128, "episodes": 2, "final_episodes": 2, "n_envs": 2},
        "log": {"tensorboard": False, "checkpoint_every": 128}}


def with_(path: str, value) -> dict:
    data = copy.deepcopy(BASE)
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return data


def check(tmp_path: Path, capsys, data, *extra) -> tuple[int, str]:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(data))
    code = main(["check", str(p), *extra])
    cap = capsys.readouterr()
    return code, " ".join((cap.err + cap.out).split())


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("reward.terms", [{"name": "env", "weight": float("nan")}], "reward.terms.0.weight: nan is not a finite number"),
    ("reward.terms", [{"name": "env", "weight": float("inf")}], "reward.terms.0.weight: inf is not a finite number"),
    ("reward.terms", [{"name": "env", "weight": 1e39}], "reward.terms.0.weight"),       # float32 overflow
    ("reward.terms", [{"name": "env", "weight": -2 * MAX_WEIGHT}], "reward.terms.0.weight"),
    ("reward.clip", [float("-inf"), 1.0], "reward.clip.0: -inf is not a finite number"),
    ("reward.clip", [-1e39, 1.0], "reward.clip"),
    ("train.seeds", [-1], "train.seeds.0"),
    ("train.seeds", [2**70], "train.seeds.0"),
    ("train.seeds", [MAX_SEED + 1], "train.seeds.0"),
    ("train.total_steps", 10**30, "does not fit a 64-bit integer"),
    ("train.total_steps", MAX_STEPS + 1, "train.total_steps"),
    ("eval.every_steps", MAX_STEPS + 1, "eval.every_steps"),
    ("log.checkpoint_every", MAX_STEPS + 1, "log.checkpoint_every"),
    ("eval.final_episodes", 10**9, "eval.final_episodes"),
    ("eval.n_envs", 10**6, "eval.n_envs"),
    ("agent.gamma", float("nan"), "agent.gamma"),
    ("agent.params", {"bogus": 1}, "agent.params.bogus: unknown parameter"),
    ("agent.params", {"n_steps": "many"}, "agent.params.n_steps: 'many' is invalid"),
    ("agent.params", {"learning_rate": float("nan")}, "agent.params.learning_rate: nan is not a finite number"),
    ("agent", {"name": "sb3_ppo", "params": {"learning_rate": float("inf")}},
     "agent.params.learning_rate: inf is not a finite number"),
    ("agent", {"name": "sb3_ppo", "params": {"n_steps": "x"}}, "agent.params.n_steps"),
    ("agent", {"name": "sb3_ppo", "params": {"bogus": 1}}, "agent.params.bogus"),
    ("sweep", {"seed": -1, "params": {"agent.gamma": {"low": 0.9, "high": 0.99}}}, "sweep.seed"),
])
def test_out_of_range_values_name_the_field(tmp_path, capsys, path, value, expected):
    code, out = check(tmp_path, capsys, with_(path, value))
    assert code == 2, out
    assert expected in out and "Traceback" not in out


def test_bounds_themselves_are_accepted():
    cfg = parse_config(with_("train", {"total_steps": MAX_STEPS, "seeds": [0, MAX_SEED]}))
    assert cfg.train.seeds == [0, MAX_SEED]
    heavy = parse_config(with_("reward.terms", [{"name": "env", "weight": -MAX_WEIGHT}]))
    assert heavy.reward.terms[0].weight == -MAX_WEIGHT


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"bogus": 1}, "env.kwargs.bogus: unknown keyword argument of env 'CartPole-v1'; valid: "
                   "sutton_barto_reward, render_mode, max_episode_steps, disable_env_checker"),
    ({"max_episode_steps": "x"}, "env.kwargs.max_episode_steps: 'x' is not int | None"),
    ({"max_episode_steps": 1.5}, "env.kwargs.max_episode_steps: 1.5 is not int | None"),
    ({"sutton_barto_reward": "yes"}, "env.kwargs.sutton_barto_reward: 'yes' is not bool"),
    ({"render_mode": 3}, "env.kwargs.render_mode: 3 is not str | None"),
])
def test_gymnasium_env_kwargs_are_checked_against_the_signature(tmp_path, capsys, kwargs, expected):
    code, out = check(tmp_path, capsys, with_("env.kwargs", kwargs))
    assert code == 2, out
    assert expected in out


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"max_episode_steps": "long"}, "env.kwargs.max_episode_steps: 'long' is not int"),
    ({"max_episode_steps": True}, "env.kwargs.max_episode_steps: True is not int"),
    ({"max_episode_steps": -3}, "env.kwargs: env 'toy/GridWorld-v0' could not be built"),
    ({"size": "big"}, "env.kwargs"),  # goes through **kwargs: reported when the env is built
    ({"bogus": 1}, "env.kwargs.bogus"),
])
def test_family_env_kwargs(tmp_path, capsys, kwargs, expected):
    data = with_("env", {"id": "toy/GridWorld-v0", "kwargs": kwargs})
    code, out = check(tmp_path, capsys, data)
    assert code == 2, out
    assert expected in out and "Traceback" not in out


def test_env_kwargs_are_checked_before_a_run_directory_is_written(tmp_path, capsys):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(with_("env.kwargs", {"bogus": 1})))
    assert main(["run", str(p), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    assert "env.kwargs.bogus" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", "..", ".", "a\\b", "x\x00y", "", "x" * 300])
def test_run_names_stay_under_out(tmp_path, capsys, name):
    code, out = check(tmp_path, capsys, with_("name", name))
    assert code == 2 and "name:" in out


def test_run_name_with_a_path_never_leaves_out(tmp_path, capsys):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(with_("name", "../escaped")))
    out = tmp_path / "runs" / "inner"
    assert main(["run", str(p), "--out", str(out), "--quiet"]) == 2
    assert not list(tmp_path.glob("runs/escaped*")) and not list(tmp_path.glob("escaped*"))


@pytest.mark.parametrize(("seeds", "expected"), [("-1", "--seeds"), (str(2**80), "--seeds"),
                                                 ("0,x", "--seeds"), (str(MAX_SEED + 1), "--seeds")])
def test_cli_seeds_out_of_range(tmp_path, capsys, seeds, expected):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(BASE))
    with pytest.raises(SystemExit) as e:
        main(["run", str(p), "--seeds", seeds, "--out", str(tmp_path / "runs"), "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_seed_overrides_are_bounded_too(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="train.seeds.0"):
        load_config(p, ["train.seeds=[-5]"])


def test_the_bounds_table_states_the_limits():
    from rewardlab.config import limits

    page = (Path(__file__).resolve().parents[2] / "docs" / "experiments.md").read_text()
    table = page[page.index("## Bounds"):]
    assert limits.MAX_FILE_BYTES == 2**20 and "| 1 MiB" in table
    assert f"| {limits.MAX_DEPTH} levels" in table and f"| {limits.MAX_NODES:,} after" in table
    assert limits.MAX_WEIGHT == 1e6 and "≤ 10⁶ | rewards" in table
    assert limits.MAX_SEED == 2**31 - 1 and "| 0 … 2³¹−1 |" in table
    assert limits.MAX_STEPS == 10**12 and "| ≤ 10¹² |" in table
    assert limits.MAX_EPISODES == 10**6 and limits.MAX_ENVS == 1024 and "| ≤ 1024 |" in table
    assert f"1–{limits.MAX_NAME} printable" in table


@pytest.mark.parametrize(("term", "expected"), [
    ({"name": "step_penalty", "params": {"valu": 1}},
     "reward.terms.0.params.valu: reward term 'step_penalty' has no parameter 'valu'; Did you mean 'value'?"),
    ({"name": "step_penalty", "params": {"value": "high"}}, "reward.terms.0.params.value: 'high' is not float"),
    ({"name": "step_penalty", "params": {"value": [1]}}, "reward.terms.0.params.value: [1] is not float"),
])
def test_term_params_are_checked_before_a_run_directory_is_written(tmp_path, capsys, term, expected):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(with_("reward.terms", [term])))
    assert main(["run", str(p), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    assert expected in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "runs").exists()


def test_a_term_constructor_that_raises_names_the_term(tmp_path, capsys):
    from rewardlab.core.terms import TERMS, Term, register_term

    @register_term("test_picky")
    class Picky(Term):
        def __init__(self, size: int = 1):
            if size > 10:
                raise ValueError(f"size {size} is too big")

        def __call__(self, t):
            raise AssertionError

    try:
        picky = {"name": "test_picky", "params": {"size": 99}}
        code, out = check(tmp_path, capsys, with_("reward.terms", ["env", picky]))
    finally:
        TERMS.unregister("test_picky")
    assert code == 2
    assert ("reward.terms.1.params: reward term 'test_picky' could not be built with {'size': 99}: "
            "ValueError: size 99 is too big") in out
