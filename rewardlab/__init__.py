"""rewardlab: reward design for reinforcement learning.

Gymnasium envs whose reward is a stack of named, composable terms; agents that train on them;
experiments and sweeps that always measure the true task return.

>>> import rewardlab
>>> env = rewardlab.make("CartPole-v1", reward=["env", "step_penalty"])
>>> _ = env.reset(seed=0)
>>> sorted(env.step(0)[4]["reward_terms"])
['env', 'step_penalty']
"""

from rewardlab.core import (
    RewardStack,
    RewardTerm,
    ShapedEnv,
    ShapedVectorEnv,
    Term,
    Transition,
    build_stack,
    register_term,
)
from rewardlab.core.wrappers import pop_episodes
from rewardlab.envs import make, make_vec, register_env  # also registers every env id in Gymnasium's registry

__version__ = "0.1.0"

__all__ = [
    "Transition", "RewardTerm", "Term", "RewardStack", "ShapedEnv", "ShapedVectorEnv",
    "register_term", "register_env", "build_stack", "make", "make_vec", "pop_episodes", "__version__",
]
