"""The env layer's built-in names (plain data, read by the registries in ``rewardlab.core``).

``ENVS`` entries are ``["package.module:factory", task]``: the family factory with the task
bound, imported only when an env is made. The task lists come from the families' own (light)
modules where those import nothing heavy; the others are listed here and
``tests/core/test_registry.py`` checks them against their family module.
"""

from rewardlab.envs.manipulation import TASKS as _MANIPULATION_TASKS
from rewardlab.envs.minihack import TASKS as _MINIHACK_TASKS
from rewardlab.envs.robotics import COMPONENTS as _ROBOTICS_DENSE
from rewardlab.envs.robotics import SPARSE_TASKS as _ROBOTICS_SPARSE

ALFWORLD_TASKS = ("PickAndPlace-v0", "Clean-v0", "Heat-v0", "Cool-v0", "LookAtInLight-v0", "PickTwo-v0", "All-v0")
SWE_TASKS = ("PatchSelect-v0", "TextEdit-v0")
BRAX_TASKS = ("ant", "halfcheetah", "hopper", "humanoid", "inverted_pendulum", "pusher", "reacher", "walker2d")

ENVS = {
    "toy/GridWorld-v0": ["rewardlab.envs.gridworld:make_gridworld", "GridWorld-v0"],
    **{f"minihack/{t}": ["rewardlab.envs.minihack:make_minihack", t] for t in _MINIHACK_TASKS},
    **{f"alfworld/{t}": ["rewardlab.envs.alfworld.env:make_alfworld", t] for t in ALFWORLD_TASKS},
    **{f"swe/{t}": ["rewardlab.envs.swe.envs:make_swe", t] for t in SWE_TASKS},
    **{f"robotics/{t}": ["rewardlab.envs.robotics:make_robotics", t] for t in (*_ROBOTICS_DENSE, *_ROBOTICS_SPARSE)},
    **{f"brax/{t}": ["rewardlab.envs.brax:make_brax", t] for t in BRAX_TASKS},
    **{f"manipulation/{t}": ["rewardlab.envs.manipulation:make_manipulation", t] for t in _MANIPULATION_TASKS},
}

TERMS = {
    "alfworld/success": "rewardlab.envs.alfworld.terms:Success",
    "alfworld/subgoal_progress": "rewardlab.envs.alfworld.terms:SubgoalProgress",
    "alfworld/invalid_command": "rewardlab.envs.alfworld.terms:InvalidCommand",
}

POTENTIALS = {
    "minihack/stairs_distance": "rewardlab.envs.minihack_potentials:stairs_distance",
    "minihack/keyroom_progress": "rewardlab.envs.minihack_potentials:keyroom_progress",
}

# Reward terms written in JAX for the Brax envs (``rewardlab.envs.brax.build_jax_terms``).
JAX_TERMS = {
    "env": "rewardlab.envs.brax:jax_env_term",
    "metric": "rewardlab.envs.brax:jax_metric_term",
    "ctrl_cost": "rewardlab.envs.brax:jax_ctrl_cost_term",
    "reach": "rewardlab.envs.brax:jax_reach_term",
    "reach_success": "rewardlab.envs.brax:jax_reach_success_term",
    "potential": "rewardlab.envs.brax:jax_potential_term",
}
