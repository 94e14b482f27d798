"""A simple policy-gradient agent (REINFORCE with a baseline / batch actor-critic) built on
our PPO's machinery (docs: ``docs/methods/barfi.md``, where BARFI uses it on GridWorld).

- ``PG_DEFAULTS``: the ``pg`` agent's defaults (one full-batch step, λ = 1, a larger step size);
- ``PG_UNSUPPORTED``: PPO fields that mean nothing for one unclipped step, refused with a
  ``ConfigError``;
- ``pg_loss``: ``−mean(log π(a|s)·Â) − ent_coef·H + vf_coef·½(V − R)²``;
- ``PGAgent``: a ``PPOAgent`` whose update is one gradient step of ``pg_loss`` on the whole
  rollout (no ratio, no clipping, no epochs or minibatches);
- ``make_pg``: the ``pg`` agent factory (YAML ``agent: {name: pg, params: {...}}``).

Everything else is PPO's: rollouts, GAE with truncation bootstrapping (``gae_lambda = 1``,
the default, gives Monte-Carlo returns minus the critic's baseline: REINFORCE with a
baseline; ``gae_lambda < 1`` an advantage actor-critic), observation/reward normalisation,
checkpoints, and the reward-research hooks (``discount``, ``bind_agent``/``functional``,
``preprocess_obs``, ``update(rollout)``), so BARFI differentiates through this agent's update
exactly as through PPO's: its inner loss ``−mean(ratio·Â)`` has the gradient of
``pg_loss``'s policy part at ratio 1.

>>> import rewardlab
>>> venv = rewardlab.make_vec("CartPole-v1", 2, reward=["env"])
>>> agent = make_pg(venv, gamma=0.99, seed=0, params={"n_steps": 8})
>>> agent.learn(32, callback=None)
>>> agent.num_timesteps, agent.cfg.n_epochs, agent.cfg.gae_lambda
(32, 1, 1.0)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch.nn import functional as F

from rewardlab.agents.ppo import PPOAgent, PPOConfig, explained_variance, normalize_advantages
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = ["PG_DEFAULTS", "PG_UNSUPPORTED", "pg_loss", "PGAgent", "make_pg"]

PG_DEFAULTS: dict[str, Any] = {"n_epochs": 1, "n_minibatches": 1, "gae_lambda": 1.0, "learning_rate": 3e-3}
"""Defaults that differ from ``PPOConfig``'s (the other fields keep PPO's defaults)."""

PG_UNSUPPORTED = ("n_epochs", "n_minibatches", "clip_coef", "clip_vloss", "target_kl")
"""PPO fields the ``pg`` agent does not take (it makes one unclipped full-batch step)."""


def pg_loss(
    logprob: torch.Tensor,
    advantages: torch.Tensor,
    value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    cfg: PPOConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The policy-gradient loss of one batch (advantages already normalised if wanted).

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


class PGAgent(PPOAgent):
    """``PPOAgent`` with a vanilla policy-gradient update: one Adam step per rollout on
    ``pg_loss`` over the whole batch (gradient-norm clipped to ``max_grad_norm``).

    Build it with ``make_pg`` (which sets ``PG_DEFAULTS``); its checkpoints are PPO-format
    files (``ppo.pt``) and resume the same way.
    """

    def _update(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        cfg, buf = self.cfg, self.buffer
        actions = buf.actions.reshape(self.batch_size, *buf.actions.shape[2:])
        adv, ret = advantages.reshape(-1), returns.reshape(-1)
        if cfg.norm_adv and adv.numel() > 1:
            adv = normalize_advantages(adv)
        logprob, entropy, value = self.policy(buf.flat_obs(), actions)
        loss, parts = pg_loss(logprob, adv, value, ret, entropy, cfg)
        grad = self.flat_param.grad
        grad.zero_()
        loss.backward()
        grad.mul_(torch.clamp(cfg.max_grad_norm / (grad.norm() + 1e-6), max=1.0))  # clip global norm
        self.optimizer.step()
        self._heads = None  # weights changed
        metrics = {f"losses/{k}": float(v) for k, v in parts.items()}
        metrics["losses/explained_variance"] = explained_variance(buf.values.reshape(-1), ret)
        return metrics


def make_pg(venv: gym.vector.VectorEnv, *, gamma: float, seed: int, params: dict[str, Any]) -> PGAgent:
    """The ``pg`` agent factory: ``params`` are ``PPOConfig`` fields except ``PG_UNSUPPORTED``.

    >>> import rewardlab
    >>> make_pg(rewardlab.make_vec("CartPole-v1", 1), gamma=0.99, seed=0, params={"clip_coef": 0.1})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: pg agent: parameter(s) ['clip_coef'] are PPO-only (pg makes one ...
    """
    params = dict(params or {})
    valid = [f for f in PPOConfig.field_names() if f not in PG_UNSUPPORTED]
    ppo_only = sorted(k for k in params if k in PG_UNSUPPORTED)
    if ppo_only:
        raise ConfigError(f"pg agent: parameter(s) {ppo_only} are PPO-only "
                          "(pg makes one unclipped full-batch step per rollout)")
    unknown = sorted(k for k in params if k not in valid)
    if unknown:
        raise ConfigError(f"unknown pg parameter(s) {unknown}; valid: {', '.join(valid)}")
    try:
        cfg = PPOConfig(**{**PG_DEFAULTS, **params})
    except (TypeError, InvalidArgument) as e:  # InvalidArgument: a value PPOConfig's checks refuse
        raise ConfigError(f"invalid pg parameters: {e}") from e
    return PGAgent(venv, cfg, gamma=gamma, seed=seed)
