"""Group rollouts: K episodes of the same task instance side by side, and group-relative values.

Group-relative learners (RLOO, GRPO) and the reward terms built on them (OPRL) compare episodes
that started from the *same* task instance: the same MiniHack level, the same ALFWorld game, the
same SWE task. This module holds what both the agents and the terms need, so neither imports
the other (``docs/architecture.md``: terms reach the learner only through the ``Term`` hooks):

- ``GroupedVectorEnv``: a vector wrapper whose ``reset(seed=...)`` resets its envs in groups of
  ``group_size`` consecutive envs, every env of a group with the same seed. For envs whose
  ``reset(seed=s)`` fixes the task instance (MiniHack through ``MiniHackAdapter``, ALFWorld and
  SWE pick the game/task from ``np_random``), a group then plays K episodes of one instance;
- ``EpisodeGroups``: one batch of grouped episodes (which env belongs to which group, which
  steps belong to each env's episode, its return and success), what a group-relative agent
  hands its terms as ``rollout.episodes``;
- ``group_relative``: leave-one-out (RLOO) or mean/std (GRPO) normalisation within groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorWrapper

from rewardlab.errors import InvalidArgument

__all__ = ["GroupedVectorEnv", "EpisodeGroups", "group_relative", "GROUP_MODES"]

GROUP_MODES = ("rloo", "grpo")
"""``rloo``: ``x_i`` minus the mean of the others in its group; ``grpo``: ``(x_i − μ) / (σ + ε)``."""


class GroupedVectorEnv(VectorWrapper):
    """Reset a vector env in groups: envs ``g·K … g·K + K − 1`` start with the same seed.

    ``reset(seed=s)`` draws one seed per group from ``np.random.default_rng(s)`` and resets each
    env with its group's seed (Gymnasium's vector ``reset`` takes a list of per-env seeds);
    ``info["group"]`` and ``info["group_seed"]`` give each env's group and seed. Steps pass
    through unchanged: with ``SAME_STEP`` autoreset, an env whose episode ended starts a new
    episode on its own, outside any group, until the next ``reset``.

    >>> venv = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync")
    >>> groups = GroupedVectorEnv(venv, group_size=2)
    >>> obs, info = groups.reset(seed=0)
    >>> info["group"].tolist(), bool((obs[0] == obs[1]).all()), bool((obs[0] == obs[2]).all())
    ([0, 0, 1, 1], True, False)
    """

    def __init__(self, env: gym.vector.VectorEnv, group_size: int):
        super().__init__(env)
        # A group of one has nothing to compare with; a partial group would compare unequal counts.
        if not isinstance(group_size, (int, np.integer)) or isinstance(group_size, bool) or group_size < 1:
            raise InvalidArgument(f"group_size = {group_size!r} is invalid; allowed: an integer >= 1")
        if env.num_envs % group_size:
            raise InvalidArgument(f"group_size = {group_size} does not divide num_envs = {env.num_envs}; "
                                  "allowed: a divisor of the number of envs")
        self.group_size = int(group_size)
        self.num_groups = env.num_envs // self.group_size
        self.group_ids = np.repeat(np.arange(self.num_groups), self.group_size)
        """``(num_envs,)`` the group of each env"""
        self.group_seeds = np.zeros(self.num_groups, np.int64)
        """``(num_groups,)`` the seeds of the last reset"""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset every env; the envs of a group get the same seed (drawn from ``seed``)."""
        rng = np.random.default_rng(seed)
        self.group_seeds = rng.integers(0, 2**31 - 1, size=self.num_groups)
        per_env = [int(s) for s in self.group_seeds[self.group_ids]]
        obs, info = self.env.reset(seed=per_env, options=options)
        info = dict(info)
        info["group"] = self.group_ids.copy()
        info["group_seed"] = self.group_seeds[self.group_ids]
        return obs, info


@dataclass
class EpisodeGroups:
    """One batch of grouped episodes: env ``i`` ran one episode of group ``group[i]``.

    Time-major arrays have the rollout's leading dims ``(n_steps, n_envs)``.
    """

    group: np.ndarray
    """``(n_envs,)`` int: the group of each env's episode (same group = same task instance)"""
    active: np.ndarray
    """``(n_steps, n_envs)`` bool: step ``t`` of env ``i`` belongs to its episode (False after it ended)"""
    returns: np.ndarray
    """``(n_envs,)`` the episode's undiscounted return of the rewards the venv returned"""
    lengths: np.ndarray
    """``(n_envs,)`` int: steps in the episode (``active.sum(0)``)"""
    success: np.ndarray
    """``(n_envs,)`` float: 1/0 from the env's ``is_success`` when the episode ended, NaN where unknown"""
    finished: np.ndarray
    """``(n_envs,)`` bool: the episode ended (terminated or truncated) within the batch; False if
    the batch's step limit cut it"""

    def won(self) -> np.ndarray:
        """``(n_envs,)`` bool: the env's ``is_success`` where it reported one, else ``return > 0``."""
        known = ~np.isnan(self.success)
        return np.where(known, np.nan_to_num(self.success) > 0.5, self.returns > 0)


def group_relative(x: np.ndarray, groups: np.ndarray, mode: str = "rloo", *, baseline: np.ndarray | None = None,
                   baseline_groups: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Each ``x[i]`` relative to the samples of its group ``groups[i]``.

    The samples are ``x`` itself unless ``baseline``/``baseline_groups`` give another set. With
    ``n`` samples ``S`` in the group (``n ≥ 2``):

    - ``rloo``: ``(x − mean(S)) · n / (n − 1)``; when ``x`` is one of the samples this is ``x``
      minus the mean of the *other* samples (the leave-one-out baseline);
    - ``grpo``: ``(x − mean(S)) / (std(S) + eps)`` with the unbiased std.

    A group with a single sample has no baseline and ``x`` is returned unchanged (what the OPRL
    reference does). A group of ``x`` with no sample at all is an error.

    >>> group_relative(np.array([1.0, 0.0, 0.0, 1.0]), np.array([0, 0, 0, 0])).round(4).tolist()
    [0.6667, -0.6667, -0.6667, 0.6667]
    >>> group_relative(np.array([1.0, 0.0, 2.0, 2.0]), np.array([0, 0, 1, 1]), "grpo").round(3).tolist()
    [0.707, -0.707, 0.0, 0.0]
    """
    if mode not in GROUP_MODES:
        raise InvalidArgument(f"group mode {mode!r} is invalid; allowed: {', '.join(GROUP_MODES)}")
    x = np.asarray(x, np.float64)
    groups = np.asarray(groups)
    if x.shape != groups.shape or x.ndim != 1:
        raise InvalidArgument(f"group_relative needs 1-D x and groups of one shape; got {x.shape} and {groups.shape}")
    if (baseline is None) != (baseline_groups is None):
        raise InvalidArgument("group_relative: give both baseline and baseline_groups, or neither")
    s, sg = (x, groups) if baseline is None else (np.asarray(baseline, np.float64), np.asarray(baseline_groups))
    keys, s_idx = np.unique(sg, return_inverse=True)
    pos = np.searchsorted(keys, groups)
    pos = np.minimum(pos, len(keys) - 1)
    missing = keys[pos] != groups
    if missing.any():
        raise InvalidArgument(f"group_relative: group {groups[missing][0].item()!r} has no baseline sample")
    n = np.bincount(s_idx, minlength=len(keys)).astype(np.float64)
    mean = np.bincount(s_idx, weights=s, minlength=len(keys)) / n
    out = x.copy()
    many = n[pos] > 1
    if mode == "rloo":
        scale = n[pos] / np.maximum(n[pos] - 1, 1)
        out[many] = ((x - mean[pos]) * scale)[many]
    else:
        sq = np.bincount(s_idx, weights=(s - mean[s_idx]) ** 2, minlength=len(keys))
        std = np.sqrt(sq / np.maximum(n - 1, 1))
        out[many] = ((x - mean[pos]) / (std[pos] + eps))[many]
    return out
