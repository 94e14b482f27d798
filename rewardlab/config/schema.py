"""Experiment files: a pydantic schema per section, YAML loading and validation.

A bad file stops with one ``ConfigError`` naming the field, the bad value and what is
allowed — never a traceback. Names (env, terms, agent) are checked against the registries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rewardlab.config.agents import check_agent
from rewardlab.config.derl import DerlConfig
from rewardlab.config.overrides import apply_overrides
from rewardlab.config.sweep import SweepConfig
from rewardlab.errors import ConfigError

__all__ = [
    "EnvConfig", "TermConfig", "RewardConfig", "AgentConfig", "TrainConfig", "EvalConfig",
    "LogConfig", "ExperimentConfig", "load_config", "parse_config", "dump_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EnvConfig(_Section):
    id: str
    """registered env name (``minihack/Room-5x5``) or any Gymnasium id"""
    n_envs: int = Field(8, ge=1, le=1024)
    """number of parallel training envs (one SyncVectorEnv)"""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments of the env factory (e.g. ``obs``, ``max_episode_steps``)"""


class TermConfig(_Section):
    name: str
    """registered term name (``rewardlab list`` shows them)"""
    weight: float = 1.0
    """multiplier of the term's value in the total reward"""
    params: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments of the term"""
    as_: str | None = Field(None, alias="as")
    """display/log name, needed when one term kind is used twice"""

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "weight": self.weight, "params": dict(self.params)}
        if self.as_:
            out["as"] = self.as_
        return out


class RewardConfig(_Section):
    terms: list[TermConfig] = Field(default_factory=lambda: [TermConfig(name="env")])
    """the reward terms, summed with their weights"""
    clip: tuple[float, float] | None = None
    """optional ``[low, high]`` clip of the total reward"""
    gate: dict[str, Any] | None = None
    """optional G-RA gate ``{outcome: term, gated: [terms], threshold: 0.5, mode: episode|running}``"""
    normalize: str | None = None
    """optional group normalisation for group-relative learners: ``gdpo`` or ``sum``"""

    @field_validator("terms", mode="before")
    @classmethod
    def _names_to_specs(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("terms")
    @classmethod
    def _not_empty(cls, v: list[TermConfig]) -> list[TermConfig]:
        if not v:
            raise ValueError("at least one reward term is needed (e.g. [env])")
        return v

    def build_stack(self, gamma: float):
        """The ``RewardStack`` of these terms, with the learner's ``gamma`` and the clip."""
        from rewardlab.core.terms import build_stack

        stack = build_stack([t.spec() for t in self.terms], gamma=gamma, clip=self.clip)
        if self.gate is None and self.normalize is None:
            return stack
        from rewardlab.core.stack import RewardStack
        from rewardlab.errors import InvalidArgument
        from rewardlab.shaping.gated import GatedAccumulation

        try:
            gate = None if self.gate is None else GatedAccumulation(**self.gate)
            return RewardStack(stack.terms, stack.weights, clip=self.clip, gate=gate, normalize=self.normalize)
        except (InvalidArgument, TypeError) as e:
            raise ConfigError(f"reward.gate/normalize: {e}") from e

    @model_validator(mode="after")
    def _clip_order(self) -> RewardConfig:
        if self.clip is not None and not self.clip[0] < self.clip[1]:
            raise ValueError(f"clip low ({self.clip[0]}) must be smaller than clip high ({self.clip[1]})")
        return self


class AgentConfig(_Section):
    name: str = "sb3_ppo"
    """registered agent (``rewardlab list agents``)"""
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    """the learner's discount; potential-based shaping uses the same γ"""
    params: dict[str, Any] = Field(default_factory=dict)
    """the agent's parameters, checked against its typed params model (``PPOConfig`` for ``ppo``,
    the SB3 constructor's keywords for ``sb3_*``; ``rewardlab list agents --params``)"""


class TrainConfig(_Section):
    total_steps: int = Field(100_000, ge=1)
    """environment steps per seed (summed over parallel envs)"""
    seeds: list[int] = Field(default_factory=lambda: [0])
    """one run per seed; results are reported as mean ± std"""

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        return v


class EvalConfig(_Section):
    every_steps: int = Field(10_000, ge=1)
    """evaluate the policy on the unshaped env every this many steps"""
    episodes: int = Field(20, ge=1)
    """episodes per periodic evaluation"""
    final_episodes: int = Field(100, ge=1)
    """episodes of the final evaluation"""
    n_envs: int = Field(4, ge=1)
    """parallel evaluation envs"""
    deterministic: bool = True
    """greedy actions during evaluation"""


class LogConfig(_Section):
    dir: str = "runs"
    """parent directory of run directories"""
    tensorboard: bool = True
    """write TensorBoard events (``charts/``, ``losses/``, ``eval/``, ``reward_terms/``)"""
    checkpoint_every: int = Field(25_000, ge=1)
    """save a resumable checkpoint every this many steps"""


class ExperimentConfig(_Section):
    name: str = "experiment"
    """run directories are named ``<name>__<timestamp>``"""
    description: str = ""
    env: EnvConfig
    reward: RewardConfig = Field(default_factory=RewardConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    sweep: SweepConfig | None = None
    """search space for ``rewardlab sweep`` (ignored by ``rewardlab run``)"""
    derl: DerlConfig | None = None
    """DERL meta-loop: with this section ``rewardlab run`` searches reward programs (rewardlab.derl)"""


def _format_validation(err: ValidationError, source: str) -> str:
    lines = [f"invalid experiment config ({source}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parent = ".".join(str(p) for p in e["loc"][:-1])
            model: Any = ExperimentConfig
            for p in e["loc"][:-1]:
                field = model.model_fields.get(str(p)) if hasattr(model, "model_fields") else None
                model = getattr(field, "annotation", None) if field else None
            allowed = ", ".join(model.model_fields) if hasattr(model, "model_fields") else ""
            msg = f"unknown field{' in ' + parent if parent else ''}" + (f"; allowed: {allowed}" if allowed else "")
        elif "input" in e and e["type"] != "missing":
            msg += f" (got {e['input']!r})"
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def _check_names(cfg: ExperimentConfig) -> None:
    import gymnasium as gym

    from rewardlab.agents import AGENTS
    from rewardlab.core.terms import TERMS
    from rewardlab.envs import ENVS
    from rewardlab.errors import UnknownNameError

    if cfg.env.id not in ENVS and cfg.env.id not in gym.registry:
        err = UnknownNameError("env", cfg.env.id, ENVS.names())
        raise ConfigError(f"env.id: {err} (or any Gymnasium id, e.g. CartPole-v1)")
    for i, term in enumerate(cfg.reward.terms):
        if term.name not in TERMS:
            raise ConfigError(f"reward.terms.{i}.name: {UnknownNameError('reward term', term.name, TERMS.names())}")
    if cfg.agent.name not in AGENTS:
        raise ConfigError(f"agent.name: {UnknownNameError('agent', cfg.agent.name, AGENTS.names())}")
    _check_agent_terms(cfg)


def _check_agent_terms(cfg: ExperimentConfig) -> None:
    """An agent whose terms come from another registry (``AGENT_TERMS`` in a manifest, e.g.
    ``jax_ppo``: ``JAX_RL_TERMS``) refuses terms that registry lacks, listing the ones it has."""
    from rewardlab.core.registry import manifest_entries

    registry_key = manifest_entries("AGENT_TERMS").get(cfg.agent.name)
    if registry_key is None:
        return
    known = sorted(manifest_entries(registry_key))
    for i, term in enumerate(cfg.reward.terms):
        if term.name not in known:
            raise ConfigError(f"reward.terms.{i}.name: term {term.name!r} has no version for agent "
                              f"{cfg.agent.name!r}; terms with one: {', '.join(known)}")
    if cfg.reward.gate is not None or cfg.reward.normalize is not None:
        raise ConfigError(f"reward.gate/normalize: not supported by agent {cfg.agent.name!r}")


def parse_config(data: Any, source: str = "<config>") -> ExperimentConfig:
    """Validate a mapping into an ``ExperimentConfig`` (names included)."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid experiment config ({source}): the top level must be a mapping, got {type(data).__name__}"
        )
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, source)) from None
    _check_names(cfg)
    check_agent(cfg.agent.name, cfg.agent.params, cfg.reward.terms)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Read, override and validate an experiment file; returns (config, resolved raw mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"malformed YAML in {path}{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"experiment file {path} is empty")
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"invalid experiment config ({path}): the top level must be a mapping")
        data = apply_overrides(data, overrides)
    cfg = parse_config(data, str(path))
    return cfg, data


def dump_config(cfg: ExperimentConfig) -> str:
    """The fully resolved config (defaults filled in) as YAML."""
    return yaml.safe_dump(cfg.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
