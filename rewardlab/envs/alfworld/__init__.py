"""ALFWorld household text games, offline: a seeded game generator and Gymnasium envs.

- ``generate``: ALFWorld-style games (PDDL problems from the wheel's floor plans) for the six
  task types, validated by the planner; CLI ``python -m rewardlab.envs.alfworld.generate``;
- ``env``: ``AlfWorldEnv`` (``alfworld/<Task>-v0``), token observations + action mask for RL
  agents, a text mode for LLM agents;
- ``speedups``: cached template parsing for textworld's PDDL engine (same texts, faster);
- ``terms``: reward primitives ``alfworld/success``, ``alfworld/subgoal_progress``,
  ``alfworld/invalid_command``.

Nothing here imports alfworld/textworld at package import (docs: ``docs/envs/alfworld.md``).
"""
