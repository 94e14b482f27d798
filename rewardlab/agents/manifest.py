"""The agent layer's built-in names (plain data, read by the registries in ``rewardlab.core``)."""

AGENTS = {
    "ppo": "rewardlab.agents.ppo:make_ppo",
    "pg": "rewardlab.agents.pg:make_pg",
    "text_ppo": "rewardlab.agents.text_policy:make_text_ppo",
    "sb3_ppo": "rewardlab.agents.sb3:make_ppo",
    "sb3_a2c": "rewardlab.agents.sb3:make_a2c",
    "sb3_dqn": "rewardlab.agents.sb3:make_dqn",
}
