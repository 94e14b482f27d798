"""``JaxPPOConfig``: the typed ``agent.params`` of ``jax_ppo`` (plain data: no jax import, so
``rewardlab check`` validates them without building anything).

It is the PPO core's ``PPOConfig`` (``rewardlab.agents.ppo.config``) — the same fields, defaults and
checks where the two agents share a meaning, so a comparison at "the same hyperparameters" sets
the same numbers — minus the fields of the torch network and normalisation the JAX agent does not
have (``REFUSED``, each with its reason), plus ``obs_encoding``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from rewardlab.agents.params import InvalidParam
from rewardlab.agents.ppo.config import PPOConfig

__all__ = ["JaxPPOConfig", "OBS_ENCODINGS"]

OBS_ENCODINGS = ("auto", "onehot", "float")

_NETWORK = "jax_ppo's networks are MLPs over the encoded observation (hidden_sizes, activation, obs_encoding)"
_NOT_BUILT = "not implemented in jax_ppo"


@dataclass
class JaxPPOConfig(PPOConfig):
    """PPO hyperparameters of the pure-JAX agent; every field is checked on construction."""

    REFUSED: ClassVar[dict[str, str]] = {
        "encoder": _NETWORK, "cnn_channels": _NETWORK, "cnn_features": _NETWORK, "embed_dim": _NETWORK,
        "target_kl": _NOT_BUILT, "extra_advantage_coef": "jax_ppo calls no learnable-term hooks",
        "norm_obs": _NOT_BUILT, "norm_reward": _NOT_BUILT, "clip_obs": _NOT_BUILT, "clip_reward": _NOT_BUILT,
        "torch_threads": "no torch in jax_ppo (XLA uses one device per core, docs/jax.md)",
    }

    obs_encoding: str = "auto"
    """auto: one-hot (tile, colour) grids on MiniGrid, flattened floats otherwise; onehot; float"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hidden_sizes:  # the torch core allows a linear policy; the JAX MLP needs a layer
            raise InvalidParam(type(self).__name__, "hidden_sizes", list(self.hidden_sizes),
                               "a non-empty list of integers >= 1")
        if not (isinstance(self.obs_encoding, str) and self.obs_encoding in OBS_ENCODINGS):
            raise InvalidParam(type(self).__name__, "obs_encoding", self.obs_encoding,
                               f"one of {', '.join(OBS_ENCODINGS)}")

    def as_dict(self) -> dict:
        """The fields jax_ppo takes, tuples as lists (what a run's config shows)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if k not in self.REFUSED}
