"""``PPOConfig``: the typed hyperparameters of the PPO core, and of its variants as subclasses
(``PGConfig`` for ``pg``, ``TextPPOConfig`` for ``text_ppo``).

Plain data: this module imports neither torch nor gymnasium, so ``rewardlab check`` validates
``agent.params`` without building (or importing) the agent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from rewardlab.agents.params import InvalidParam, check_fields, is_int, is_num

__all__ = ["PPOConfig", "PGConfig", "TextPPOConfig", "PG_DEFAULTS", "PG_UNSUPPORTED", "ACTIVATIONS", "ENCODERS"]

ACTIVATIONS = ("tanh", "relu")
ENCODERS = ("auto", "mlp")


@dataclass
class PPOConfig:
    """PPO hyperparameters (defaults follow SB3's PPO / CleanRL where they agree).

    Every field is checked on construction (``InvalidParam`` names the field, the value and
    what is allowed). Variants subclass it with other defaults and list the fields they do
    not take in ``REFUSED``.
    """

    REFUSED: ClassVar[dict[str, str]] = {}
    """fields (inherited from PPOConfig) a variant does not take, with the reason"""

    n_steps: int = 128
    """rollout length per env per iteration (batch = n_steps * num_envs)"""
    n_epochs: int = 4
    """passes over each rollout batch"""
    n_minibatches: int = 4
    """minibatches per epoch (size batch // n_minibatches; a remainder is left out, reshuffled each epoch)"""
    learning_rate: float = 2.5e-4
    """Adam learning rate at the start of training"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 at ``total_steps``"""
    gae_lambda: float = 0.95
    """λ of generalised advantage estimation"""
    clip_coef: float = 0.2
    """clip range of the probability ratio in the surrogate objective"""
    clip_vloss: bool = False
    """clip the value update to ``clip_coef`` around the rollout values (SB3: off, CleanRL: on)"""
    ent_coef: float = 0.01
    """weight of the entropy bonus"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    target_kl: float | None = None
    """stop the epochs of an update early once approx. KL exceeds this (None: never)"""
    extra_advantage_coef: float = 1.0
    """weight of reward terms' ``extra_advantages`` added to the GAE advantages"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and of the critic MLP"""
    activation: str = "tanh"
    """activation of the MLPs: tanh or relu"""
    encoder: str = "auto"
    """auto: CNN for (C,H,W) float grids, embedding+CNN for 2-D integer grids, flatten otherwise; mlp: flatten all"""
    cnn_channels: tuple[int, ...] = (32, 32)
    """output channels of the 3x3 conv layers of grid encoders"""
    cnn_features: int = 128
    """width of the linear layer after a grid encoder's convolutions"""
    embed_dim: int = 16
    """embedding width of integer-grid (glyph) encoders"""
    norm_obs: bool = False
    """normalise float observations with running statistics"""
    norm_reward: bool = False
    """scale rewards by the running std of the discounted return (after shaping)"""
    clip_obs: float = 10.0
    """clip normalised observations to [-clip_obs, clip_obs]"""
    clip_reward: float = 10.0
    """clip normalised rewards to [-clip_reward, clip_reward]"""
    torch_threads: int = 1
    """torch intra-op threads while training (tiny nets + a sync env: 1 is fastest on 2 cores)"""

    def __post_init__(self) -> None:
        # YAML gives lists; store tuples (hashable, and what asdict() round-trips through checkpoints).
        if isinstance(self.hidden_sizes, list):
            self.hidden_sizes = tuple(self.hidden_sizes)
        if isinstance(self.cnn_channels, list):
            self.cnn_channels = tuple(self.cnn_channels)
        check_fields(self, [
            ("n_steps", is_int(self.n_steps) and self.n_steps >= 1, "an integer >= 1"),
            ("n_epochs", is_int(self.n_epochs) and self.n_epochs >= 1, "an integer >= 1"),
            ("n_minibatches", is_int(self.n_minibatches) and self.n_minibatches >= 1, "an integer >= 1"),
            ("learning_rate", is_num(self.learning_rate) and self.learning_rate > 0, "a number > 0"),
            # λ outside [0, 1] makes the advantage sum diverge or change sign.
            ("gae_lambda", is_num(self.gae_lambda) and 0 <= self.gae_lambda <= 1, "a number in [0, 1]"),
            ("clip_coef", is_num(self.clip_coef) and self.clip_coef > 0, "a number > 0"),
            ("ent_coef", is_num(self.ent_coef) and self.ent_coef >= 0, "a number >= 0"),
            ("vf_coef", is_num(self.vf_coef) and self.vf_coef >= 0, "a number >= 0"),
            ("max_grad_norm", is_num(self.max_grad_norm) and self.max_grad_norm > 0, "a number > 0"),
            ("target_kl", self.target_kl is None or (is_num(self.target_kl) and self.target_kl > 0),
             "None or a number > 0"),
            ("extra_advantage_coef", is_num(self.extra_advantage_coef), "a finite number"),
            ("hidden_sizes", isinstance(self.hidden_sizes, tuple)
             and all(is_int(h) and h >= 1 for h in self.hidden_sizes), "a list of integers >= 1"),
            ("activation", isinstance(self.activation, str) and self.activation in ACTIVATIONS,
             f"one of {', '.join(ACTIVATIONS)}"),
            ("encoder", isinstance(self.encoder, str) and self.encoder in ENCODERS, f"one of {', '.join(ENCODERS)}"),
            ("cnn_channels", isinstance(self.cnn_channels, tuple) and len(self.cnn_channels) >= 1
             and all(is_int(c) and c >= 1 for c in self.cnn_channels), "a non-empty list of integers >= 1"),
            ("cnn_features", is_int(self.cnn_features) and self.cnn_features >= 1, "an integer >= 1"),
            ("embed_dim", is_int(self.embed_dim) and self.embed_dim >= 1, "an integer >= 1"),
            # A non-positive clip would map every normalised value to 0 (or flip its sign).
            ("clip_obs", is_num(self.clip_obs) and self.clip_obs > 0, "a number > 0"),
            ("clip_reward", is_num(self.clip_reward) and self.clip_reward > 0, "a number > 0"),
            ("torch_threads", is_int(self.torch_threads) and self.torch_threads >= 1, "an integer >= 1"),
        ])
        for name in ("anneal_lr", "clip_vloss", "norm_adv", "norm_obs", "norm_reward"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParam(type(self).__name__, name, getattr(self, name), "true or false")

    @classmethod
    def field_names(cls) -> list[str]:
        """The fields this config takes (``REFUSED`` ones left out)."""
        return [f.name for f in dataclasses.fields(cls) if f.name not in cls.REFUSED]


PG_DEFAULTS: dict[str, Any] = {"n_epochs": 1, "n_minibatches": 1, "gae_lambda": 1.0, "learning_rate": 3e-3}
"""Defaults that differ from ``PPOConfig``'s (the other fields keep PPO's defaults)."""

PG_UNSUPPORTED = ("n_epochs", "n_minibatches", "clip_coef", "clip_vloss", "target_kl")
"""PPO fields the ``pg`` agent does not take (it makes one unclipped full-batch step)."""


@dataclass
class PGConfig(PPOConfig):
    """``pg`` hyperparameters: ``PPOConfig``'s, with ``PG_DEFAULTS`` and without ``PG_UNSUPPORTED``."""

    REFUSED: ClassVar[dict[str, str]] = {
        k: "PPO-only: pg makes one unclipped full-batch step per rollout" for k in PG_UNSUPPORTED}

    n_epochs: int = 1
    """one pass over each rollout batch (fixed)"""
    n_minibatches: int = 1
    """the whole batch in one step (fixed)"""
    learning_rate: float = 3e-3
    """Adam learning rate at the start of training"""
    gae_lambda: float = 1.0
    """λ of generalised advantage estimation (1: Monte-Carlo returns minus the baseline)"""


_NETWORK = "text_ppo's network is the slot scorer (embed_dim sets its width)"
_TOKENS = "token observations are word ids: nothing to normalise"


@dataclass
class TextPPOConfig(PPOConfig):
    """Hyperparameters of ``text_ppo``: ``PPOConfig``'s, with text defaults; the fields of the
    core's MLP/CNN network and of observation normalisation are refused."""

    REFUSED: ClassVar[dict[str, str]] = {
        "hidden_sizes": _NETWORK, "activation": _NETWORK, "encoder": _NETWORK, "cnn_channels": _NETWORK,
        "cnn_features": _NETWORK, "norm_obs": _TOKENS, "clip_obs": _TOKENS,
    }

    n_steps: int = 32
    """rollout length per env per iteration"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 at ``total_steps``"""
    embed_dim: int = 64
    """width of the word embeddings and of the hidden layers"""
