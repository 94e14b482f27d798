"""Episodic group-relative agents on the PPO core (docs: ``docs/methods/oprl.md``):

- ``config``: ``RLOOConfig`` (``rloo``) and ``TextRLOOConfig`` (``text_rloo``), typed
  hyperparameters without torch (``rewardlab check`` reads them);
- ``agent``: ``RLOOAgent`` / ``TextRLOOAgent`` (group rollouts, RLOO or GRPO advantages of
  episode outcomes, the clipped surrogate over the episodes' steps), ``GroupRollout`` (what
  terms get), ``EpisodicClippedUpdate``, and the factories ``make_rloo`` / ``make_text_rloo``.

Names are imported from their modules on first use, so importing ``rewardlab.agents.rloo.config``
alone does not import torch.
"""

from __future__ import annotations

from rewardlab.core.registry import lazy_exports

_EXPORTS = {
    "RLOOConfig": "config", "TextRLOOConfig": "config",
    "GroupRollout": "agent", "EpisodicClippedUpdate": "agent", "RLOOAgent": "agent", "TextRLOOAgent": "agent",
    "make_rloo": "agent", "make_text_rloo": "agent",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
