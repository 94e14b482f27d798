"""The ``sweep:`` section of an experiment file: the search space as data, and sampling it.

Contents: ``ParamSpec`` (one dimension), ``SweepConfig`` (the section), ``sample`` (one trial's
values applied to the experiment's raw config) and ``check_space`` (typos in term
names, CMA-ES on a categorical space). Only pydantic and PyYAML here, so ``rewardlab run``
validates a file's ``sweep:`` section without importing Optuna.

A dimension is addressed by the same key path as ``--set`` (``reward.terms.potential.weight``).
Categorical choices may be lists (``reward.terms: {choices: [[env], [env, potential]]}``); a
term named in such a list takes its weight and params from the experiment's own ``reward.terms``
when it is listed there. A dimension below ``reward.terms.<name>`` is sampled only in trials
whose terms include ``<name>``, and ``when: {path: value}`` makes any dimension conditional on
an earlier one (a list of values means "any of these").
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardlab.config.limits import MAX_SEED
from rewardlab.config.overrides import list_item_name
from rewardlab.errors import ConfigError

__all__ = ["ParamSpec", "SweepConfig", "check_space", "choice_label", "get_path", "term_names", "TERMS_PATH"]

TERMS_PATH = "reward.terms"


class ParamSpec(BaseModel):
    """One search dimension: ``{low, high[, log, step, type: int]}`` or ``{choices: [...]}``."""

    model_config = ConfigDict(extra="forbid")

    low: float | None = None
    """lower bound (inclusive)"""
    high: float | None = None
    """upper bound (inclusive)"""
    log: bool = False
    """sample on a log scale (both bounds > 0), e.g. for weights spanning decades"""
    step: float | None = None
    """discretisation step of a numeric dimension"""
    type: Literal["float", "int"] = "float"
    """``int`` samples integers between ``low`` and ``high``"""
    choices: list[Any] | None = None
    """categorical values (numbers, strings, or lists such as term-name lists)"""
    when: dict[str, Any] | None = None
    """sample only if these earlier dimensions (or config values) have these values"""

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            if not self.choices:
                raise ValueError("choices must not be empty")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a numeric dimension needs both low and high (or use choices: [...])")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("log scale and step cannot be combined (Optuna samples one or the other)")
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(f"type int needs integer bounds, got {self.low}..{self.high}")
        return self

    @property
    def kind(self) -> str:
        return "categorical" if self.choices is not None else self.type


class SweepConfig(BaseModel):
    """The ``sweep:`` section. The objective is fixed: maximise the unshaped evaluation return."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, ParamSpec]
    """search space: config key path -> dimension"""
    n_trials: int = Field(20, ge=1)
    """trials to finish in total, over all workers and machines (``--trials`` overrides)"""
    seeds_per_trial: int | None = Field(None, ge=1)
    """seeds 0..k-1 per trial, objective = their mean (default: the experiment's train.seeds)"""
    batch: int = Field(1, ge=1)
    """trials trained together in one compiled program (agents such as ``jax_ppo``): each worker asks
    for ``batch`` trials and trains them as reward variants side by side; only numeric reward
    parameters (``reward.terms.<name>.weight`` / ``.params.<field>``) can be swept, and trials are
    not pruned (see docs/sweeps.md)"""
    sampler: Literal["tpe", "random", "cmaes"] = "tpe"
    """TPE (default), random search, or CMA-ES (all-numeric, unconditional spaces only)"""
    pruner: Literal["median", "hyperband", "none"] = "median"
    """stop unpromising trials early from their periodic evaluations"""
    n_startup_trials: int = Field(5, ge=0)
    """random trials before TPE models the space; trials finished before the pruner prunes"""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """seed of the sampler (reproducible with one worker)"""
    study: str | None = None
    """study name (default: the experiment's name; ``--study`` overrides)"""
    storage: str | None = None
    """Optuna storage URL (default: SQLite in the sweep directory; ``--storage`` overrides)"""
    dir: str | None = None
    """sweep directory: trial runs, SQLite file, reports (default: ``<log.dir>/sweeps/<study>``)"""
    heartbeat_interval: int = Field(10, ge=1)
    """seconds between a running trial's heartbeats"""
    grace_period: int | None = Field(None, ge=1)
    """seconds without heartbeat before a trial counts as killed and is retried (default 3×interval)"""
    max_retry: int = Field(2, ge=0)
    """how often a killed trial is retried (resuming its run directory) before it is given up"""

    @model_validator(mode="before")
    @classmethod
    def _fixed_objective(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("direction", "objective", "metric"):
                if key in data:
                    raise ValueError(f"{key!r} cannot be set: a sweep always maximises the unshaped evaluation "
                                     "return (mean over seeds), never the shaped one")
        return data

    @model_validator(mode="after")
    def _has_params(self) -> SweepConfig:
        if not self.params:
            raise ValueError("params must list at least one dimension, e.g. {reward.terms.potential.weight: "
                             "{low: 0.0, high: 2.0}}")
        return self


def choice_label(value: Any) -> Any:
    """Optuna categoricals hold None/bool/int/float/str; a list or mapping becomes its YAML flow text.

    >>> choice_label(["env", "potential"]), choice_label(0.5)
    ('[env, potential]', 0.5)
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


def check_space(sweep: SweepConfig, base: dict[str, Any]) -> None:
    """Catch mistakes before any trial runs: a dimension under ``reward.terms.<name>`` whose term
    is in neither the experiment nor any term choice (a typo would never be sampled), ``when``
    on a later dimension, and CMA-ES on a categorical or conditional space.
    """
    names = set(term_names(base))
    for choice in (sweep.params[TERMS_PATH].choices or []) if TERMS_PATH in sweep.params else []:
        names |= {list_item_name(t) for t in choice} if isinstance(choice, list) else set()
    order = list(sweep.params)
    for i, (path, spec) in enumerate(sweep.params.items()):
        if path.startswith(TERMS_PATH + "."):
            name = path[len(TERMS_PATH) + 1:].split(".")[0]
            if not name.lstrip("-").isdigit() and name not in names:
                raise ConfigError(f"sweep.params.{path}: no reward term named {name!r} in reward.terms or in the "
                                  f"reward.terms choices (terms: {sorted(n for n in names if n)})")
        for cond in spec.when or {}:
            if cond in sweep.params and order.index(cond) > i:
                raise ConfigError(f"sweep.params.{path}: when refers to {cond!r}, which comes later; "
                                  "list the condition's dimension first")
    if sweep.sampler == "cmaes":
        bad = [p for p, s in sweep.params.items() if s.kind == "categorical" or s.when]
        if bad:
            raise ConfigError(f"sweep.sampler cmaes needs numeric, unconditional dimensions; not: {bad} "
                              "(use sampler: tpe or random)")


def get_path(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list):
            found = [x for x in node if list_item_name(x) == key]
            node = node[int(key)] if key.lstrip("-").isdigit() and abs(int(key)) < len(node) else (
                found[0] if found else None)
        else:
            return None
    return node


def term_names(data: dict[str, Any]) -> list[str]:
    terms = get_path(data, TERMS_PATH)
    return [n for n in (list_item_name(t) for t in terms or []) if n]


