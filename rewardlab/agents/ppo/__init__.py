"""The PPO core (docs: ``docs/agents/ppo.md``): one PyTorch PPO that ``ppo``, ``pg`` and
``text_ppo`` run on. One module per concern:

- ``config``: ``PPOConfig`` and the variants' ``PGConfig``, ``TextPPOConfig``: typed
  hyperparameters (no torch: ``rewardlab check`` reads them);
- ``networks``: encoders, ``ActorCritic`` and its action heads, ``FusedHeads``;
- ``buffer``: ``RolloutBuffer`` and ``Rollout``, the batch handed to reward-term hooks;
- ``losses``: ``compute_gae`` (from ``rewardlab.core.returns``), ``ppo_loss``, ``pg_loss``,
  ``normalize_advantages``, ``ratio_stats``, ``explained_variance``, ``RunningMeanStd``;
- ``update``: the update step (``UpdateRule``: ``ClippedSurrogateUpdate``,
  ``PolicyGradientUpdate``), ``flatten_parameters``, ``FlatAdam``;
- ``checkpoint``: save/load with one loader (``weights_only=True``);
- ``agent``: ``PPOAgent`` (``learn``/``act``/``save``/``load``/``functional``) and ``make_ppo``.

``from rewardlab.agents.ppo import PPOAgent, PPOConfig, compute_gae, make_ppo, ...`` imports
the names from their modules on first use, so importing ``rewardlab.agents.ppo.config`` alone
does not import torch.
"""

from __future__ import annotations

from rewardlab.core.registry import lazy_exports

_EXPORTS = {
    "PPOConfig": "config", "PGConfig": "config", "TextPPOConfig": "config",
    "ActorCritic": "networks", "FusedHeads": "networks",
    "Rollout": "buffer", "RolloutBuffer": "buffer",
    "compute_gae": "losses", "ppo_loss": "losses", "pg_loss": "losses", "normalize_advantages": "losses",
    "ratio_stats": "losses", "explained_variance": "losses", "RunningMeanStd": "losses",
    "UpdateRule": "update", "ClippedSurrogateUpdate": "update", "PolicyGradientUpdate": "update",
    "FlatAdam": "update", "flatten_parameters": "update",
    "WEIGHTS_ONLY": "checkpoint",
    "PPOAgent": "agent", "make_ppo": "agent", "torch_threads": "agent",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
