"""``RLOOAgent`` (``rloo``) and ``TextRLOOAgent`` (``text_rloo``): episodic group-relative
policy optimisation on the PPO core.

Each iteration (the core's ``collect_rollout`` / ``compute_advantages`` / ``update_policy``
extension points):

1. **Group rollout.** All envs are reset through a ``GroupedVectorEnv``: envs ``g·K … g·K+K−1``
   start the same task instance (the same seed). The agent steps until every episode has ended
   or ``n_steps`` steps have passed; steps after an env's episode ended are masked out (the env
   keeps running, its new episode is not part of the batch).
2. **Advantages.** Each episode's undiscounted return ``R_i`` is compared with its group:
   ``A_i = R_i − mean of the other K−1 returns`` (RLOO), or ``(R_i − μ)/(σ + 1e-6)`` (GRPO), and
   ``A_i`` is the advantage of every step of episode ``i``. No critic, no GAE, no discount.
   With ``reward.normalize`` set on the stack the agent works on each term's episode return
   ``R_i^k`` (the sum of ``info["reward_terms"][k]`` over the episode, divided by the term's
   weight) instead: ``gdpo`` (GDPO, arXiv 2601.05242) normalises every term within its group,
   ``(R^k − μ_g^k)/(σ_g^k + 1e-4)``, sums with the stack's weights and normalises that sum over
   the batch; ``sum`` (GRPO on the summed reward) normalises ``Σ_k w_k R^k`` within the group
   (``rewardlab.core.stack.group_advantages``, unbiased std as in the GDPO reference).
   Reward terms' ``extra_advantages`` (OPRL's step-level advantages, VeRPO's group-relative
   partial-test score) are added on active steps.
3. **Update.** The PPO clipped surrogate (``ppo_loss`` with ``vf_coef = 0``) over the active
   steps only, in epochs of shuffled minibatches (``EpisodicClippedUpdate``).

Terms get a ``GroupRollout``: the core's ``Rollout`` cut to the steps taken, plus
``episodes`` (``rewardlab.core.groups.EpisodeGroups``: group of each env, active mask, episode
returns, lengths, success). The agent honours every term hook except ``discount`` (there is no
discounting to replace).

``num_timesteps`` counts every env step taken, masked ones included (what the envs were run
for), so budgets compare with ``ppo`` at equal env interaction.

>>> import rewardlab
>>> venv = rewardlab.make_vec("CartPole-v1", 4, reward=["env"])
>>> agent = make_rloo(venv, gamma=1.0, seed=0, params={"n_steps": 8, "group_size": 2})
>>> agent.learn(32, callback=None)
>>> agent.num_timesteps, agent.group_env.group_ids.tolist()
(32, [0, 0, 1, 1])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rewardlab.agents.params import params_from_dict
from rewardlab.agents.ppo.agent import PPOAgent
from rewardlab.agents.ppo.buffer import Rollout, index_tree, readonly
from rewardlab.agents.ppo.config import PPOConfig
from rewardlab.agents.ppo.update import ClippedSurrogateUpdate, FlatAdam
from rewardlab.agents.rloo.config import RLOOConfig, TextRLOOConfig
from rewardlab.agents.text_policy import TextPPOAgent
from rewardlab.core.groups import EpisodeGroups, GroupedVectorEnv, group_relative
from rewardlab.core.stack import group_advantages
from rewardlab.core.terms import AGENT_HOOKS
from rewardlab.errors import InvalidArgument

__all__ = ["GroupRollout", "EpisodicClippedUpdate", "RLOOAgent", "TextRLOOAgent", "make_rloo", "make_text_rloo"]


@dataclass
class GroupRollout(Rollout):
    """The core's ``Rollout`` of one group batch, cut to the steps taken (leading dims
    ``(steps, n_envs)``), plus which episodes belong together.

    Rows where ``episodes.active`` is False are not part of any episode of the batch (their
    ``rewards`` and ``advantages`` are 0). There is no critic: ``values`` are the unused
    critic head's outputs, ``returns``, ``final_values`` and ``last_values`` are zeros.
    """

    episodes: EpisodeGroups


class EpisodicClippedUpdate(ClippedSurrogateUpdate):
    """``ClippedSurrogateUpdate`` on a batch whose size changes every iteration (the active
    steps of a group batch); the value-loss metrics are left out (``vf_coef = 0``)."""

    def __call__(self, policy: nn.Module, optimizer: FlatAdam, batch: dict[str, Any], cfg: PPOConfig,
                 gen: torch.Generator) -> dict[str, float]:
        rows = batch["logprobs"].shape[0]
        self._shuffled = None  # the parent keeps a buffer sized for one batch; sizes change here
        if rows < cfg.n_minibatches:
            cfg = dataclasses.replace(cfg, n_minibatches=rows)
        metrics = super().__call__(policy, optimizer, batch, cfg, gen)
        for key in ("losses/value_loss", "losses/explained_variance"):
            metrics.pop(key, None)
        return metrics


def _success_of(info: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """``(n_envs,)`` float: the final ``is_success`` of the ``rows`` whose episode ended, NaN elsewhere."""
    out = np.full(rows.shape, np.nan)
    final = info.get("final_info") or {}
    ok = final.get("is_success")
    if ok is None:
        return out
    known = rows & np.asarray(final.get("_is_success", np.ones(rows.shape, bool)), bool)
    out[known] = np.asarray(ok, np.float64)[known]
    return out


class RLOOAgent(PPOAgent):
    """The PPO core with episodic group batches and group-relative advantages (module doc).

    ``group_env`` (a ``GroupedVectorEnv`` over the venv) is how terms that need group rollouts
    recognise the agent (OPRL checks it in ``bind_agent``).
    """

    label: ClassVar[str] = "rloo"
    checkpoint_file: ClassVar[str] = "rloo.pt"
    update_rule = EpisodicClippedUpdate
    honoured_hooks: ClassVar[frozenset[str]] = frozenset(AGENT_HOOKS) - {"discount"}

    def __init__(self, venv: gym.vector.VectorEnv, cfg: RLOOConfig, *, gamma: float, seed: int):
        if venv.num_envs % cfg.group_size:
            raise InvalidArgument(f"{self.label} needs the number of envs ({venv.num_envs}) to be a multiple of "
                                  f"agent.params.group_size ({cfg.group_size})")
        # Before the core's __init__: it calls the terms' bind_agent, which may look for group_env.
        self.group_env = GroupedVectorEnv(venv, cfg.group_size)
        super().__init__(venv, cfg, gamma=gamma, seed=seed)
        self._steps = 0
        self._episodes: EpisodeGroups | None = None
        stack = getattr(venv, "stack", None)
        self.normalize: str | None = getattr(stack, "normalize", None)
        """the stack's group normalisation (``gdpo``, ``sum``) or None: ``baseline`` on the summed return"""
        if self.normalize is not None and getattr(stack, "clip", None):
            # The per-term returns would no longer add up to the clipped reward the agent saw.
            raise InvalidArgument(f"{self.label}: reward.normalize = {self.normalize!r} cannot be combined with "
                                  "reward.clip; allowed: one of them")
        self._term_names: list[str] = list(getattr(stack, "names", [])) if self.normalize else []
        self._term_weights: list[float] = [float(w) for w in getattr(stack, "weights", [])] if self.normalize else []
        self._term_returns: dict[str, np.ndarray] = {}

    # -- one group batch -------------------------------------------------------------------
    def collect_rollout(self) -> None:
        """Reset every env in groups and run until every episode ended (or ``n_steps`` steps)."""
        cfg, bnp, n = self.cfg, self.buffer.np, self.num_envs
        for key in ("rewards", "train_rewards", "terminated", "truncated", "final_values"):
            bnp[key].fill(0.0)
        self._next_obs, _ = self.group_env.reset(seed=int(self.np_rng.integers(2**31 - 1)))
        active = np.ones(n, bool)
        mask = np.zeros((cfg.n_steps, n), bool)
        returns, success = np.zeros(n), np.full(n, np.nan)
        term_returns = {name: np.zeros(n) for name in self._term_names}
        heads = self._inference_heads()
        steps = 0
        with torch.inference_mode():
            noise = self.policy.draw_noise((cfg.n_steps, n), self.gen)
            for t in range(cfg.n_steps):
                action = self.act_and_store(t, heads, noise[t])
                self._next_obs, reward, term, trunc, info = self.venv.step(self._env_action(action))
                mask[t] = active
                reward = np.where(active, np.asarray(reward, np.float64), 0.0)
                bnp["rewards"][t] = reward
                bnp["train_rewards"][t] = reward
                bnp["terminated"][t] = active & term
                bnp["truncated"][t] = active & trunc
                returns += reward
                if term_returns:
                    parts = info.get("reward_terms")
                    if parts is None:
                        raise InvalidArgument(f"{self.label}: reward.normalize = {self.normalize!r} needs the "
                                              "per-term rewards info['reward_terms'] of a ShapedVectorEnv")
                    for name, acc in term_returns.items():
                        acc += np.where(active, np.asarray(parts[name], np.float64), 0.0)
                ended = active & (term | trunc)
                steps = t + 1
                if ended.any():
                    success = np.where(ended, _success_of(info, ended), success)
                    active = active & ~ended
                    if not active.any():
                        break
        self._steps = steps
        self._term_returns = term_returns
        self.num_timesteps += steps * n
        self._episodes = EpisodeGroups(group=self.group_env.group_ids.copy(), active=mask[:steps].copy(),
                                       returns=returns, lengths=mask[:steps].sum(0), success=success,
                                       finished=~active)

    def _group_rollout(self, advantages: torch.Tensor, returns: torch.Tensor) -> GroupRollout:
        buf, t, n = self.buffer, self._steps, self.num_envs
        raw = {k: readonly(v.numpy()[:t]) for k, v in buf.raw_obs.items()}
        term, trunc = buf.np["terminated"][:t] > 0, buf.np["truncated"][:t] > 0
        return GroupRollout(
            obs=raw if buf.is_dict else raw[""],
            actions=readonly(buf.np["actions"][:t]),
            rewards=readonly(buf.np["rewards"][:t]),
            dones=term | trunc,
            terminated=term,
            truncated=trunc,
            values=readonly(buf.np["values"][:t]),
            advantages=readonly(advantages.numpy()),
            returns=readonly(returns.numpy()),
            logprobs=readonly(buf.np["logprobs"][:t]),
            final_values=np.zeros((t, n), np.float32),
            last_values=np.zeros(n, np.float32),
            gamma=self.gamma,
            episodes=self._episodes,
        )

    def compute_advantages(self) -> tuple[torch.Tensor, torch.Tensor, GroupRollout]:
        """Every step of episode ``i`` gets the group-relative return of episode ``i``, plus the
        terms' extra advantages on active steps."""
        ep = self._episodes
        if ep is None:
            raise InvalidArgument(f"{self.label}: compute_advantages() before collect_rollout()")
        outcome = self.episode_advantages()
        adv = np.where(ep.active, outcome[None, :], 0.0).astype(np.float32)
        advantages = torch.from_numpy(adv)
        returns = torch.zeros_like(advantages)
        rollout = self._group_rollout(advantages, returns)
        extra = self._extra_advantages(rollout)
        if extra is not None:
            advantages += self.cfg.extra_advantage_coef * torch.from_numpy(np.where(ep.active, extra, 0.0)
                                                                           .astype(np.float32))
            rollout = self._group_rollout(advantages, returns)
        return advantages, returns, rollout

    def episode_advantages(self) -> np.ndarray:
        """``(n_envs,)`` the advantage of each episode of the last group batch: ``baseline`` on the
        summed return, or the stack's ``normalize`` mode on the per-term returns (module doc)."""
        ep = self._episodes
        if ep is None:
            raise InvalidArgument(f"{self.label}: episode_advantages() before collect_rollout()")
        if self.normalize is None:
            return group_relative(ep.returns, ep.group, self.cfg.baseline)
        groups, size = self.group_env.num_groups, self.group_env.group_size
        # The stack reports weighted parts; GDPO weights the normalised raw term returns.
        raw = [np.zeros(len(ep.returns)) if w == 0 else self._term_returns[name] / w
               for name, w in zip(self._term_names, self._term_weights, strict=True)]
        adv = group_advantages([r.reshape(groups, size) for r in raw], self._term_weights, self.normalize)
        return adv.reshape(-1)

    def update_policy(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """The ``update_rule`` on the active steps of the batch only."""
        buf, ep, t, n = self.buffer, self._episodes, self._steps, self.num_envs
        rows = torch.from_numpy(np.flatnonzero(ep.active.reshape(-1)))

        def flat(x: torch.Tensor) -> torch.Tensor:
            return x[:t].reshape(t * n, *x.shape[2:])

        obs = {k: flat(v) for k, v in buf.obs.items()}
        batch = {
            "obs": index_tree(obs if buf.is_dict else obs[""], rows),
            "actions": flat(buf.actions)[rows],
            "logprobs": flat(buf.logprobs)[rows],
            "values": flat(buf.values)[rows],
            "advantages": advantages.reshape(-1)[rows],
            "returns": returns.reshape(-1)[rows],
        }
        metrics = self._update_step(self.policy, self.optimizer, batch, self.cfg, self.gen)
        self._heads = None  # weights changed
        won = ep.won()
        by_group = won.reshape(self.group_env.num_groups, -1).astype(float)
        returns_by_group = ep.returns.reshape(self.group_env.num_groups, -1)
        metrics.update({
            "rloo/episode_return": float(ep.returns.mean()),
            "rloo/episode_length": float(ep.lengths.mean()),
            "rloo/success_rate": float(won.mean()),
            "rloo/mixed_success_groups": float(((by_group > 0).any(1) & (by_group == 0).any(1)).mean()),
            "rloo/informative_groups": float((np.ptp(returns_by_group, axis=1) > 0).mean()),
            "rloo/active_fraction": float(ep.active.mean()),
            "rloo/unfinished_episodes": float((~ep.finished).mean()),
        })
        return metrics


class TextRLOOAgent(RLOOAgent):
    """``rloo`` with ``text_ppo``'s slot-scoring network (ALFWorld-style text envs)."""

    label: ClassVar[str] = "text_rloo"
    checkpoint_file: ClassVar[str] = "text_rloo.pt"
    build_policy = TextPPOAgent.build_policy


def make_rloo(venv: gym.vector.VectorEnv, *, gamma: float, seed: int, params: dict[str, Any]) -> RLOOAgent:
    """The ``rloo`` agent factory: ``params`` are ``RLOOConfig`` fields.

    >>> import rewardlab
    >>> make_rloo(rewardlab.make_vec("CartPole-v1", 3), gamma=1.0, seed=0, params={"group_size": 2})
    Traceback (most recent call last):
    ...
    rewardlab.errors.InvalidArgument: rloo needs the number of envs (3) to be a multiple of agent.params.group_size (2)
    """
    return RLOOAgent(venv, params_from_dict(RLOOConfig, params, agent="rloo"), gamma=gamma, seed=seed)


def make_text_rloo(venv: gym.vector.VectorEnv, *, gamma: float, seed: int, params: dict[str, Any]) -> TextRLOOAgent:
    """The ``text_rloo`` agent factory: ``params`` are ``TextRLOOConfig`` fields."""
    return TextRLOOAgent(venv, params_from_dict(TextRLOOConfig, params, agent="text_rloo"), gamma=gamma, seed=seed)
