"""The imitation package's built-in names (plain data, read by the registries in ``rewardlab.core``)."""

AGENTS = {
    "ild": "rewardlab.imitation.ild:make_ild",
}
