"""``pg``: a simple policy-gradient agent (REINFORCE with a baseline / batch actor-critic), a
variant of the PPO core (docs: ``docs/agents/ppo.md``; ``docs/methods/barfi.md`` uses it on GridWorld).

- ``PGConfig`` (defined in ``rewardlab.agents.ppo.config``): ``PPOConfig`` with the ``pg``
  defaults (one full-batch step, λ = 1, a larger step size); the PPO-only fields
  (``PG_UNSUPPORTED``) are refused with a ``ConfigError``;
- ``PGAgent``: a ``PPOAgent`` whose ``update_rule`` is ``PolicyGradientUpdate``: one gradient
  step of ``pg_loss`` on the whole rollout (no ratio, no clipping, no epochs or minibatches);
- ``make_pg``: the ``pg`` agent factory (YAML ``agent: {name: pg, params: {...}}``).

Everything else is the core's: rollouts, GAE with truncation bootstrapping (``gae_lambda = 1``,
the default, gives Monte-Carlo returns minus the critic's baseline: REINFORCE with a baseline;
``gae_lambda < 1`` an advantage actor-critic), observation/reward normalisation, checkpoints,
and every reward-term hook (``discount``, ``bind_agent``/``functional``, ``preprocess_obs``,
``update(rollout)``, ...), so BARFI differentiates through this agent's update exactly as
through PPO's: its inner loss ``−mean(ratio·Â)`` has the gradient of ``pg_loss``'s policy part
at ratio 1.

>>> import rewardlab
>>> venv = rewardlab.make_vec("CartPole-v1", 2, reward=["env"])
>>> agent = make_pg(venv, gamma=0.99, seed=0, params={"n_steps": 8})
>>> agent.learn(32, callback=None)
>>> agent.num_timesteps, agent.cfg.n_epochs, agent.cfg.gae_lambda
(32, 1, 1.0)
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym

from rewardlab.agents.params import params_from_dict
from rewardlab.agents.ppo.agent import PPOAgent
from rewardlab.agents.ppo.config import PG_DEFAULTS, PG_UNSUPPORTED, PGConfig
from rewardlab.agents.ppo.losses import pg_loss
from rewardlab.agents.ppo.update import PolicyGradientUpdate

__all__ = ["PG_DEFAULTS", "PG_UNSUPPORTED", "PGConfig", "pg_loss", "PGAgent", "make_pg"]


class PGAgent(PPOAgent):
    """The PPO core with a vanilla policy-gradient ``update_rule`` (one Adam step per rollout on
    ``pg_loss`` over the whole batch, gradient-norm clipped to ``max_grad_norm``).

    Build it with ``make_pg``; its checkpoints are PPO-format files (``ppo.pt``) and resume the same way.
    """

    label: ClassVar[str] = "pg"
    update_rule = PolicyGradientUpdate


def make_pg(venv: gym.vector.VectorEnv, *, gamma: float, seed: int, params: dict[str, Any]) -> PGAgent:
    """The ``pg`` agent factory: ``params`` are ``PGConfig`` fields.

    >>> import rewardlab
    >>> make_pg(rewardlab.make_vec("CartPole-v1", 1), gamma=0.99, seed=0, params={"clip_coef": 0.1})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.clip_coef: not a parameter of agent 'pg' (PPO-only: pg makes one ...
    """
    return PGAgent(venv, params_from_dict(PGConfig, params, agent="pg"), gamma=gamma, seed=seed)
