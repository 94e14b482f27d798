"""The experiment-file schema: one pydantic model per section, ``--set`` overrides, and the
``sweep:`` and ``derl:`` sections. Layer: above ``shaping``/``envs``/``agents`` (it checks names
against their registries), below ``experiment`` (the runner reads what this validates).

- ``schema``: ``ExperimentConfig`` and its sections, ``load_config``, ``parse_config``, ``dump_config``
- ``overrides``: ``apply_overrides``, ``set_path``, ``list_item_name``
- ``sweep``: ``SweepConfig``, ``ParamSpec``, ``check_space``
- ``derl``: ``DerlConfig``
"""

from rewardlab.config.derl import DerlConfig
from rewardlab.config.overrides import apply_overrides, list_item_name, set_path
from rewardlab.config.schema import (
    AgentConfig,
    EnvConfig,
    EvalConfig,
    ExperimentConfig,
    LogConfig,
    RewardConfig,
    TermConfig,
    TrainConfig,
    dump_config,
    load_config,
    parse_config,
)
from rewardlab.config.sweep import ParamSpec, SweepConfig, check_space

__all__ = [
    "EnvConfig", "TermConfig", "RewardConfig", "AgentConfig", "TrainConfig", "EvalConfig", "LogConfig",
    "ExperimentConfig", "load_config", "parse_config", "dump_config", "apply_overrides", "set_path",
    "list_item_name", "SweepConfig", "ParamSpec", "check_space", "DerlConfig",
]
