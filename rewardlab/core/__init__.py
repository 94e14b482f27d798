"""Core reward API: ``Transition``, ``RewardTerm``, ``RewardStack``, the shaping wrappers
and the name registries. Imports only NumPy and Gymnasium."""

from rewardlab.core.registry import Registry
from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import TERMS, RewardTerm, Term, build_stack, build_term, register_term
from rewardlab.core.transition import Transition
from rewardlab.core.wrappers import EpisodeRecord, ShapedEnv, ShapedVectorEnv

__all__ = [
    "Transition", "RewardTerm", "Term", "RewardStack", "ShapedEnv", "ShapedVectorEnv",
    "EpisodeRecord", "Registry", "TERMS", "register_term", "build_term", "build_stack",
]
