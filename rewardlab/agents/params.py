"""Typed agent parameters: every agent declares a params model, and YAML ``agent.params`` goes
through one validation path before anything is built or written.

- ``InvalidParam``: a model field outside its allowed values (``field``, ``value``, ``allowed``);
- ``check_fields``: what the dataclass models' ``__post_init__`` runs (one check per field);
- ``params_from_dict(model, params, agent=...)``: the model filled from a params mapping; unknown
  or refused keys and bad values become a ``ConfigError`` naming ``agent.params.<field>``;
- ``validate_agent_params(agent_name, params)``: the same for a registered agent, whose model
  is declared in the ``AGENT_PARAMS`` mapping of a package manifest (``agents/manifest.py``).

A model is a dataclass whose ``__post_init__`` checks every field (raising ``InvalidParam``);
a ``REFUSED`` class attribute ``{field: reason}`` lists inherited fields the agent does not take.
An agent whose parameters are not a dataclass (SB3's constructor keywords) declares a function
``validate(params) -> object`` instead. This module imports neither torch nor any agent.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     n_steps: int = 8
...     def __post_init__(self):
...         check_fields(self, [("n_steps", is_int(self.n_steps) and self.n_steps >= 1, "an integer >= 1")])
>>> params_from_dict(Demo, {"n_steps": 4}, agent="demo")
Demo(n_steps=4)
>>> params_from_dict(Demo, {"n_step": 4}, agent="demo")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
rewardlab.errors.ConfigError: agent.params.n_step: unknown parameter for agent 'demo'. Did you mean 'n_steps'? ...
>>> params_from_dict(Demo, {"n_steps": -3}, agent="demo")
Traceback (most recent call last):
...
rewardlab.errors.ConfigError: agent.params.n_steps: -3 is invalid for agent 'demo'; allowed: an integer >= 1
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.errors import ConfigError, InvalidArgument

__all__ = ["InvalidParam", "check_fields", "is_int", "is_num", "model_fields", "params_from_dict",
           "validate_agent_params", "agent_params_model"]


class InvalidParam(InvalidArgument):
    """A params-model field outside its allowed values."""

    def __init__(self, model: str, field: str, value: Any, allowed: str):
        super().__init__(f"{model}.{field} = {value!r} is invalid; allowed: {allowed}")
        self.model, self.field, self.value, self.allowed = model, field, value, allowed


def is_int(x: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_num(x: Any) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)


def check_fields(obj: Any, checks: Sequence[tuple[str, bool, str]]) -> None:
    """Raise ``InvalidParam`` for the first ``(field, ok, allowed)`` whose ``ok`` is false."""
    for name, ok, allowed in checks:
        if not ok:
            raise InvalidParam(type(obj).__name__, name, getattr(obj, name), allowed)


def model_fields(model: type) -> list[str]:
    """The parameters a dataclass model takes: its fields minus ``REFUSED`` ones."""
    refused = getattr(model, "REFUSED", {})
    return [f.name for f in dataclasses.fields(model) if f.init and f.name not in refused]


def params_from_dict(model: type, params: Mapping[str, Any] | None, *, agent: str) -> Any:
    """``model(**params)``, with every problem a ``ConfigError`` that names the field."""
    params = dict(params or {})
    valid = model_fields(model)
    refused = getattr(model, "REFUSED", {})
    for key in params:
        if key in refused:
            raise ConfigError(f"agent.params.{key}: not a parameter of agent {agent!r} ({refused[key]})")
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"agent.params.{key}: unknown parameter for agent {agent!r}.{hint} "
                              f"Valid: {', '.join(valid)}")
    try:
        return model(**params)
    except InvalidParam as e:
        raise ConfigError(f"agent.params.{e.field}: {e.value!r} is invalid for agent {agent!r}; "
                          f"allowed: {e.allowed}") from e
    except (InvalidArgument, TypeError, ValueError) as e:  # a check spanning fields, or a type none anticipated
        raise ConfigError(f"agent.params for agent {agent!r}: {e}") from e


def agent_params_model(agent_name: str) -> Any:
    """The params model (a dataclass) or validate function the agent declares, or None."""
    from rewardlab.core.registry import load_attr, manifest_entries

    path = manifest_entries("AGENT_PARAMS").get(agent_name)
    return None if path is None else load_attr(path)


def validate_agent_params(agent_name: str, params: Mapping[str, Any] | None) -> Any:
    """The validated parameters of the registered agent ``agent_name`` (its params model
    filled from ``params``), or a ``ConfigError`` naming ``agent.params.<field>``.

    An agent that declares no model (a user's own) gets ``params`` back unchecked.

    >>> validate_agent_params("ppo", {"n_steps": 64}).n_steps
    64
    >>> validate_agent_params("ppo", {"lerning_rate": 1e-3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.lerning_rate: unknown parameter for agent 'ppo'. Did you mean ...
    """
    model = agent_params_model(agent_name)
    if model is None:
        return dict(params or {})
    if dataclasses.is_dataclass(model) and isinstance(model, type):
        return params_from_dict(model, params, agent=agent_name)
    return model(dict(params or {}))
