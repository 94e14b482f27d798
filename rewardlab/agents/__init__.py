"""Agents that train on shaped vector envs, selected in YAML by ``agent.name``.

- ``ppo``: our own PyTorch PPO, the one policy-gradient core (``rewardlab.agents.ppo``); its variants:
- ``pg``: REINFORCE with a baseline / batch actor-critic, one full-batch step per rollout (``rewardlab.agents.pg``)
- ``text_ppo``: a slot-scoring text policy for ALFWorld token observations (``rewardlab.agents.text_policy``)
- ``rloo``, ``text_rloo``: episodic group-relative (RLOO / GRPO) advantages over group rollouts, the clipped
  surrogate of the core (``rewardlab.agents.rloo``)
- ``sb3_ppo``, ``sb3_a2c``, ``sb3_dqn``: Stable-Baselines3 algorithms (``rewardlab.agents.sb3``)
- ``ild``: imitation through differentiable physics on Brax (``rewardlab.imitation.ild``)
- ``bc``, ``ra_bc``: offline behaviour cloning and SARM progress-weighted RA-BC from generated demos of
  ``manipulation/ReachSequence-v0`` (``rewardlab.agents.bc``)
- ``jax_ppo``: PPO compiled with JAX, all seeds in one program (``rewardlab.jax``)

The names are declared in the packages' manifests (``AGENTS``), with each agent's params model
(``AGENT_PARAMS``) and the reward-term hooks it calls (``HONOURED_HOOKS``); a test checks that
this list names every registered agent.
"""

from rewardlab.agents.base import AGENTS, Agent, TrainCallback

__all__ = ["AGENTS", "Agent", "TrainCallback"]
