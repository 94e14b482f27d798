"""Tests of our PPO (``rewardlab.agents.ppo``): GAE, truncation, determinism, checkpoints,
reward-research hooks, config errors; slow learning tests on CartPole and MiniHack."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import rewardlab
from rewardlab.agents import AGENTS
from rewardlab.agents.ppo import (
    FlatAdam,
    FusedHeads,
    PPOAgent,
    PPOConfig,
    Rollout,
    compute_gae,
    flatten_parameters,
    make_ppo,
)
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import Term
from rewardlab.core.wrappers import ShapedVectorEnv
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.experiment.evaluate import evaluate
from rewardlab.shaping.basic import EnvReward

SMALL = {"n_steps": 16, "n_minibatches": 2, "n_epochs": 2}


class Recorder:
    """A ``TrainCallback`` that keeps every iteration's metrics."""

    def __init__(self, stop_after: int | None = None):
        self.steps: list[int] = []
        self.metrics: list[dict[str, float]] = []
        self.stop_after = stop_after

    def on_iteration(self, num_timesteps: int, metrics: dict[str, float]) -> bool:
        self.steps.append(num_timesteps)
        self.metrics.append(dict(metrics))
        return self.stop_after is None or len(self.steps) < self.stop_after

    def losses(self) -> list[dict[str, float]]:
        return [{k: v for k, v in m.items() if k.startswith("losses/")} for m in self.metrics]


class CountEnv(gym.Env):
    """Obs ``[t]`` (steps taken this episode), reward 1; ends after ``length`` steps, by
    termination or by truncation (a time limit)."""

    def __init__(self, length: int, truncate: bool):
        self.length, self.truncate = length, truncate
        self.observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.length
        obs = np.array([float(self.t)], np.float32)
        return obs, 1.0, end and not self.truncate, end and self.truncate, {}


def shaped(env_fns: list, terms: list | None = None) -> ShapedVectorEnv:
    venv = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    return ShapedVectorEnv(venv, RewardStack(terms or [EnvReward()]))


def cartpole(n: int = 2, terms: list | None = None) -> Any:
    return rewardlab.make_vec("CartPole-v1", n, reward=RewardStack(terms or [EnvReward()]))


# -- GAE ---------------------------------------------------------------------------------
def test_gae_matches_hand_computed_example_with_truncation_bootstrap():
    g, lam = 0.9, 0.8
    # env 0: terminates after t=1; env 1: truncated after t=0 (true final obs has V=5).
    rewards = torch.tensor([[1.0, 2.0], [0.5, 1.0], [1.0, 0.0]])
    values = torch.tensor([[0.2, 0.4], [0.3, 0.1], [0.6, 0.7]])
    term = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    trunc = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    final_v = torch.tensor([[0.0, 5.0], [0.0, 0.0], [0.0, 0.0]])
    last_v = torch.tensor([2.0, 3.0])
    adv, ret = compute_gae(rewards, values, term, trunc, final_v, last_v, g, lam)

    # env 0, by hand: t=2 bootstraps from last_v; t=1 terminates (no bootstrap); t=0 normal.
    d2 = 1.0 + g * 2.0 - 0.6
    d1 = 0.5 - 0.3
    d0 = 1.0 + g * 0.3 - 0.2
    a0 = [d0 + g * lam * d1, d1, d2]
    # env 1: t=2 from last_v; t=1 normal; t=0 truncated: r + γ·V(final_obs), no recursion.
    e2 = 0.0 + g * 3.0 - 0.7
    e1 = 1.0 + g * 0.7 - 0.1 + g * lam * e2
    e0 = 2.0 + g * 5.0 - 0.4
    a1 = [e0, e1, e2]
    np.testing.assert_allclose(adv.numpy(), np.array([a0, a1]).T, rtol=1e-6)
    np.testing.assert_allclose(ret.numpy(), adv.numpy() + values.numpy(), rtol=1e-6)


def test_gae_lambda_one_gives_discounted_returns():
    r = torch.ones(4, 1)
    z = torch.zeros(4, 1)
    _, ret = compute_gae(r, z, z, z, z, torch.zeros(1), 0.5, 1.0)
    np.testing.assert_allclose(ret[:, 0].numpy(), [1.875, 1.75, 1.5, 1.0])


def test_truncated_rows_bootstrap_from_true_final_obs_not_the_reset_obs():
    # env 0 terminates after 3 steps, env 1 is truncated after 2 steps.
    venv = shaped([lambda: CountEnv(3, truncate=False), lambda: CountEnv(2, truncate=True)])
    # A negligible learning rate keeps the critic as it was during the rollout.
    params = {"n_steps": 6, "n_minibatches": 1, "n_epochs": 1, "learning_rate": 1e-12}
    agent = make_ppo(venv, gamma=0.9, seed=0, params=params)
    agent.learn(6, Recorder())  # the rollout's buffer stays in place: inspect it
    buf = agent.buffer
    trunc, term = buf.truncated.numpy(), buf.terminated.numpy()
    np.testing.assert_array_equal(trunc[:, 1], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(term[:, 0], [0, 0, 1, 0, 0, 1])
    assert trunc[:, 0].sum() == term[:, 1].sum() == 0
    with torch.no_grad():
        v_final = agent.policy.value(torch.tensor([[2.0]])).item()
        v_reset = agent.policy.value(torch.tensor([[0.0]])).item()
    assert abs(v_final - v_reset) > 1e-4  # the check below can tell them apart
    fv = buf.final_values.numpy()
    np.testing.assert_allclose(fv[trunc[:, 1] > 0, 1], v_final, rtol=1e-5)
    assert (fv[:, 0] == 0).all()  # terminated rows bootstrap nothing
    # The stored obs right after a truncation is the next episode's first obs (SAME_STEP).
    obs = buf.obs[""].numpy()[:, 1, 0]
    for t in np.flatnonzero(trunc[:-1, 1]):
        assert obs[t + 1] == 0.0


# -- the package refactor changed no number -----------------------------------------------------
# First-update losses of the single-file PPO before it became the ``agents/ppo/`` package
# (rewardlab/agents/ppo.py and agents/pg.py at commit 9c739c6), recorded by running that old code
# with exactly these settings (2 envs, seed 0, gamma 0.99, reward ["env"], learn(32)). On the
# machine they were recorded on the refactored core reproduced them, and the weights after three
# updates, bit for bit; the tolerance only allows for another CPU's float rounding.
PRE_REFACTOR_FIRST_UPDATE = {
    "ppo": ("ppo", "CartPole-v1", {"n_steps": 16, "n_minibatches": 2, "n_epochs": 2},
            {"policy_loss": 0.00022711046040058136, "value_loss": 24.86210823059082, "entropy": 0.6931454539299011,
             "old_approx_kl": -0.00012184120714664459, "approx_kl": 6.807968020439148e-07, "clipfrac": 0.0,
             "explained_variance": 0.010904312133789062}),
    "pg": ("pg", "CartPole-v1", {"n_steps": 16},
           {"policy_loss": -0.00023586489260196686, "value_loss": 42.025325775146484, "entropy": 0.6931461095809937,
            "explained_variance": 0.007918953895568848}),
    "ppo-box-normalised": ("ppo", "Pendulum-v1", {"n_steps": 16, "n_minibatches": 2, "n_epochs": 2, "norm_obs": True,
                                                  "norm_reward": True},
                           {"policy_loss": -0.00011345837265253067, "value_loss": 17.387998580932617,
                            "entropy": 1.4193098545074463, "old_approx_kl": 0.0005656871944665909,
                            "approx_kl": 4.964880645275116e-06, "clipfrac": 0.0,
                            "explained_variance": 0.00647282600402832}),
}


@pytest.mark.parametrize("case", list(PRE_REFACTOR_FIRST_UPDATE))
def test_refactored_core_reproduces_the_pre_refactor_first_update(case):
    agent_name, env_id, params, expected = PRE_REFACTOR_FIRST_UPDATE[case]
    rec = Recorder()
    agent = AGENTS.get(agent_name)(rewardlab.make_vec(env_id, 2, reward=["env"]), gamma=0.99, seed=0, params=params)
    agent.learn(32, rec)
    got = {k.removeprefix("losses/"): v for k, v in rec.metrics[0].items() if k.startswith("losses/")}
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-7)


# -- determinism and checkpoints ---------------------------------------------------------------
def test_same_seed_gives_identical_losses_and_other_seed_differs():
    runs = []
    for seed in (3, 3, 4):
        rec = Recorder()
        make_ppo(cartpole(), gamma=0.99, seed=seed, params=SMALL).learn(3 * 32, rec)
        runs.append(rec.losses())
    assert len(runs[0]) == 3
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_does_not_touch_global_rngs():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    make_ppo(cartpole(), gamma=0.99, seed=0, params=SMALL).learn(64, Recorder())
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


def test_save_load_continues_with_identical_losses(tmp_path):
    params = {**SMALL, "norm_obs": True, "norm_reward": True}
    a = make_ppo(cartpole(), gamma=0.99, seed=1, params=params)
    a.learn(64, Recorder())
    a.save(tmp_path / "ckpt")
    rec_a = Recorder()
    a.learn(160, rec_a)

    b = make_ppo(cartpole(), gamma=0.99, seed=99, params=params)  # seed is overwritten by load
    b.load(tmp_path / "ckpt")
    assert b.num_timesteps == 64
    rec_b = Recorder()
    b.learn(160, rec_b)
    assert b.num_timesteps == a.num_timesteps == 160
    assert rec_a.steps == rec_b.steps == [96, 128, 160]
    assert rec_a.losses() == rec_b.losses()
    assert [m["charts/learning_rate"] for m in rec_a.metrics] == [m["charts/learning_rate"] for m in rec_b.metrics]


def test_load_refuses_a_different_config(tmp_path):
    a = make_ppo(cartpole(), gamma=0.99, seed=1, params=SMALL)
    a.save(tmp_path / "a")
    b = make_ppo(cartpole(), gamma=0.99, seed=1, params={**SMALL, "ent_coef": 0.0})
    with pytest.raises(InvalidArgument, match="ent_coef"):
        b.load(tmp_path / "a")
    with pytest.raises(InvalidArgument, match="not a PPO checkpoint"):
        b.load(tmp_path / "missing")


def test_callback_false_stops_and_metrics_keys():
    rec = Recorder(stop_after=2)
    agent = make_ppo(cartpole(), gamma=0.99, seed=0, params=SMALL)
    agent.learn(10_000, rec)
    assert rec.steps == [32, 64] and agent.num_timesteps == 64
    expected = {"losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl",
                "losses/clipfrac", "losses/explained_variance", "charts/learning_rate", "charts/SPS"}
    assert expected <= set(rec.metrics[0])
    assert all(np.isfinite(v) for k, v in rec.metrics[1].items() if k != "losses/explained_variance")
    # linear anneal: lr = lr0 * (1 - steps_before_iteration / total)
    assert rec.metrics[1]["charts/learning_rate"] == pytest.approx(2.5e-4 * (1 - 32 / 10_000))


def test_flat_adam_matches_torch_adam_on_flattened_parameters():
    nets = [torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)) for _ in range(2)]
    with torch.no_grad():
        nets[0][0].weight[:, 0] = 0.0  # an always-zero input: zero second moments (the sqrt fast path)
    nets[1].load_state_dict(nets[0].state_dict())
    ref = torch.optim.Adam(nets[0].parameters(), lr=1e-2, eps=1e-5)
    flat = flatten_parameters(list(nets[1].parameters()))
    ours = FlatAdam(flat, lr=1e-2, eps=1e-5)
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
    x[:, 0] = 0.0
    for _ in range(5):
        ref.zero_grad()
        nets[0](x).pow(2).mean().backward()
        ref.step()
        flat.grad.zero_()
        nets[1](x).pow(2).mean().backward()
        ours.step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


# -- reward-research hooks -----------------------------------------------------------------
class LearnableTerm(Term):
    """Reward = w (a constant per step); ``update`` records the rollouts it gets and raises w."""

    name = "learnable"

    def __init__(self):
        self.w = 0.0
        self.seen: list[Rollout] = []

    def __call__(self, t):
        return np.full(t.num_envs, self.w, np.float32)

    def update(self, rollout: Rollout) -> dict[str, float]:
        self.seen.append(rollout)
        self.w += 0.5
        return {"w": self.w, "mean_adv": float(rollout.advantages.mean())}


class ConstantExtraAdvantage(Term):
    name = "bonus"

    def __init__(self, value: float):
        self.value = value
        self.calls = 0

    def __call__(self, t):
        return np.zeros(t.num_envs, np.float32)

    def extra_advantages(self, rollout: Rollout) -> np.ndarray:
        self.calls += 1
        return np.full(rollout.rewards.shape, self.value, np.float32)


def test_learnable_terms_are_updated_every_iteration_and_logged():
    term = LearnableTerm()
    rec = Recorder()
    make_ppo(cartpole(2, [EnvReward(), term]), gamma=0.99, seed=0, params=SMALL).learn(96, rec)
    assert len(term.seen) == 3
    assert [m["reward_terms/learnable/w"] for m in rec.metrics] == [0.5, 1.0, 1.5]
    r = term.seen[-1]
    assert r.obs.shape == (16, 2, 4) and r.actions.shape == (16, 2) and r.rewards.shape == (16, 2)
    for field in ("dones", "values", "advantages", "returns", "logprobs", "terminated", "truncated"):
        assert getattr(r, field).shape == (16, 2), field
    np.testing.assert_array_equal(r.dones, r.terminated | r.truncated)
    # rewards are what the venv returned: env reward 1 + the term's weight at the time (1.0)
    np.testing.assert_allclose(r.rewards, 2.0)
    np.testing.assert_allclose(r.returns, r.advantages + r.values, rtol=1e-5, atol=1e-5)
    assert not r.obs.flags.writeable


def test_extra_advantages_are_added_with_their_weight():
    def run(coef: float, value: float) -> tuple[ConstantExtraAdvantage, LearnableTerm, Recorder]:
        extra, spy = ConstantExtraAdvantage(value), LearnableTerm()
        rec = Recorder()
        make_ppo(cartpole(2, [EnvReward(), extra, spy]), gamma=0.99, seed=0,
                 params={**SMALL, "extra_advantage_coef": coef}).learn(32, rec)
        return extra, spy, rec

    base_extra, base_spy, base_rec = run(0.0, 3.0)
    extra, spy, rec = run(2.0, 3.0)
    assert extra.calls == 1
    np.testing.assert_allclose(spy.seen[0].advantages - base_spy.seen[0].advantages, 6.0, rtol=1e-5)
    np.testing.assert_allclose(spy.seen[0].returns, base_spy.seen[0].returns)  # critic targets untouched
    # a constant extra advantage is removed again by the advantage normalisation
    assert rec.losses()[0]["losses/policy_loss"] == pytest.approx(base_rec.losses()[0]["losses/policy_loss"], abs=1e-5)


def test_extra_advantages_shift_policy_loss_when_not_constant():
    class Ramp(ConstantExtraAdvantage):
        def extra_advantages(self, rollout):
            return np.linspace(-1, 1, rollout.rewards.size, dtype=np.float32).reshape(rollout.rewards.shape)

    losses = []
    for coef in (0.0, 5.0):
        rec = Recorder()
        make_ppo(cartpole(2, [EnvReward(), Ramp(0.0)]), gamma=0.99, seed=0,
                 params={**SMALL, "extra_advantage_coef": coef}).learn(32, rec)
        losses.append(rec.losses()[0]["losses/policy_loss"])
    assert losses[0] != losses[1]


def test_extra_advantages_of_wrong_shape_raise():
    class Bad(ConstantExtraAdvantage):
        def extra_advantages(self, rollout):
            return np.zeros(3)

    agent = make_ppo(cartpole(2, [EnvReward(), Bad(0.0)]), gamma=0.99, seed=0, params=SMALL)
    with pytest.raises(InvalidArgument, match="bonus.*shape"):
        agent.learn(32, Recorder())


def test_functional_gradient_through_sgd_step_matches_finite_differences():
    venv = cartpole(2)
    agent = make_ppo(venv, gamma=0.99, seed=0, params=SMALL)
    params, policy_logprob_value = agent.functional()
    params = {k: v.detach().double().requires_grad_(True) for k, v in params.items()}

    rng = np.random.default_rng(0)
    t_steps, n = 6, 2
    obs = agent.preprocess_obs(rng.normal(size=(t_steps * n, 4)).astype(np.float32)).double()
    actions = torch.as_tensor(rng.integers(0, 2, t_steps * n))
    feats = torch.as_tensor(rng.normal(size=(t_steps, n, 3)))  # reward features of each step
    zeros = torch.zeros(t_steps, n, dtype=torch.float64)
    eval_obs = agent.preprocess_obs(rng.normal(size=(8, 4)).astype(np.float32)).double()
    eval_actions = torch.as_tensor(rng.integers(0, 2, 8))
    lr = 0.5

    def outer(phi: torch.Tensor) -> torch.Tensor:
        rewards = feats @ phi  # the learnable reward, linear in phi
        with torch.no_grad():
            _, values = policy_logprob_value(params, obs, actions)
        adv, _ = compute_gae(rewards, values.reshape(t_steps, n), zeros, zeros, zeros,
                             torch.zeros(n, dtype=torch.float64), 0.99, 0.95)
        logprob, _ = policy_logprob_value(params, obs, actions)
        inner_loss = -(logprob * adv.reshape(-1)).mean()  # reward-weighted policy gradient loss
        grads = torch.autograd.grad(inner_loss, list(params.values()), create_graph=True, materialize_grads=True)
        new_params = {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
        new_logprob, _ = policy_logprob_value(new_params, eval_obs, eval_actions)
        return new_logprob.mean()  # outer objective: likelihood of "demonstrated" actions

    phi = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(outer(phi), phi)
    assert torch.isfinite(grad).all() and grad.abs().max() > 1e-8
    eps = 1e-5
    fd = torch.stack([(outer(phi.detach() + eps * e) - outer(phi.detach() - eps * e)) / (2 * eps)
                      for e in torch.eye(3, dtype=torch.float64)])
    np.testing.assert_allclose(grad.numpy(), fd.detach().numpy(), rtol=1e-4, atol=1e-9)
    # the float32 agent's own parameters are untouched by the functional evaluation
    _, fn = agent.functional()
    lp, v = fn(dict(agent.policy.named_parameters()), obs.float(), actions)
    assert lp.shape == v.shape == (t_steps * n,)


# -- spaces ------------------------------------------------------------------------------
class GridEnv(gym.Env):
    """Dict obs: one-hot (C,H,W) grid, integer (H,W) glyph grid and a vector."""

    def __init__(self, action_space: gym.Space):
        self.observation_space = gym.spaces.Dict({
            "chars": gym.spaces.Box(0.0, 1.0, (4, 5, 5), np.float32),
            "glyphs": gym.spaces.Box(0, 99, (5, 5), np.int64),
            "stats": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
        })
        self.action_space = action_space

    def _obs(self):
        r = self.np_random
        return {"chars": np.eye(4, dtype=np.float32)[r.integers(0, 4, (5, 5))].transpose(2, 0, 1).copy(),
                "glyphs": r.integers(0, 100, (5, 5)), "stats": r.uniform(-1, 1, 3).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(np.sum(action)), False, self.t >= 7, {}


@pytest.mark.parametrize("space", [
    gym.spaces.Discrete(3),
    gym.spaces.MultiDiscrete([2, 3]),
    gym.spaces.MultiDiscrete([3, 3, 3]),
    gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
])
def test_dict_grid_observations_with_each_action_space(space):
    venv = shaped([lambda: GridEnv(space)] * 2)
    agent = make_ppo(venv, gamma=0.9, seed=0, params={**SMALL, "norm_obs": True})
    kinds = {type(e).__name__ for e in agent.policy.encoders.values()}
    assert kinds == {"GridEncoder", "FlattenEncoder"}
    assert agent.policy.encoders["k1"].embed is not None  # integer glyph grid -> embedding
    rec = Recorder()
    agent.learn(64, rec)
    assert all(np.isfinite(v) for v in rec.losses()[-1].values())
    obs, _ = venv.reset(seed=0)
    actions = agent.act(obs, deterministic=False)
    assert all(space.contains(a) for a in actions)
    assert np.array_equal(agent.act(obs), agent.act(obs))  # deterministic mode


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)])
def test_fused_inference_heads_match_the_separate_networks(space):
    agent = make_ppo(shaped([lambda: GridEnv(space)] * 3), gamma=0.9, seed=0, params=SMALL)
    obs = agent.preprocess_obs(agent.venv.reset(seed=0)[0])
    heads = FusedHeads(agent.policy.actor, agent.policy.critic)
    with torch.no_grad():
        f = agent.policy.features(obs)
        out, value = heads(f)
        torch.testing.assert_close(out, agent.policy.actor(f))
        torch.testing.assert_close(value, agent.policy.critic(f).squeeze(-1))


def test_mlp_encoder_flattens_grids():
    venv = shaped([lambda: GridEnv(gym.spaces.Discrete(3))])
    agent = make_ppo(venv, gamma=0.9, seed=0, params={**SMALL, "encoder": "mlp"})
    assert {type(e).__name__ for e in agent.policy.encoders.values()} == {"FlattenEncoder"}
    agent.learn(16, Recorder())


def test_reward_normalisation_applies_after_shaping_and_not_to_rollout_rewards():
    term = LearnableTerm()
    agent = make_ppo(cartpole(2, [EnvReward(), term]), gamma=0.99, seed=0, params={**SMALL, "norm_reward": True})
    agent.learn(32, Recorder())
    r = term.seen[0]
    np.testing.assert_allclose(r.rewards, 1.0)  # what the venv returned (env 1 + w 0)
    train = agent.buffer.train_rewards.numpy()
    assert not np.allclose(train, 1.0) and np.all(train > 0)


# -- config errors -------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("n_steps", 0, "integer >= 1"),
    ("learning_rate", -1.0, "> 0"),
    ("gae_lambda", 1.5, r"\[0, 1\]"),
    ("clip_coef", 0.0, "> 0"),
    ("activation", "gelu", "tanh, relu"),
    ("encoder", "transformer", "auto, mlp"),
    ("target_kl", -0.1, "None or a number > 0"),
    ("norm_obs", "yes", "true or false"),
    ("hidden_sizes", (64, 0), "a list of integers >= 1"),
    ("hidden_sizes", 64, "a list of integers >= 1"),
])
def test_bad_config_values_name_field_value_and_range(field, value, allowed):
    with pytest.raises(InvalidArgument, match=rf"PPOConfig\.{field} = .*{allowed}"):
        PPOConfig(**{field: value})


def test_unknown_params_list_valid_names():
    with pytest.raises(ConfigError, match=r"agent\.params\.lr: unknown parameter for agent 'ppo'\. Valid: n_steps, "
                                          r".*ent_coef"):
        make_ppo(cartpole(), gamma=0.99, seed=0, params={"lr": 1e-3})
    with pytest.raises(ConfigError, match=r"agent\.params\.lerning_rate: .* Did you mean 'learning_rate'\?"):
        make_ppo(cartpole(), gamma=0.99, seed=0, params={"lerning_rate": 1e-3})
    with pytest.raises(ConfigError, match=r"agent\.params\.n_steps: -3 is invalid for agent 'ppo'; allowed: an "
                                          r"integer >= 1"):
        make_ppo(cartpole(), gamma=0.99, seed=0, params={"n_steps": -3})


def test_factory_is_registered_and_bad_env_or_gamma_is_refused():
    assert AGENTS.get("ppo") is make_ppo
    assert isinstance(make_ppo(cartpole(), gamma=0.99, seed=0, params={}), PPOAgent)
    with pytest.raises(InvalidArgument, match="gamma"):
        make_ppo(cartpole(), gamma=1.5, seed=0, params={})
    next_step = rewardlab.make_vec("CartPole-v1", 2, reward=["env"], autoreset_mode=AutoresetMode.NEXT_STEP)
    with pytest.raises(InvalidArgument, match="SAME_STEP"):
        make_ppo(next_step, gamma=0.99, seed=0, params={})
    with pytest.raises(InvalidArgument, match="n_minibatches"):
        make_ppo(cartpole(1), gamma=0.99, seed=0, params={"n_steps": 2, "n_minibatches": 4})


def test_unsupported_spaces_are_refused():
    class DiscreteObs(CountEnv):
        def __init__(self):
            super().__init__(3, True)
            self.observation_space = gym.spaces.Discrete(4)

    with pytest.raises(InvalidArgument, match="Box and Dict-of-Box observations; got Discrete"):
        make_ppo(shaped([DiscreteObs]), gamma=0.9, seed=0, params={})


# -- learning (slow) -----------------------------------------------------------------------
def eval_metrics(agent: PPOAgent, eval_env: Any, n_episodes: int) -> dict[str, float]:
    res = evaluate(agent.act, eval_env, n_episodes, seed=123)
    return {"return": res.mean_return, "success": res.success_rate or 0.0, "length": float(np.mean(res.lengths))}


class EvalUntil:
    """Evaluates every ``every`` steps and stops training once ``metric >= target``."""

    def __init__(self, agent: PPOAgent, eval_env: Any, n_episodes: int, metric: str, target: float, every: int):
        self.agent, self.eval_env, self.n_episodes = agent, eval_env, n_episodes
        self.metric, self.target, self.every = metric, target, every
        self.next, self.history = every, []

    def on_iteration(self, num_timesteps: int, metrics: dict[str, float]) -> bool:
        if num_timesteps < self.next:
            return True
        self.next += self.every
        value = eval_metrics(self.agent, self.eval_env, self.n_episodes)[self.metric]
        self.history.append((num_timesteps, value))
        return value < self.target


@pytest.mark.slow
def test_solves_cartpole():
    venv = rewardlab.make_vec("CartPole-v1", 8, reward=["env"])
    agent = make_ppo(venv, gamma=0.99, seed=0, params={})
    eval_env = rewardlab.make_vec("CartPole-v1", 10)
    before = eval_metrics(agent, eval_env, 10)["return"]
    start = time.perf_counter()
    cb = EvalUntil(agent, eval_env, 10, "return", 475.0, every=8192)
    agent.learn(300_000, cb)
    after = eval_metrics(agent, eval_env, 10)["return"]
    print(f"CartPole: eval return {before:.1f} -> {after:.1f} after {agent.num_timesteps} steps "
          f"in {time.perf_counter() - start:.0f}s; evals {cb.history}")
    assert before < 100
    assert after >= 475


@pytest.mark.slow
def test_solves_minihack_room_5x5():
    pytest.importorskip("minihack")
    venv = rewardlab.make_vec("minihack/Room-5x5", 8, reward=["env"])
    agent = make_ppo(venv, gamma=0.99, seed=0, params={})  # encoder "auto": CNN on the one-hot crop
    eval_env = rewardlab.make_vec("minihack/Room-5x5", 10)
    before = eval_metrics(agent, eval_env, 50)
    start = time.perf_counter()
    cb = EvalUntil(agent, eval_env, 50, "success", 0.8, every=8192)
    agent.learn(100_000, cb)
    after = eval_metrics(agent, eval_env, 50)
    print(f"Room-5x5: success {before['success']:.2f} -> {after['success']:.2f}, "
          f"length {before['length']:.1f} -> {after['length']:.1f} after {agent.num_timesteps} steps "
          f"in {time.perf_counter() - start:.0f}s; evals {cb.history}")
    assert before["success"] < 0.5
    assert after["success"] >= 0.8
    assert after["length"] < before["length"]
