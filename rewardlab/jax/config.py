"""``JaxPPOConfig``: the typed ``agent.params`` of ``jax_ppo`` (plain data: no jax import, so
``rewardlab check`` validates them without building anything).

The fields and defaults are the PPO core's (``rewardlab.agents.ppo.config.PPOConfig``) where the
two agents share a meaning, so a comparison at "the same hyperparameters" sets the same numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rewardlab.agents.params import InvalidParam, check_fields, is_int, is_num

__all__ = ["JaxPPOConfig", "ACTIVATIONS", "OBS_ENCODINGS"]

ACTIVATIONS = ("tanh", "relu")
OBS_ENCODINGS = ("auto", "onehot", "float")


@dataclass
class JaxPPOConfig:
    """PPO hyperparameters of the pure-JAX agent; every field is checked on construction."""

    n_steps: int = 128
    """rollout length per env per update (batch = n_steps * env.n_envs)"""
    n_epochs: int = 4
    """passes over each rollout batch"""
    n_minibatches: int = 4
    """minibatches per epoch (size batch // n_minibatches; a remainder is left out, reshuffled each epoch)"""
    learning_rate: float = 2.5e-4
    """Adam learning rate at the start of training"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 at ``total_steps`` (once per update)"""
    gae_lambda: float = 0.95
    """λ of generalised advantage estimation"""
    clip_coef: float = 0.2
    """clip range of the probability ratio in the surrogate objective"""
    clip_vloss: bool = False
    """clip the value update to ``clip_coef`` around the rollout values"""
    ent_coef: float = 0.01
    """weight of the entropy bonus"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and of the critic MLP"""
    activation: str = "tanh"
    """activation of the MLPs: tanh or relu"""
    obs_encoding: str = "auto"
    """auto: one-hot (tile, colour) grids on MiniGrid, flattened floats otherwise; onehot; float"""

    def __post_init__(self) -> None:
        if isinstance(self.hidden_sizes, list):  # YAML gives lists
            self.hidden_sizes = tuple(self.hidden_sizes)
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
            ("hidden_sizes", isinstance(self.hidden_sizes, tuple) and len(self.hidden_sizes) >= 1
             and all(is_int(h) and h >= 1 for h in self.hidden_sizes), "a non-empty list of integers >= 1"),
            ("activation", isinstance(self.activation, str) and self.activation in ACTIVATIONS,
             f"one of {', '.join(ACTIVATIONS)}"),
            ("obs_encoding", isinstance(self.obs_encoding, str) and self.obs_encoding in OBS_ENCODINGS,
             f"one of {', '.join(OBS_ENCODINGS)}"),
        ])
        for name in ("anneal_lr", "clip_vloss", "norm_adv"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParam(type(self).__name__, name, getattr(self, name), "true or false")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
