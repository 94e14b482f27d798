"""Tests of the simple policy-gradient agent (``rewardlab.agents.pg``): its update is one
full-batch step of ``pg_loss``, config errors, registry, checkpoints, BARFI through it, and
(slow) that it learns the 6x6 GridWorld."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rewardlab
from rewardlab.agents import AGENTS
from rewardlab.agents.pg import PG_DEFAULTS, PGAgent, make_pg, pg_loss
from rewardlab.agents.ppo import normalize_advantages
from rewardlab.core.terms import Term, build_stack
from rewardlab.errors import ConfigError
from rewardlab.experiment.evaluate import evaluate


class Recorder:
    def __init__(self):
        self.metrics: list[dict[str, float]] = []

    def on_iteration(self, step, metrics):
        self.metrics.append(dict(metrics))
        return True


def _cartpole_pg(**params) -> PGAgent:
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=["env"])
    return make_pg(venv, gamma=0.99, seed=0, params={"n_steps": 16, **params})


def test_registry_builds_pg_with_its_defaults():
    agent = AGENTS.get("pg")(rewardlab.make_vec("CartPole-v1", 2), gamma=0.99, seed=0, params={"n_steps": 8})
    assert isinstance(agent, PGAgent)
    for key, value in PG_DEFAULTS.items():
        assert getattr(agent.cfg, key) == value


# One message format for every agent (rewardlab.agents.params): the field, then the problem.
@pytest.mark.parametrize(("params", "match"), [
    ({"clip_coef": 0.1}, r"agent\.params\.clip_coef: not a parameter of agent 'pg' \(PPO-only"),
    ({"n_epochs": 4, "target_kl": 0.01}, r"agent\.params\.n_epochs: .*PPO-only"),
    ({"lr": 1e-3}, r"agent\.params\.lr: unknown parameter for agent 'pg'\. Valid: n_steps, learning_rate"),
    ({"learning_rate": -1.0}, r"agent\.params\.learning_rate: -1\.0 is invalid for agent 'pg'; allowed: a number > 0"),
    ({"gae_lambda": 2}, "gae_lambda"),
])
def test_bad_params_name_the_problem(params, match):
    with pytest.raises(ConfigError, match=match):
        _cartpole_pg(**params)


class KeepRollouts(Term):
    """Env reward; keeps a copy of every rollout handed to ``update``."""

    def __init__(self):
        self.rollouts: list[dict[str, np.ndarray]] = []

    def __call__(self, t):
        return np.asarray(t.env_reward, np.float32)

    def update(self, rollout):
        self.rollouts.append({k: np.array(getattr(rollout, k)) for k in ("obs", "actions", "advantages", "returns")})
        return {}


def test_update_is_one_adam_step_of_the_policy_gradient_loss():
    """Replay the update by hand: ∇ of pg_loss at the pre-update weights (on the rollout's
    advantages and returns), clipped, then Adam's first step ``θ − lr·g/(|g| + eps)``."""
    term = KeepRollouts()
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=rewardlab.RewardStack([term]))
    agent = make_pg(venv, gamma=0.99, seed=0, params={"n_steps": 16, "anneal_lr": False, "ent_coef": 0.0})
    params, fn = agent.functional()  # detached copies of the pre-update weights
    agent.learn(32, None)
    assert agent.optimizer.steps == 1 and len(term.rollouts) == 1
    r = term.rollouts[0]
    logp, value = fn(params, torch.from_numpy(r["obs"]).reshape(32, 4), torch.from_numpy(r["actions"]).reshape(32))
    adv = normalize_advantages(torch.from_numpy(r["advantages"]).reshape(-1))
    loss, _ = pg_loss(logp, adv, value, torch.from_numpy(r["returns"]).reshape(-1), torch.zeros(32), agent.cfg)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), grads, strict=True)]
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    scale = min(1.0, agent.cfg.max_grad_norm / (float(norm) + 1e-6))
    lr = agent.cfg.learning_rate
    for (name, p), g in zip(params.items(), grads, strict=True):
        g = g * scale
        expected = p.detach() - lr * g / (g.abs() + 1e-5)
        torch.testing.assert_close(dict(agent.policy.named_parameters())[name].detach(), expected,
                                   atol=1e-6, rtol=1e-5, msg=name)
    assert float(norm) > 0


def test_pg_loss_gradient_is_the_score_function_estimator():
    logits = torch.tensor([[0.2, -0.1], [0.0, 0.3]], requires_grad=True)
    actions = torch.tensor([0, 1])
    adv = torch.tensor([1.5, -0.5])
    logp = torch.log_softmax(logits, -1).gather(1, actions[:, None]).squeeze(1)
    cfg = make_pg(rewardlab.make_vec("CartPole-v1", 1), gamma=0.99, seed=0, params={"ent_coef": 0.0}).cfg
    loss, _ = pg_loss(logp, adv, torch.zeros(2), torch.zeros(2), torch.zeros(2), cfg)
    (grad,) = torch.autograd.grad(loss, logits)
    probs = torch.softmax(logits.detach(), -1)
    expected = -(adv[:, None] * (torch.nn.functional.one_hot(actions, 2) - probs)) / 2
    torch.testing.assert_close(grad, expected)


def test_checkpoint_resumes_exactly(tmp_path):
    a = _cartpole_pg()
    a.learn(64)
    a.save(tmp_path)
    b = _cartpole_pg()
    b.load(tmp_path)
    assert b.num_timesteps == 64
    a.learn(128)
    b.learn(128)
    for (k, pa), pb in zip(a.policy.named_parameters(), b.policy.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, msg=k)


def test_barfi_differentiates_through_the_pg_update():
    stack = build_stack([{"name": "barfi", "params": {"aux": {"name": "grid_cell", "params": {"cell": [0, 2]}},
                                                      "update_every": 1, "value_hidden": []}}])
    venv = rewardlab.make_vec("toy/GridWorld-v0", 2, reward=stack, size=3, distractor=[0, 2])
    agent = make_pg(venv, gamma=0.99, seed=0, params={"n_steps": 32})
    rec = Recorder()
    agent.learn(256, rec)
    term = stack.terms[0]
    assert term._agent is agent
    assert any(m.get("reward_terms/barfi/hypergrad_norm", 0) > 0 for m in rec.metrics)
    assert not np.allclose(term.phi_net[-1].bias.detach().numpy(), [1.0, 0.0])   # φ moved


@pytest.mark.slow
def test_pg_learns_the_gridworld():
    def make_env(n):
        return rewardlab.make_vec("toy/GridWorld-v0", n, reward=["env"], size=6, max_episode_steps=50)

    agent = make_pg(make_env(8), gamma=0.99, seed=0, params={"n_steps": 128})
    before = evaluate(agent.act, make_env(4), 40, seed=1, deterministic=False).mean_return
    agent.learn(50_000, None)
    after = evaluate(agent.act, make_env(4), 40, seed=1, deterministic=False).mean_return
    assert before < 0.6
    assert after > 0.9
