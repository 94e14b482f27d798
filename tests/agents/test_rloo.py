"""The episodic group-relative agents ``rloo`` / ``text_rloo`` (``rewardlab.agents.rloo``):
group batches, RLOO/GRPO advantages against a hand computation, the update sees only the
episodes' steps, no critic, config errors, declared hooks, checkpoints, the text variant; GDPO
(``reward.normalize``) on the per-term returns against a hand computation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import rewardlab
from rewardlab.agents import AGENTS
from rewardlab.agents.params import validate_agent_params
from rewardlab.agents.ppo import ppo_loss
from rewardlab.agents.rloo import RLOOAgent, TextRLOOAgent, make_rloo, make_text_rloo
from rewardlab.config.schema import parse_config
from rewardlab.core import RewardStack, ShapedVectorEnv
from rewardlab.core.registry import manifest_entries
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.shaping.basic import EnvReward, StepPenalty

HORIZON = 5


class ChooseEnv(gym.Env):
    """Action 1 ends the episode (``terminated``), with reward 1 on an even step (2, 4) and 0 on
    an odd one; action 0 gives 0 and goes on; truncated after ``HORIZON`` steps. Observation:
    one-hot of the step index. The best episode is "0, 1"."""

    observation_space = gym.spaces.Box(0.0, 1.0, (HORIZON,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        obs = np.zeros(HORIZON, np.float32)
        obs[min(self.t, HORIZON - 1)] = 1.0
        return obs

    def step(self, action):
        self.t += 1
        stop = int(action) == 1
        won = stop and self.t % 2 == 0
        info = {"is_success": won} if stop or self.t >= HORIZON else {}
        return self._obs(), float(won), stop, not stop and self.t >= HORIZON, info


def choose_venv(n=8):
    venv = gym.vector.SyncVectorEnv([ChooseEnv for _ in range(n)], autoreset_mode=AutoresetMode.SAME_STEP)
    return ShapedVectorEnv(venv, RewardStack([EnvReward()]))


def by_hand(actions: np.ndarray):
    """Returns, lengths and active mask of each env's first episode, from the actions taken."""
    n = actions.shape[1]
    returns, lengths = np.zeros(n), np.zeros(n, int)
    for i in range(n):
        for t in range(HORIZON):
            if actions[t, i] == 1:
                returns[i], lengths[i] = float((t + 1) % 2 == 0), t + 1
                break
        else:
            lengths[i] = HORIZON
    active = np.arange(actions.shape[0])[:, None] < lengths[None, :]
    return returns, lengths, active


def test_registry_builds_both_agents():
    assert isinstance(AGENTS.get("rloo")(choose_venv(4), gamma=1.0, seed=0, params={"group_size": 2}), RLOOAgent)
    assert AGENTS.get("text_rloo") is make_text_rloo


@pytest.mark.parametrize(("agent", "params", "message"), [
    ("rloo", {"group_size": 1},
     r"^agent\.params\.group_size: 1 is invalid for agent 'rloo'; allowed: an integer >= 2$"),
    ("rloo", {"baseline": "mean"}, r"^agent\.params\.baseline: 'mean' is invalid .*allowed: one of rloo, grpo$"),
    ("rloo", {"gae_lambda": 0.9}, r"^agent\.params\.gae_lambda: not a parameter of agent 'rloo' \(rloo's advantages"),
    ("rloo", {"vf_coef": 0.5}, r"^agent\.params\.vf_coef: not a parameter of agent 'rloo' \(rloo has no critic"),
    ("text_rloo", {"hidden_sizes": [8]}, r"^agent\.params\.hidden_sizes: not a parameter of agent 'text_rloo' "
                                         r"\(text_ppo's network is the slot scorer"),
])
def test_bad_params_name_the_field(agent, params, message):
    with pytest.raises(ConfigError, match=message):
        validate_agent_params(agent, params)


def test_text_rloo_takes_text_defaults():
    cfg = validate_agent_params("text_rloo", {"group_size": 2})
    assert (cfg.n_steps, cfg.learning_rate, cfg.embed_dim, cfg.vf_coef, cfg.norm_adv) == (32, 1e-3, 64, 0.0, False)


def test_envs_must_fill_whole_groups():
    with pytest.raises(InvalidArgument,
                       match=r"number of envs \(6\) to be a multiple of agent\.params\.group_size \(4\)"):
        make_rloo(choose_venv(6), gamma=1.0, seed=0, params={"group_size": 4})


def test_declared_hooks_match_the_classes():
    declared = manifest_entries("HONOURED_HOOKS")
    for name, cls in (("rloo", RLOOAgent), ("text_rloo", TextRLOOAgent)):
        assert frozenset(declared[name]) == cls.honoured_hooks
        assert "discount" not in cls.honoured_hooks  # nothing is discounted: a term's γ has no effect


def test_variants_override_only_declared_extension_points():
    private = [k for k, v in vars(RLOOAgent).items() if k.startswith("_") and not k.startswith("__") and callable(v)
               and hasattr(rewardlab.agents.ppo.PPOAgent, k)]
    assert private == []
    assert {"collect_rollout", "compute_advantages", "update_policy"} <= set(vars(RLOOAgent))


@pytest.mark.parametrize("baseline", ["rloo", "grpo"])
def test_advantages_of_a_hand_computed_group(baseline):
    agent = make_rloo(choose_venv(8), gamma=1.0, seed=3, params={"group_size": 4, "n_steps": 8, "baseline": baseline})
    agent.learn(0)  # resets the venv; no iteration
    agent.collect_rollout()
    steps = agent._steps
    actions = agent.buffer.np["actions"][:steps]
    returns, lengths, active = by_hand(actions)
    assert steps == lengths.max()  # stops once every episode ended
    ep = agent._episodes
    np.testing.assert_array_equal(ep.returns, returns)
    np.testing.assert_array_equal(ep.lengths, lengths)
    np.testing.assert_array_equal(ep.active, active)
    assert ep.success.tolist() == returns.tolist()  # is_success reported at every episode end
    assert 0 < returns.mean() < 1, "a group batch without both outcomes tests little; change the seed"

    advantages, _, rollout = agent.compute_advantages()
    expected = np.zeros((steps, 8))
    for i in range(8):
        group = [j for j in range(8) if j // 4 == i // 4]
        if baseline == "rloo":  # the episode's return minus the mean of the group's other returns
            a = returns[i] - np.mean([returns[j] for j in group if j != i])
        else:
            vals = returns[group]
            a = (returns[i] - vals.mean()) / (vals.std(ddof=1) + 1e-6) if vals.std() > 0 else 0.0
        expected[: lengths[i], i] = a  # every step of the episode, nothing after it
    np.testing.assert_allclose(advantages.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert rollout.advantages.shape == rollout.rewards.shape == (steps, 8)
    np.testing.assert_array_equal(rollout.episodes.group, [0, 0, 0, 0, 1, 1, 1, 1])
    assert agent.num_timesteps == steps * 8  # every env step taken counts


def test_update_sees_only_the_episodes_steps_with_their_advantages():
    agent = make_rloo(choose_venv(8), gamma=1.0, seed=3, params={"group_size": 4, "n_steps": 8, "n_epochs": 1,
                                                                  "n_minibatches": 1, "ent_coef": 0.0,
                                                                  "anneal_lr": False})
    seen = []
    rule = agent._update_step

    def spy(policy, optimizer, batch, cfg, gen):
        seen.append({k: v.clone() for k, v in batch.items() if k != "obs"} | {"obs": batch["obs"].clone()})
        return rule(policy, optimizer, batch, cfg, gen)

    agent._update_step = spy
    params, fn = agent.functional()  # the pre-update weights
    agent.learn(1)  # one iteration
    batch, ep = seen[0], agent._episodes
    assert batch["logprobs"].shape[0] == ep.active.sum()
    _, _, active = by_hand(agent.buffer.np["actions"][: agent._steps])
    np.testing.assert_array_equal(ep.active, active)
    # The update is the clipped surrogate on those rows (ratio 1 at the first step: −mean(A·∇log π)).
    logp, value = fn(params, batch["obs"], batch["actions"])
    loss, _ = ppo_loss(logp, batch["logprobs"], batch["advantages"], value, batch["values"], batch["returns"],
                       torch.zeros_like(logp), agent.cfg)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), grads, strict=True)]
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    scale = min(1.0, agent.cfg.max_grad_norm / (float(norm) + 1e-6))
    for (name, p), g in zip(params.items(), grads, strict=True):
        expected = p.detach() - agent.cfg.learning_rate * (g * scale) / ((g * scale).abs() + 1e-5)
        torch.testing.assert_close(dict(agent.policy.named_parameters())[name].detach(), expected,
                                   atol=1e-6, rtol=1e-5, msg=name)


def test_no_critic_is_trained():
    agent = make_rloo(choose_venv(8), gamma=1.0, seed=0, params={"group_size": 4, "n_steps": 8})
    critic = [p.detach().clone() for p in agent.policy.critic.parameters()]
    actor = [p.detach().clone() for p in agent.policy.actor.parameters()]
    agent.learn(400)
    assert all(torch.equal(a, b) for a, b in zip(critic, agent.policy.critic.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(actor, agent.policy.actor.parameters(), strict=True))


def test_rloo_learns_the_choose_task():
    """Choosing 1 on an even step is the only way to be rewarded: RLOO learns it."""
    agent = make_rloo(choose_venv(8), gamma=1.0, seed=0, params={"group_size": 4, "n_steps": 8,
                                                                  "learning_rate": 3e-3})
    rec = []

    class Cb:
        def on_iteration(self, step, m):
            rec.append(m["rloo/success_rate"])
            return True

    agent.learn(3000, Cb())
    assert np.mean(rec[:3]) < 0.9 and np.mean(rec[-5:]) > 0.97


def test_checkpoint_resumes_exactly(tmp_path):
    def make():
        return make_rloo(choose_venv(4), gamma=1.0, seed=1, params={"group_size": 2, "n_steps": 8})

    a = make()
    a.learn(64)
    a.save(tmp_path)
    assert (tmp_path / "rloo.pt").is_file()
    b = make()
    b.load(tmp_path)
    assert b.num_timesteps == a.num_timesteps
    a.learn(200)
    b.learn(200)
    for (k, pa), pb in zip(a.policy.named_parameters(), b.policy.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, msg=k)


def test_text_rloo_on_alfworld_groups_share_a_game(tmp_path):
    pytest.importorskip("alfworld")
    venv = rewardlab.make_vec("alfworld/PickAndPlace-v0", 4, reward=["env"], games_per_type=4, max_steps=5,
                              data_dir=str(tmp_path))
    agent = make_text_rloo(venv, gamma=1.0, seed=0, params={"group_size": 2, "n_steps": 5})
    agent.learn(40)
    assert type(agent.policy).__name__ == "SlotPolicy"
    assert agent.num_timesteps >= 40
    ep = agent._episodes
    assert ep.active.shape[1] == 4 and ep.lengths.max() <= 5


# -- GDPO: reward.normalize (gdpo / sum) on the per-term episode returns ----------------------------

PENALTY, PENALTY_WEIGHT = 0.1, 2.0


def two_term_venv(normalize, n=8, clip=None):
    venv = gym.vector.SyncVectorEnv([ChooseEnv for _ in range(n)], autoreset_mode=AutoresetMode.SAME_STEP)
    stack = RewardStack([EnvReward(), StepPenalty(PENALTY)], weights=[1.0, PENALTY_WEIGHT], normalize=normalize,
                        clip=clip)
    return ShapedVectorEnv(venv, stack)


def z(x, eps=1e-4):
    """The GDPO reference's normalisation: unbiased std, eps 1e-4."""
    return (x - x.mean()) / (x.std(ddof=1) + eps)


@pytest.mark.parametrize("mode", ["gdpo", "sum"])
def test_group_normalisation_of_a_hand_computed_batch(mode):
    agent = make_rloo(two_term_venv(mode), gamma=1.0, seed=3, params={"group_size": 4, "n_steps": 8})
    agent.learn(0)
    agent.collect_rollout()
    returns, lengths, active = by_hand(agent.buffer.np["actions"][: agent._steps])
    assert 0 < returns.mean() < 1 and len(set(lengths)) > 1, "both terms should vary; change the seed"
    env_r, pen_r = returns, -PENALTY * lengths  # the terms' raw episode returns
    np.testing.assert_allclose(agent._term_returns["step_penalty"], PENALTY_WEIGHT * pen_r, rtol=1e-6)

    groups = [slice(0, 4), slice(4, 8)]
    if mode == "gdpo":  # each term normalised in its group, weighted sum, then the batch normalised
        combined = np.zeros(8)
        for g in groups:
            combined[g] = 1.0 * z(env_r[g]) + PENALTY_WEIGHT * z(pen_r[g])
        expected_ep = z(combined)
    else:  # GRPO on the weighted sum
        total = env_r + PENALTY_WEIGHT * pen_r
        expected_ep = np.concatenate([z(total[g]) for g in groups])
    advantages, _, _ = agent.compute_advantages()
    np.testing.assert_allclose(advantages.numpy(), np.where(active, expected_ep[None, :], 0.0), rtol=1e-5, atol=1e-5)


def test_gdpo_differs_from_sum_and_keeps_the_rare_term_apart():
    """Same batch, both modes: an episode with equal summed reward but another combination of
    terms gets its own advantage only under GDPO (here: the step penalty's weight is large)."""
    adv = {}
    for mode in ("gdpo", "sum"):
        agent = make_rloo(two_term_venv(mode), gamma=1.0, seed=3, params={"group_size": 4, "n_steps": 8})
        agent.learn(0)
        agent.collect_rollout()
        adv[mode] = agent.episode_advantages()
    assert not np.allclose(adv["gdpo"], adv["sum"])
    assert abs(adv["gdpo"].mean()) < 1e-6  # batch-normalised


def test_clip_with_normalize_is_refused():
    with pytest.raises(InvalidArgument, match=r"reward\.normalize = 'gdpo' cannot be combined with reward\.clip"):
        make_rloo(two_term_venv("gdpo", clip=(-1.0, 1.0)), gamma=1.0, seed=0, params={"group_size": 4})


def _config(agent: str) -> dict:
    params = {"group_size": 2} if agent == "rloo" else {}
    return {"name": "t", "env": {"id": "CartPole-v1", "n_envs": 2},
            "reward": {"terms": [{"name": "env"}], "normalize": "gdpo"},
            "agent": {"name": agent, "params": params}, "train": {"total_steps": 100}}


def test_config_check_refuses_normalize_without_groups():
    assert parse_config(_config("rloo")).reward.normalize == "gdpo"
    with pytest.raises(ConfigError, match=r"^reward\.normalize: agent 'ppo' has no episode groups to normalise in; "
                                          r"agents that apply it: rloo, text_rloo$"):
        parse_config(_config("ppo"))
