"""Rollout storage of the PPO core: ``RolloutBuffer`` (preallocated) and ``Rollout``, the batch
handed to reward terms' hooks (``update``, ``extra_advantages``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rewardlab.agents.ppo.networks import is_int_space, obs_spaces
from rewardlab.errors import InvalidArgument

__all__ = ["Rollout", "RolloutBuffer"]


@dataclass
class Rollout:
    """One PPO batch, time-major (leading dims ``(n_steps, n_envs)``), handed to reward terms.

    Arrays are read-only NumPy views of the agent's buffers, valid until the next rollout
    (copy what you keep).

    - ``obs``: observations the actions were taken in, as the venv returned them (before
      observation normalisation); an array, or a dict of arrays for Dict spaces.
    - ``actions``: actions taken (Box: before clipping to the bounds).
    - ``rewards``: rewards the venv returned (i.e. shaped), before reward normalisation and
      before the truncation bootstrap.
    - ``dones``: the episode ended after this step (``terminated | truncated``).
    - ``terminated`` / ``truncated``: the two kinds of ending, kept apart.
    - ``values``: critic values ``V(obs)`` (in normalised-reward units if ``norm_reward``).
    - ``advantages``: GAE advantages plus ``extra_advantage_coef *`` terms' extra advantages,
      before per-minibatch normalisation (terms' ``extra_advantages`` see the GAE part only).
    - ``returns``: λ-returns, the critic's targets (GAE advantages + values).
    - ``logprobs``: log-probabilities of ``actions`` under the rollout policy.
    - ``final_values``: ``V(final_obs)`` on truncated rows (0 elsewhere), the bootstrap GAE used.
    - ``last_values``: ``(n_envs,)`` ``V`` of the observation after the last step.
    - ``gamma``: the discount the advantages were computed with (see ``PPOAgent.discount``).

    ``rewards``, ``values``, ``terminated``, ``truncated``, ``final_values``, ``last_values`` and
    ``gamma`` are exactly the inputs of ``compute_gae``, so a term can recompute the advantages
    of its own (e.g. differentiable) rewards.
    """

    obs: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    values: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    logprobs: np.ndarray
    final_values: np.ndarray
    last_values: np.ndarray
    gamma: float


class RolloutBuffer:
    """Preallocated torch tensors of shape ``(n_steps, n_envs, ...)``, written through NumPy
    views (one copy per step, no per-step allocation)."""

    def __init__(self, n_steps: int, n_envs: int, obs_space: gym.Space, action_space: gym.Space, keep_raw_obs: bool):
        t, n = n_steps, n_envs
        self.spaces = obs_spaces(obs_space)
        self.is_dict = isinstance(obs_space, gym.spaces.Dict)

        def obs_buf(space: gym.spaces.Box) -> torch.Tensor:
            dtype = torch.int64 if is_int_space(space) else torch.float32
            return torch.zeros((t, n, *space.shape), dtype=dtype)

        self.obs = {k: obs_buf(s) for k, s in self.spaces.items()}
        # With observation normalisation the network sees normalised obs; terms get raw ones.
        self.raw_obs = {k: obs_buf(s) for k, s in self.spaces.items()} if keep_raw_obs else self.obs
        if isinstance(action_space, gym.spaces.Discrete):
            self.actions = torch.zeros((t, n), dtype=torch.int64)
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            self.actions = torch.zeros((t, n, *action_space.shape), dtype=torch.int64)
        elif isinstance(action_space, gym.spaces.Box):
            self.actions = torch.zeros((t, n, *action_space.shape), dtype=torch.float32)
        else:
            raise InvalidArgument(f"PPO supports Discrete, MultiDiscrete and Box actions; got {action_space}")
        f32 = {"dtype": torch.float32}
        self.logprobs, self.values = torch.zeros((t, n), **f32), torch.zeros((t, n), **f32)
        self.rewards, self.train_rewards = torch.zeros((t, n), **f32), torch.zeros((t, n), **f32)
        self.terminated, self.truncated = torch.zeros((t, n), **f32), torch.zeros((t, n), **f32)
        self.final_values = torch.zeros((t, n), **f32)
        self.np = {name: getattr(self, name).numpy() for name in (
            "actions", "logprobs", "values", "rewards", "train_rewards", "terminated", "truncated", "final_values")}
        self.obs_np = {k: v.numpy() for k, v in self.obs.items()}
        self.raw_obs_np = {k: v.numpy() for k, v in self.raw_obs.items()}

    def obs_at(self, t: int) -> torch.Tensor | dict[str, torch.Tensor]:
        return {k: v[t] for k, v in self.obs.items()} if self.is_dict else self.obs[""][t]

    def flat_obs(self) -> torch.Tensor | dict[str, torch.Tensor]:
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in self.obs.items()}
        return flat if self.is_dict else flat[""]

    def rollout(self, advantages: torch.Tensor, returns: torch.Tensor, last_values: torch.Tensor,
                gamma: float) -> Rollout:
        raw = {k: readonly(v.numpy()) for k, v in self.raw_obs.items()}
        term, trunc = self.np["terminated"] > 0, self.np["truncated"] > 0
        return Rollout(
            obs=raw if self.is_dict else raw[""],
            actions=readonly(self.np["actions"]),
            rewards=readonly(self.np["rewards"]),
            dones=term | trunc,
            terminated=term,
            truncated=trunc,
            values=readonly(self.np["values"]),
            advantages=readonly(advantages.numpy()),
            returns=readonly(returns.numpy()),
            logprobs=readonly(self.np["logprobs"]),
            final_values=readonly(self.np["final_values"]),
            last_values=readonly(last_values.numpy()),
            gamma=gamma,
        )


def index_tree(x: Any, idx: Any) -> Any:
    """``x[idx]`` through (nested) dicts of tensors."""
    return {k: index_tree(v, idx) for k, v in x.items()} if isinstance(x, dict) else x[idx]


def clone_tree(x: Any) -> Any:
    return {k: clone_tree(v) for k, v in x.items()} if isinstance(x, dict) else x.clone()


def gather_into(out: Any, src: Any, rows: torch.Tensor) -> None:
    """``out[:] = src[rows]`` through (nested) dicts of tensors, without allocating."""
    if isinstance(src, dict):
        for k in src:
            gather_into(out[k], src[k], rows)
    else:
        torch.index_select(src, 0, rows, out=out)


def readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v

