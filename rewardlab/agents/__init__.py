"""Agents that train on shaped vector envs, selected in YAML by ``agent.name``.

- ``sb3_ppo``, ``sb3_a2c``, ``sb3_dqn``: Stable-Baselines3 algorithms (``rewardlab.agents.sb3``)
- ``ppo``: our own PyTorch PPO (``rewardlab.agents.ppo``), when installed
- ``pg``: REINFORCE with a baseline / batch actor-critic on PPO's machinery (``rewardlab.agents.pg``)
"""

from rewardlab.agents.base import AGENTS, Agent, TrainCallback

__all__ = ["AGENTS", "Agent", "TrainCallback"]
