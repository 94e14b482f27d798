"""``Transition``: one batched environment step, the only input a reward term sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Transition", "batch_index"]


def batch_index(x: Any, rows: np.ndarray) -> Any:
    """Select ``rows`` of a batched value: arrays, (nested) dicts of arrays, tuples."""
    if isinstance(x, dict):
        return {k: batch_index(v, rows) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(batch_index(v, rows) for v in x)
    return np.asarray(x)[rows]


@dataclass
class Transition:
    """A batched step ``(s, a, s', r_env, terminated, truncated, info)``.

    The leading dimension of every array is the number of envs in the batch (1 for a single
    env). ``next_obs`` is always the true successor state: on an episode end it is the final
    observation, never the observation after an automatic reset. ``info`` is Gymnasium's
    vector form (a dict of arrays with ``_key`` masks) and, on rows whose episode ended, holds
    that episode's final info. ``env_ids`` says which sub-env each row is, so terms that keep
    per-env state index it with ``t.env_ids``.
    """

    obs: Any
    action: np.ndarray
    next_obs: Any
    env_reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    env_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.env_ids is None:
            self.env_ids = np.arange(len(self.env_reward))

    @property
    def num_envs(self) -> int:
        return len(self.env_reward)

    @property
    def done(self) -> np.ndarray:
        return np.logical_or(self.terminated, self.truncated)

    def select(self, rows: np.ndarray) -> Transition:
        """The sub-batch of ``rows`` (keeps the matching ``env_ids``)."""
        return Transition(
            obs=batch_index(self.obs, rows),
            action=np.asarray(self.action)[rows],
            next_obs=batch_index(self.next_obs, rows),
            env_reward=self.env_reward[rows],
            terminated=self.terminated[rows],
            truncated=self.truncated[rows],
            info=select_info(self.info, rows),
            env_ids=self.env_ids[rows],
        )


def select_info(info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Rows of a vector-form info dict (arrays indexed, nested dicts recursed)."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, dict):
            out[k] = select_info(v, rows)
        elif isinstance(v, np.ndarray) and v.ndim >= 1:
            out[k] = v[rows]
        else:
            out[k] = v
    return out
