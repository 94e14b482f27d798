"""``RLOOConfig`` and ``TextRLOOConfig``: the typed hyperparameters of the episodic group-relative
agents ``rloo`` and ``text_rloo`` (variants of the PPO core's ``PPOConfig``).

Plain data: this module imports neither torch nor gymnasium, so ``rewardlab check`` validates
``agent.params`` without building the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rewardlab.agents.params import check_fields, is_int
from rewardlab.agents.ppo.config import PPOConfig, TextPPOConfig

__all__ = ["RLOOConfig", "TextRLOOConfig", "BASELINES"]

BASELINES = ("rloo", "grpo")
"""the group baselines (``rewardlab.core.groups.GROUP_MODES``, repeated here to stay torch- and core-free)"""

_NO_CRITIC = "rloo has no critic: the other episodes of the group are the baseline"
_EPISODIC = "rloo's advantages are group-relative episode outcomes, not GAE"
_NOT_EPISODIC = "not implemented for episodic group batches"


@dataclass
class RLOOConfig(PPOConfig):
    """``rloo`` hyperparameters: ``PPOConfig``'s, minus the critic, GAE and normalisation fields.

    Every iteration resets all envs in groups of ``group_size`` (one task instance per group)
    and steps until every episode has ended or ``n_steps`` steps have passed; the batch is all
    steps of those episodes.
    """

    REFUSED: ClassVar[dict[str, str]] = {
        "gae_lambda": _EPISODIC, "vf_coef": _NO_CRITIC, "clip_vloss": _NO_CRITIC,
        "norm_obs": _NOT_EPISODIC, "norm_reward": _NOT_EPISODIC, "clip_obs": _NOT_EPISODIC,
        "clip_reward": _NOT_EPISODIC,
    }

    n_steps: int = 128
    """the longest episode a batch holds: an episode still running after n_steps steps is cut
    there and counts with the return it has (set it >= the env's own step limit)"""
    group_size: int = 4
    """episodes of the same task instance per group (the number of envs must be a multiple)"""
    baseline: str = "rloo"
    """rloo: the episode return minus the mean of the group's other returns; grpo: (return − mean) / (std + 1e-6)"""
    norm_adv: bool = False
    """normalise advantages per minibatch (off: the group baseline already centres them)"""
    vf_coef: float = 0.0
    """(fixed) no value loss"""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, [
            # One episode per group has no other episode to compare with.
            ("group_size", is_int(self.group_size) and self.group_size >= 2, "an integer >= 2"),
            ("baseline", isinstance(self.baseline, str) and self.baseline in BASELINES,
             f"one of {', '.join(BASELINES)}"),
        ])


@dataclass
class TextRLOOConfig(RLOOConfig):
    """``text_rloo`` hyperparameters: ``RLOOConfig``'s with ``text_ppo``'s network (the slot
    scorer) and its defaults; the MLP/CNN fields are refused as for ``text_ppo``."""

    REFUSED: ClassVar[dict[str, str]] = {**RLOOConfig.REFUSED, **TextPPOConfig.REFUSED}

    n_steps: int = 32
    """the longest episode a batch holds (set it >= the env's ``max_steps``)"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 at ``total_steps``"""
    embed_dim: int = 64
    """width of the word embeddings and of the hidden layers"""
