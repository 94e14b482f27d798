"""The shaping layer's built-in names (plain data, read by the registries in ``rewardlab.core``).

Each entry is ``"package.module:attr"``, imported on first use; see ``rewardlab.core.registry``.
"""

TERMS = {
    "env": "rewardlab.shaping.basic:EnvReward",
    "step_penalty": "rewardlab.shaping.basic:StepPenalty",
    "novelty": "rewardlab.shaping.basic:Novelty",
    "info_signal": "rewardlab.shaping.basic:InfoSignal",
    "info_component": "rewardlab.shaping.basic:InfoComponent",
    "potential": "rewardlab.shaping.potential:PotentialShaping",
    "message": "rewardlab.shaping.events:MessageEvent",
    "reach": "rewardlab.shaping.events:ReachEvent",
    "pickup": "rewardlab.shaping.events:PickupEvent",
    "reach_distance": "rewardlab.shaping.reach:ReachDistance",
    "ctrl_cost": "rewardlab.shaping.reach:ControlCost",
    "verpo": "rewardlab.shaping.verpo:VerpoReward",
    "derl_program": "rewardlab.shaping.derl_program:ProgramTerm",
    "barfi": "rewardlab.shaping.barfi:BARFIReward",
    "calm": "rewardlab.shaping.calm:CALMReward",
    "oni": "rewardlab.shaping.oni:ONIReward",
    "oprl": "rewardlab.shaping.oprl:OPRLReward",
    "cartpole_upright": "rewardlab.shaping.auxiliary:CartPoleUpright",
    "cartpole_velocity": "rewardlab.shaping.auxiliary:CartPoleVelocity",
    "grid_cell": "rewardlab.shaping.auxiliary:GridCell",
    "state_bonus": "rewardlab.shaping.auxiliary:StateBonus",
    "sarm": "rewardlab.imitation.sarm:SARMReward",
}

POTENTIALS = {
    "robotics/reach_distance": "rewardlab.shaping.reach:reach_distance_potential",
}
