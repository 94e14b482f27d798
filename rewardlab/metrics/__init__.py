"""Reward-function distances: how different two rewards are *as incentives*.

Potential shaping and positive scaling change a reward's numbers but not its optimal
policies; the distances here are (pseudo)metrics that ignore both. See
``docs/methods/reward_distances.md``.

- tabular, exact (``R[s, a, s']`` arrays): ``epic_distance``, ``dard_distance``,
  ``starc_distance``, ``direct_distance``, the canonicalisations ``epic_canon``, ``dard_canon``,
  ``minimal_canon`` and ``normalized_regret`` (what a distance should predict);
- sampled: ``epic_canon_sampled``, ``dard_canon_sampled`` over any reward function of state
  ids, and ``compare_rewards``: two reward *stacks* on the same rollouts of a registered env,
  with bootstrap confidence intervals (``rewardlab distance A.yaml B.yaml``).

Layer: imports ``rewardlab.core``, ``rewardlab.envs`` and ``rewardlab.errors`` only; SciPy is
imported by the functions that need it (bootstrap intervals).

>>> import numpy as np
>>> from rewardlab.metrics import epic_distance, shape_reward
>>> r = np.random.default_rng(0).normal(size=(5, 2, 5))
>>> round(epic_distance(r, 10 * shape_reward(r, np.arange(5.0), 0.9), 0.9), 9)
0.0
"""

from rewardlab.metrics.regret import normalized_regret, optimal_policy, policy_return, policy_values
from rewardlab.metrics.rollout import (
    ROLLOUT_POLICY,
    DistanceResult,
    RolloutData,
    StackRewards,
    collect_rollouts,
    compare_rewards,
)
from rewardlab.metrics.sampled import (
    METRIC_HELP,
    Metric,
    dard_canon_sampled,
    distance_from_canon,
    epic_canon_sampled,
    parse_metric,
    tabular_sampler,
)
from rewardlab.metrics.tabular import (
    CANONS,
    canonicalize,
    dard_canon,
    dard_distance,
    direct_distance,
    epic_canon,
    epic_distance,
    lp_norm,
    minimal_canon,
    normalize,
    pearson_distance,
    shape_reward,
    starc_distance,
)

__all__ = [
    "CANONS", "shape_reward", "epic_canon", "dard_canon", "minimal_canon", "canonicalize", "lp_norm", "normalize",
    "pearson_distance", "direct_distance", "epic_distance", "dard_distance", "starc_distance",
    "policy_values", "optimal_policy", "policy_return", "normalized_regret",
    "Metric", "parse_metric", "METRIC_HELP", "epic_canon_sampled", "dard_canon_sampled", "tabular_sampler",
    "distance_from_canon", "RolloutData", "collect_rollouts", "StackRewards", "DistanceResult", "compare_rewards",
    "ROLLOUT_POLICY",
]
