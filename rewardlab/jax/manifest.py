"""The JAX path's built-in names (plain data, read by the registries in ``rewardlab.core``).

- ``ENVS``: ``gymnax/<id>`` and ``minigrid/<id>`` (MiniGrid tasks and XLand layouts) as single
  Gymnasium envs (``rewardlab.make``);
- ``VECTOR_ENVS``: the same names as one jitted Gymnasium ``VectorEnv`` (``rewardlab.make_vec``
  uses it instead of a ``SyncVectorEnv`` of single envs);
- ``POTENTIALS`` / ``TERMS``: numpy potentials and event terms (``open_door``, ``reach_goal``) over
  the MiniGrid adapter's info (twins of the JAX ones);
- ``JAX_RL_TERMS`` / ``JAX_RL_POTENTIALS``: reward terms and potentials of the pure-JAX path
  (``rewardlab.jax.terms``), one value per env of a batch, with numeric parameters as traced
  arguments. Not ``JAX_TERMS``: that key holds the Brax terms of ``rewardlab.envs.brax``, which
  have another signature (docs/jax.md says how the two differ);
- ``AGENTS`` / ``AGENT_PARAMS`` / ``HONOURED_HOOKS``: ``jax_ppo`` (it trains inside one compiled
  program, so it calls none of the learnable-term hooks); ``AGENT_TERMS``: the registry its reward
  terms come from (the config check refuses a term missing there).
"""

# gymnax tasks that reset and step here (tests/jax/test_jax_envs.py steps each one). Left out:
# MemoryChain-bsuite (its declared observation space does not contain its observations), MNIST (a download).
GYMNAX_TASKS = (
    "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "MountainCarContinuous-v0",
    "Catch-bsuite", "DeepSea-bsuite", "UmbrellaChain-bsuite", "DiscountingChain-bsuite",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar",
    "FourRooms-misc",
)
# xminigrid's MiniGrid tasks.
MINIGRID_TASKS = (
    "MiniGrid-DoorKey-5x5", "MiniGrid-DoorKey-6x6", "MiniGrid-DoorKey-8x8", "MiniGrid-DoorKey-16x16",
    "MiniGrid-Empty-5x5", "MiniGrid-Empty-6x6", "MiniGrid-Empty-8x8", "MiniGrid-Empty-16x16",
    "MiniGrid-EmptyRandom-5x5", "MiniGrid-EmptyRandom-6x6", "MiniGrid-EmptyRandom-8x8", "MiniGrid-EmptyRandom-16x16",
    "MiniGrid-FourRooms", "MiniGrid-LockedRoom", "MiniGrid-Unlock", "MiniGrid-UnlockPickUp",
    "MiniGrid-BlockedUnlockPickUp", "MiniGrid-MemoryS8", "MiniGrid-MemoryS16", "MiniGrid-Playground",
)

# xminigrid's XLand layouts (R1: one room ... R9: nine rooms); rulesets from a benchmark or our
# generator (``rewardlab.jax.xland_rulesets``), the room layout from the name.
XLAND_TASKS = tuple(f"XLand-MiniGrid-{layout}" for layout in (
    "R1-9x9", "R1-11x11", "R1-13x13", "R1-15x15", "R1-17x17", "R2-9x9", "R2-11x11", "R2-13x13", "R2-15x15",
    "R2-17x17", "R4-9x9", "R4-11x11", "R4-13x13", "R4-15x15", "R4-17x17", "R6-13x13", "R6-17x17", "R6-19x19",
    "R9-16x16", "R9-19x19", "R9-25x25",
))

ENVS = {
    **{f"gymnax/{t}": ["rewardlab.jax.envs:make_gymnax", t] for t in GYMNAX_TASKS},
    **{f"minigrid/{t}": ["rewardlab.jax.envs:make_minigrid", t] for t in MINIGRID_TASKS},
    **{f"minigrid/{t}": ["rewardlab.jax.envs:make_xland", t] for t in XLAND_TASKS},
}

VECTOR_ENVS = {
    **{f"gymnax/{t}": ["rewardlab.jax.envs:make_gymnax_vec", t] for t in GYMNAX_TASKS},
    **{f"minigrid/{t}": ["rewardlab.jax.envs:make_minigrid_vec", t] for t in MINIGRID_TASKS},
    **{f"minigrid/{t}": ["rewardlab.jax.envs:make_xland_vec", t] for t in XLAND_TASKS},
}

POTENTIALS = {
    "minigrid/doorkey_progress": "rewardlab.jax.minigrid_np:doorkey_progress",
    "minigrid/goal_distance": "rewardlab.jax.minigrid_np:goal_distance",
    "minigrid/key_distance": "rewardlab.jax.minigrid_np:key_distance",
    "minigrid/door_distance": "rewardlab.jax.minigrid_np:door_distance",
}

# NumPy event terms over the MiniGrid adapter's info (twins of the JAX ``open_door``/``reach_goal``).
TERMS = {
    "open_door": "rewardlab.jax.minigrid_np:OpenDoor",
    "reach_goal": "rewardlab.jax.minigrid_np:ReachGoal",
}

JAX_RL_TERMS = {
    "env": "rewardlab.jax.terms:env_term",
    "step_penalty": "rewardlab.jax.terms:step_penalty_term",
    "potential": "rewardlab.jax.terms:potential_term",
    "novelty": "rewardlab.jax.terms:novelty_term",
    "pickup": "rewardlab.jax.terms:pickup_term",
    "open_door": "rewardlab.jax.terms:open_door_term",
    "reach_goal": "rewardlab.jax.terms:reach_goal_term",
    "reach": "rewardlab.jax.terms:reach_term",
    "derl_program": "rewardlab.jax.program:program_term",
}

JAX_RL_POTENTIALS = {
    "minigrid/doorkey_progress": "rewardlab.jax.potentials:doorkey_progress",
    "minigrid/goal_distance": "rewardlab.jax.potentials:goal_distance",
    "minigrid/key_distance": "rewardlab.jax.potentials:key_distance",
    "minigrid/door_distance": "rewardlab.jax.potentials:door_distance",
}

# A batched agent: ``rewardlab run`` trains all seeds in one compiled program
# (``rewardlab.experiment.batched``), so it calls none of the learnable-term hooks.
AGENTS = {"jax_ppo": "rewardlab.jax.trainer:JaxPPOTrainer"}
AGENT_PARAMS = {"jax_ppo": "rewardlab.jax.config:JaxPPOConfig"}
HONOURED_HOOKS = {"jax_ppo": []}
# The agent's reward terms come from this registry (its manifest key), not from ``TERMS``:
# ``rewardlab check`` refuses a term without a JAX version before anything runs.
AGENT_TERMS = {"jax_ppo": "JAX_RL_TERMS"}
