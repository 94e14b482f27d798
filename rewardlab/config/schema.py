"""Experiment files: a pydantic schema per section, YAML loading and validation.

A bad file stops with one ``ConfigError`` naming the field, the bad value and what is
allowed — never a traceback. Names (env, terms, agent) are checked against the registries.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rewardlab.config.agents import check_agent
from rewardlab.config.derl import DerlConfig
from rewardlab.config.limits import (
    MAX_ENVS,
    MAX_EPISODES,
    MAX_NAME,
    MAX_REWARD,
    MAX_SEED,
    MAX_STEPS,
    MAX_WEIGHT,
)
from rewardlab.config.loader import check_plain_data, load_yaml, read_text, short_repr
from rewardlab.config.overrides import apply_overrides
from rewardlab.config.signatures import check_env_kwargs, check_term_params
from rewardlab.config.sweep import SweepConfig
from rewardlab.core.registry import manifest_entries
from rewardlab.errors import ConfigError

__all__ = [
    "EnvConfig", "TermConfig", "RewardConfig", "AgentConfig", "TrainConfig", "EvalConfig",
    "LogConfig", "WandbConfig", "ExperimentConfig", "load_config", "parse_config", "dump_config",
    "MAX_SEED", "MAX_STEPS", "MAX_EPISODES", "MAX_ENVS", "MAX_WEIGHT", "MAX_NAME",
]

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class EnvConfig(_Section):
    id: str = Field(max_length=MAX_NAME)
    """registered env name (``minihack/Room-5x5``) or any Gymnasium id"""
    n_envs: int = Field(8, ge=1, le=MAX_ENVS)
    """number of parallel training envs (one SyncVectorEnv)"""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments of the env factory (e.g. ``obs``, ``max_episode_steps``), checked
    against its signature (``rewardlab.config.signatures``)"""


class TermConfig(_Section):
    name: str = Field(max_length=MAX_NAME)
    """registered term name (``rewardlab list`` shows them)"""
    weight: float = Field(1.0, ge=-MAX_WEIGHT, le=MAX_WEIGHT)
    """multiplier of the term's value in the total reward (|weight| ≤ ``MAX_WEIGHT``)"""
    params: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments of the term"""
    as_: str | None = Field(None, alias="as", max_length=MAX_NAME)
    """display/log name, needed when one term kind is used twice"""

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "weight": self.weight, "params": dict(self.params)}
        if self.as_:
            out["as"] = self.as_
        return out


class RewardConfig(_Section):
    terms: list[TermConfig] = Field(default_factory=lambda: [TermConfig(name="env")])
    """the reward terms, summed with their weights"""
    clip: tuple[Annotated[float, Field(ge=-MAX_REWARD, le=MAX_REWARD)],
                Annotated[float, Field(ge=-MAX_REWARD, le=MAX_REWARD)]] | None = None
    """optional ``[low, high]`` clip of the total reward (finite float32 values)"""
    gate: dict[str, Any] | None = None
    """optional G-RA gate ``{outcome: term, gated: [terms], threshold: 0.5, mode: episode|running}``, or with
    priority levels ``{levels: [[outcome terms], [level 1 terms], ...], threshold: [one per gating level]}``"""
    normalize: str | None = None
    """optional group normalisation for group-relative learners: ``gdpo`` or ``sum``"""
    variants: dict[str, dict[str, float | str]] | None = None
    """agents that train in one program (``jax_ppo``): named reward variants trained side by side,
    each ``{"<term>.weight" or "<term>.<numeric param>": value}`` over the terms above (and
    ``"<derl_program term>.program": text``: programs are token arrays in the compiled step)"""

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, v: dict[str, dict[str, float]] | None) -> dict[str, dict[str, float]] | None:
        import re

        for name in v or {}:
            # each variant gets the directory <run>/<name>
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"variant name {name!r} must be letters, digits, '_' or '-' (a directory name)")
        return v

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
        """The ``RewardStack`` of these terms, with the learner's ``gamma`` and the clip. A term
        that cannot be built is a ``ConfigError`` naming ``reward.terms.<i>``, whatever its
        constructor raised."""
        from rewardlab.core.stack import RewardStack
        from rewardlab.core.terms import build_term
        from rewardlab.errors import InvalidArgument, RewardLabError

        terms = []
        for i, t in enumerate(self.terms):
            try:
                terms.append(build_term(t.name, t.params, name=t.as_, gamma=gamma))
            except RewardLabError as e:
                raise ConfigError(f"reward.terms.{i}: {e}") from e
            except Exception as e:  # a constructor that checks its params with plain exceptions
                first = (str(e).strip().splitlines() or [""])[0][:300]
                raise ConfigError(f"reward.terms.{i}.params: reward term {t.name!r} could not be built with "
                                  f"{short_repr(t.params)}: {type(e).__name__}: {first}") from e
        weights = [t.weight for t in self.terms]
        try:
            gate = None
            if self.gate is not None:
                from rewardlab.shaping.gated import GatedAccumulation

                gate = GatedAccumulation(**self.gate)
            return RewardStack(terms, weights, clip=self.clip, gate=gate, normalize=self.normalize)
        except (InvalidArgument, TypeError, ValueError) as e:
            where = "reward.gate/normalize" if self.gate is not None or self.normalize is not None else "reward"
            raise ConfigError(f"{where}: {e}") from e

    @model_validator(mode="after")
    def _clip_order(self) -> RewardConfig:
        if self.clip is not None and not self.clip[0] < self.clip[1]:
            raise ValueError(f"clip low ({self.clip[0]}) must be smaller than clip high ({self.clip[1]})")
        return self


class AgentConfig(_Section):
    name: str = Field("sb3_ppo", max_length=MAX_NAME)
    """registered agent (``rewardlab list agents``)"""
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    """the learner's discount; potential-based shaping uses the same γ"""
    params: dict[str, Any] = Field(default_factory=dict)
    """the agent's parameters, checked against its typed params model (``PPOConfig`` for ``ppo``,
    the SB3 constructor's keywords for ``sb3_*``; ``rewardlab list agents --params``)"""


class TrainConfig(_Section):
    total_steps: int = Field(100_000, ge=1, le=MAX_STEPS)
    """environment steps per seed (summed over parallel envs)"""
    seeds: list[Seed] = Field(default_factory=lambda: [0])
    """one run per seed (each 0 ≤ seed ≤ ``MAX_SEED``); results are reported as mean ± std"""

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        return v


class EvalConfig(_Section):
    every_steps: int = Field(10_000, ge=1, le=MAX_STEPS)
    """evaluate the policy on the unshaped env every this many steps"""
    episodes: int = Field(20, ge=1, le=MAX_EPISODES)
    """episodes per periodic evaluation"""
    final_episodes: int = Field(100, ge=1, le=MAX_EPISODES)
    """episodes of the final evaluation"""
    n_envs: int = Field(4, ge=1, le=MAX_ENVS)
    """parallel evaluation envs"""
    deterministic: bool = True
    """greedy actions during evaluation"""


class WandbConfig(_Section):
    project: str = Field(min_length=1, max_length=MAX_NAME)
    """Weights & Biases project"""
    mode: Literal["offline", "online", "disabled"] = "offline"
    """``offline`` writes ``seed_<s>/wandb/offline-run-*`` without network (``wandb sync`` uploads it);
    ``online`` needs a login and network"""
    entity: str | None = Field(None, max_length=MAX_NAME)
    """team or user (online mode)"""
    tags: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(default_factory=list)
    """run tags"""


class LogConfig(_Section):
    dir: str = "runs"
    """parent directory of run directories"""
    tensorboard: bool = True
    """write TensorBoard events (``charts/``, ``losses/``, ``eval/``, ``reward_terms/``)"""
    checkpoint_every: int = Field(25_000, ge=1, le=MAX_STEPS)
    """save a resumable checkpoint every this many steps"""
    video: bool = False
    """record one evaluation episode (unshaped env, ``render_mode="rgb_array"``) at every periodic and
    the final evaluation: ``seed_<s>/videos/<kind>_step_<n>.mp4`` and TensorBoard's ``eval/video``"""
    video_fps: int = Field(15, ge=1, le=240)
    """frames per second of the recorded videos"""
    wandb: WandbConfig | None = None
    """optional Weights & Biases logging of every metric (and video): ``{project: ..., mode: offline}``"""


class ExperimentConfig(_Section):
    name: str = "experiment"
    """run directories are named ``<name>__<timestamp>`` inside ``--out``/``log.dir``: one path
    component (no ``/``, ``\\``, ``..``), printable, at most ``MAX_NAME`` characters"""
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

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, v: str) -> str:
        check_run_name(v)
        return v


def check_run_name(name: str) -> None:
    """Refuse a run name that is not one plain path component (it names a directory under ``--out``).

    >>> check_run_name("../elsewhere")
    Traceback (most recent call last):
    ...
    ValueError: must be one directory name: no '/', '\\', '.' or '..' (got '../elsewhere')
    """
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"must be 1 to {MAX_NAME} characters (got {len(name)})")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise ValueError(f"must be one directory name: no '/', '\\', '.' or '..' (got {short_repr(name)})")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ValueError(f"must be printable: no control characters (got {short_repr(name)})")


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
            msg += f" (got {short_repr(e['input'])})"
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

    if cfg.reward.normalize is not None and cfg.agent.name not in manifest_entries("GROUP_NORMALIZE"):
        agents = ", ".join(sorted(manifest_entries("GROUP_NORMALIZE")))
        raise ConfigError(f"reward.normalize: agent {cfg.agent.name!r} has no episode groups to normalise in; "
                          f"agents that apply it: {agents}")
    registry_key = manifest_entries("AGENT_TERMS").get(cfg.agent.name)
    if registry_key is None:
        if cfg.reward.variants:
            raise ConfigError(f"reward.variants: agent {cfg.agent.name!r} trains one reward per run; "
                              "variants need an agent that trains them in one program (jax_ppo)")
        return
    known = sorted(manifest_entries(registry_key))
    for i, term in enumerate(cfg.reward.terms):
        if term.name not in known:
            raise ConfigError(f"reward.terms.{i}.name: term {term.name!r} has no version for agent "
                              f"{cfg.agent.name!r}; terms with one: {', '.join(known)}")
    if cfg.reward.gate is not None or cfg.reward.normalize is not None:
        raise ConfigError(f"reward.gate/normalize: not supported by agent {cfg.agent.name!r}")


def parse_config(data: Any, source: str = "<config>") -> ExperimentConfig:
    """Validate a mapping into an ``ExperimentConfig`` (names, numbers, agent params and env
    kwargs included): everything ``rewardlab check`` and ``run`` refuse before anything runs."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid experiment config ({source}): the top level must be a mapping, got {type(data).__name__}"
        )
    check_plain_data(data, types=False)
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, source)) from None
    _check_names(cfg)
    check_agent(cfg.agent.name, cfg.agent.params, cfg.reward.terms)
    if manifest_entries("AGENT_TERMS").get(cfg.agent.name) is None:  # else terms of another registry (JAX)
        for i, term in enumerate(cfg.reward.terms):
            check_term_params(i, term.name, term.params)
    check_env_kwargs(cfg.env.id, cfg.env.kwargs)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Read, override and validate an experiment file; returns (config, resolved raw mapping)."""
    path = Path(path)
    data = load_yaml(read_text(path), str(path))  # bounded: size, encoding, depth, alias expansion
    if data is None:
        raise ConfigError(f"experiment file {path} is empty")
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"invalid experiment config ({path}): the top level must be a mapping")
        data = apply_overrides(data, overrides)
    check_plain_data(data)
    cfg = parse_config(data, str(path))
    return cfg, data


def dump_config(cfg: ExperimentConfig) -> str:
    """The fully resolved config (defaults filled in) as YAML."""
    return yaml.safe_dump(cfg.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
