"""Losses, advantage helpers and normalisation of the PPO core (pure functions, unit-tested).

- ``compute_gae`` (from ``rewardlab.core.returns``, shared with learnable reward terms);
- ``ppo_loss``: clipped surrogate, (optionally clipped) value loss, entropy bonus;
- ``pg_loss``: the unclipped policy-gradient loss of the ``pg`` variant;
- ``normalize_advantages``, ``ratio_stats`` (approx. KL, clip fraction), ``explained_variance``;
- ``RunningMeanStd``: observation and reward normalisation statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from rewardlab.agents.ppo.config import PPOConfig
from rewardlab.core.returns import compute_gae

__all__ = ["compute_gae", "normalize_advantages", "ppo_loss", "pg_loss", "ratio_stats", "explained_variance",
           "RunningMeanStd"]


def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std along the last dim (rows = minibatches: all normalised at once)."""
    return (advantages - advantages.mean(-1, keepdim=True)) / (advantages.std(-1, keepdim=True) + 1e-8)


def ppo_loss(
    new_logprob: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    new_value: torch.Tensor,
    old_value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    cfg: PPOConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped-surrogate PPO loss on one minibatch (advantages already normalised if wanted).

    Returns ``(loss, parts)``; ``parts`` holds the detached ``policy_loss``, ``value_loss``,
    ``entropy`` and the per-sample ``logratio`` (for ``ratio_stats``).
    """
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()
    pg_loss = torch.max(
        -advantages * ratio, -advantages * torch.clamp(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)
    ).mean()
    if cfg.clip_vloss:
        v_clipped = old_value + torch.clamp(new_value - old_value, -cfg.clip_coef, cfg.clip_coef)
        v_loss = 0.5 * torch.max((new_value - returns) ** 2, (v_clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * F.mse_loss(new_value, returns)
    ent = entropy.mean()
    loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
    parts = {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(), "entropy": ent.detach(),
             "logratio": logratio.detach()}
    return loss, parts


def pg_loss(
    logprob: torch.Tensor,
    advantages: torch.Tensor,
    value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    cfg: PPOConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The policy-gradient loss of one batch (advantages already normalised if wanted):
    ``−mean(log π(a|s)·Â) − ent_coef·H + vf_coef·½(V − R)²``.

    >>> cfg = PPOConfig(ent_coef=0.0, vf_coef=0.5)
    >>> loss, parts = pg_loss(torch.log(torch.tensor([0.5, 0.25])), torch.tensor([1.0, -1.0]),
    ...                       torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]), torch.zeros(2), cfg)
    >>> round(float(parts["policy_loss"]), 4), float(parts["value_loss"])  # -(log .5 - log .25)/2, ½·mean([1, 0])
    (-0.3466, 0.25)
    """
    policy_loss = -(logprob * advantages).mean()
    value_loss = 0.5 * F.mse_loss(value, returns)
    ent = entropy.mean()
    loss = policy_loss - cfg.ent_coef * ent + cfg.vf_coef * value_loss
    return loss, {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(), "entropy": ent.detach()}


def ratio_stats(logratio: torch.Tensor, clip_coef: float) -> dict[str, float]:
    """``approx_kl`` (the low-variance ``(r-1) - log r`` estimator), ``old_approx_kl``
    (``-log r``) and ``clipfrac`` (share of ratios outside the clip range)."""
    ratio = logratio.exp()
    return {
        "old_approx_kl": float((-logratio).mean()),
        "approx_kl": float(((ratio - 1) - logratio).mean()),
        "clipfrac": float(((ratio - 1.0).abs() > clip_coef).float().mean()),
    }


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> float:
    """``1 - Var[y_true - y_pred] / Var[y_true]`` (NaN when ``y_true`` is constant)."""
    var_y = y_true.var()
    return float("nan") if var_y == 0 else float(1 - (y_true - y_pred).var() / var_y)


class RunningMeanStd:
    """Running mean/variance of batches (parallel algorithm of Chan et al.), float64."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        b_mean, b_var, b_count = x.mean(0), x.var(0), x.shape[0]
        delta = b_mean - self.mean
        tot = self.count + b_count
        self.mean = self.mean + delta * b_count / tot
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / tot
        self.var = m2 / tot
        self.count = tot

    def state_dict(self) -> dict[str, Any]:
        return {"mean": torch.tensor(self.mean), "var": torch.tensor(self.var), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var = state["mean"].numpy().copy(), state["var"].numpy().copy()
        self.count = float(state["count"])

