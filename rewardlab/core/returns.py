"""Advantages and returns of time-major rollouts: RL math that agents and learnable reward terms share.

``compute_gae`` takes NumPy arrays or torch tensors (all of one kind) and returns the same kind;
with tensors it is differentiable in every argument. ``rewardlab.core`` imports only NumPy and
Gymnasium: torch is never imported here, only used through the tensors a caller passes in.

>>> r = np.array([[1.0], [1.0], [1.0]], np.float32)
>>> v = np.full((3, 1), 0.5, np.float32)
>>> term = np.array([[0.0], [1.0], [0.0]], np.float32)
>>> z = np.zeros((3, 1), np.float32)
>>> adv, ret = compute_gae(r, v, term, z, z, np.array([2.0], np.float32), 0.5, 1.0)
>>> ret[:, 0].tolist()  # [1 + .5*1, 1, 1 + .5*2]
[1.5, 1.0, 2.0]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

__all__ = ["compute_gae"]

A = TypeVar("A")  # np.ndarray or torch.Tensor


def _ops(x: Any) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``(maximum, concatenate, stack)`` of the array library ``x`` belongs to."""
    if isinstance(x, np.ndarray):
        return np.maximum, np.concatenate, np.stack
    torch = sys.modules.get("torch")  # a tensor exists only if torch is imported already
    if torch is not None and isinstance(x, torch.Tensor):
        return torch.maximum, torch.cat, torch.stack
    raise TypeError(f"compute_gae takes NumPy arrays or torch tensors, got {type(x).__name__}")


def _as_dtype(x: Any, like: Any) -> Any:
    return x.astype(like.dtype, copy=False) if isinstance(x, np.ndarray) else x.to(like.dtype)


def compute_gae(
    rewards: A,
    values: A,
    terminated: A,
    truncated: A,
    final_values: A,
    last_value: A,
    gamma: Any,
    gae_lambda: float,
) -> tuple[A, A]:
    """GAE(λ) advantages and λ-returns of a time-major ``(T, N)`` rollout.

    ``terminated[t]``/``truncated[t]`` say the episode ended after step ``t``. On truncated
    rows the MDP did not end, so the reward is bootstrapped from the value of the true final
    observation, ``rewards[t] + γ·final_values[t]``; terminated rows bootstrap nothing. Either
    way the advantage recursion stops there (the next row belongs to a new episode).
    ``last_value`` is ``V`` of the observation after the last step. ``gamma`` may itself be a
    0-d tensor (a learned discount). Returns ``(advantages, advantages + values)``.
    """
    maximum, concatenate, stack = _ops(values)
    dones = _as_dtype(maximum(terminated, truncated), values)
    rewards = rewards + gamma * final_values * _as_dtype(truncated, values)
    nonterminal = 1.0 - dones
    next_values = concatenate([values[1:], last_value.reshape(1, -1)], 0)
    deltas = rewards + gamma * next_values * nonterminal - values
    discounts = gamma * gae_lambda * nonterminal
    adv = [deltas[-1]]
    for t in range(len(deltas) - 2, -1, -1):
        adv.append(deltas[t] + discounts[t] * adv[-1])
    advantages = stack(adv[::-1])
    return advantages, advantages + values
