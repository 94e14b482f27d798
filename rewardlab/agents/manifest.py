"""The agent layer's built-in names (plain data, read by the registries in ``rewardlab.core``).

- ``AGENTS``: agent name → its factory ``factory(venv, *, gamma, seed, params)``;
- ``AGENT_PARAMS``: agent name → its params model (a dataclass checked field by field) or a
  ``validate(params)`` function; ``rewardlab.agents.params.validate_agent_params`` reads it, so
  ``rewardlab check`` validates ``agent.params`` without building the agent;
- ``HONOURED_HOOKS``: agent name → the reward-term hooks (``rewardlab.core.terms.AGENT_HOOKS``)
  it calls; an agent not listed honours none. The config check refuses a term that needs a
  hook its agent ignores. The PPO-core agents declare the same set on their class
  (``PPOAgent.honoured_hooks``); a test keeps the two equal.
- ``GROUP_NORMALIZE``: agent name → the ``reward.normalize`` modes (GDPO ``gdpo``, GRPO ``sum``)
  it applies to the per-term returns of its episode groups; the config check refuses
  ``reward.normalize`` with any other agent.
"""

_ALL_HOOKS = ["update", "extra_advantages", "discount", "bind_agent", "state_dict"]

AGENTS = {
    "ppo": "rewardlab.agents.ppo:make_ppo",
    "pg": "rewardlab.agents.pg:make_pg",
    "text_ppo": "rewardlab.agents.text_policy:make_text_ppo",
    "rloo": "rewardlab.agents.rloo.agent:make_rloo",
    "text_rloo": "rewardlab.agents.rloo.agent:make_text_rloo",
    "sb3_ppo": "rewardlab.agents.sb3:make_ppo",
    "sb3_a2c": "rewardlab.agents.sb3:make_a2c",
    "sb3_dqn": "rewardlab.agents.sb3:make_dqn",
    "bc": "rewardlab.agents.bc:make_bc",
    "ra_bc": "rewardlab.agents.bc:make_ra_bc",
}

AGENT_PARAMS = {
    "ppo": "rewardlab.agents.ppo.config:PPOConfig",
    "pg": "rewardlab.agents.ppo.config:PGConfig",
    "text_ppo": "rewardlab.agents.ppo.config:TextPPOConfig",
    "rloo": "rewardlab.agents.rloo.config:RLOOConfig",
    "text_rloo": "rewardlab.agents.rloo.config:TextRLOOConfig",
    "sb3_ppo": "rewardlab.agents.sb3:ppo_params",
    "sb3_a2c": "rewardlab.agents.sb3:a2c_params",
    "sb3_dqn": "rewardlab.agents.sb3:dqn_params",
    "bc": "rewardlab.agents.bc:BCParams",
    "ra_bc": "rewardlab.agents.bc:RABCParams",
}

HONOURED_HOOKS = {
    "ppo": _ALL_HOOKS,
    "pg": _ALL_HOOKS,
    "text_ppo": _ALL_HOOKS,
    # Episodic group-relative advantages: no discount to replace.
    "rloo": ["update", "extra_advantages", "bind_agent", "state_dict"],
    "text_rloo": ["update", "extra_advantages", "bind_agent", "state_dict"],
    "sb3_ppo": [],
    "sb3_a2c": [],
    "sb3_dqn": [],
    # Offline imitation: trains on demonstrations, ignores rewards.
    "bc": [],
    "ra_bc": [],
}

GROUP_NORMALIZE = {
    "rloo": ["gdpo", "sum"],
    "text_rloo": ["gdpo", "sum"],
}
