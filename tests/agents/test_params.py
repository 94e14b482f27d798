"""Typed agent params (``validate_agent_params``) and the agents' declared hooks (manifest data)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rewardlab.agents.params import validate_agent_params
from rewardlab.core.registry import manifest_entries
from rewardlab.core.terms import AGENT_HOOKS
from rewardlab.errors import ConfigError


@pytest.mark.parametrize(("agent", "params", "field"), [
    ("ppo", {"n_steps": 64, "hidden_sizes": [32, 32]}, ("n_steps", 64)),
    ("pg", {"learning_rate": 1e-2}, ("n_epochs", 1)),
    ("text_ppo", {"embed_dim": 32}, ("n_steps", 32)),
])
def test_valid_params_give_the_typed_model(agent, params, field):
    cfg = validate_agent_params(agent, params)
    assert getattr(cfg, field[0]) == field[1]
    assert type(cfg).__name__.endswith("Config")


@pytest.mark.parametrize(("agent", "params", "message"), [
    ("ppo", {"lerning_rate": 1e-3},
     r"^agent\.params\.lerning_rate: unknown parameter for agent 'ppo'\. Did you mean 'learning_rate'\? "
     r"Valid: n_steps"),
    ("ppo", {"n_steps": -3}, r"^agent\.params\.n_steps: -3 is invalid for agent 'ppo'; allowed: an integer >= 1$"),
    ("ppo", {"hidden_sizes": "64"}, r"^agent\.params\.hidden_sizes: '64' is invalid"),
    ("ppo", {"norm_obs": "yes"}, r"^agent\.params\.norm_obs: 'yes' is invalid for agent 'ppo'; allowed: true or false"),
    ("pg", {"clip_coef": 0.1}, r"^agent\.params\.clip_coef: not a parameter of agent 'pg' \(PPO-only"),
    ("text_ppo", {"hidden_sizes": [8]}, r"^agent\.params\.hidden_sizes: not a parameter of agent 'text_ppo' "
                                        r"\(text_ppo's network is the slot scorer"),
    ("sb3_ppo", {"n_step": 64}, r"^agent\.params\.n_step: unknown parameter for agent 'sb3_ppo' \(SB3 PPO\)\. "
                                r"Did you mean 'n_steps'\?"),
    ("sb3_ppo", {"n_steps": "64"}, r"^agent\.params\.n_steps: '64' is invalid for agent 'sb3_ppo'; allowed: int$"),
    ("sb3_ppo", {"gamma": 0.9}, r"^agent\.params\.gamma: set by rewardlab"),
    ("sb3_dqn", {"train_freq": [4, "step"]}, r"^agent\.params\.train_freq: \[4, 'step'\] is invalid"),
    ("sb3_a2c", {"use_rms_prop": 1}, r"^agent\.params\.use_rms_prop: 1 is invalid for agent 'sb3_a2c'; allowed: bool"),
])
def test_bad_params_name_the_field(agent, params, message):
    with pytest.raises(ConfigError, match=message):
        validate_agent_params(agent, params)


def test_sb3_params_pass_through_unchanged():
    params = {"n_steps": 64, "learning_rate": 3e-4, "policy_kwargs": {"net_arch": [32]}, "target_kl": None}
    assert validate_agent_params("sb3_ppo", params) == params


def test_ild_params():
    pytest.importorskip("jax")
    p = validate_agent_params("ild", {"demos": "ant", "lr": 1e-3, "hidden": [32]})
    assert p.demos == "ant" and p.ild_config().hidden == (32,)
    with pytest.raises(ConfigError, match=r"^agent\.params\.eval_every: 0 is invalid for agent 'ild'"):
        validate_agent_params("ild", {"eval_every": 0})


def test_every_registered_agent_declares_a_params_model():
    from rewardlab.agents import AGENTS

    assert set(manifest_entries("AGENT_PARAMS")) == set(AGENTS.names())


def test_declared_hooks_are_known_and_match_the_agent_classes():
    from rewardlab.agents.pg import PGAgent
    from rewardlab.agents.ppo import PPOAgent
    from rewardlab.agents.text_policy import TextPPOAgent

    declared = manifest_entries("HONOURED_HOOKS")
    assert all(set(hooks) <= set(AGENT_HOOKS) for hooks in declared.values())
    for name, cls in (("ppo", PPOAgent), ("pg", PGAgent), ("text_ppo", TextPPOAgent)):
        assert frozenset(declared[name]) == cls.honoured_hooks == frozenset(AGENT_HOOKS), name
    assert all(not declared[name] for name in ("sb3_ppo", "sb3_a2c", "sb3_dqn", "ild"))


def test_variants_change_only_declared_extension_points():
    """pg and text_ppo override no private method of the core (they set update_rule / build_policy)."""
    from rewardlab.agents.pg import PGAgent
    from rewardlab.agents.text_policy import TextPPOAgent

    for cls in (PGAgent, TextPPOAgent):
        private = [k for k, v in vars(cls).items() if k.startswith("_") and not k.startswith("__") and callable(v)]
        assert private == [], (cls.__name__, private)


def test_params_check_imports_no_torch():
    code = ("import sys; from rewardlab.agents.params import validate_agent_params; "
            "validate_agent_params('ppo', {'n_steps': 8}); validate_agent_params('text_ppo', {}); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
