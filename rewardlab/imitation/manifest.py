"""The imitation package's built-in names (plain data, read by the registries in ``rewardlab.core``).

``ild`` calls no reward-term hooks (``HONOURED_HOOKS``): it imitates demos and ignores
rewards, so the config check refuses learnable terms under it.
"""

AGENTS = {
    "ild": "rewardlab.imitation.ild:make_ild",
}

AGENT_PARAMS = {
    "ild": "rewardlab.imitation.ild:ILDAgentParams",
}

HONOURED_HOOKS = {
    "ild": [],
}
