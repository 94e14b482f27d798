"""``env.kwargs`` and reward-term ``params`` checked against signatures before anything is built.

- ``check_env_kwargs(env_id, kwargs)``: an unknown keyword (when the factory takes no
  ``**kwargs``) or a value of the wrong type for an annotated parameter is a ``ConfigError``
  naming ``env.kwargs.<key>``, the value and what is allowed. A registered env is checked
  against its family factory; a Gymnasium id against its entry point plus ``gym.make``'s own
  keywords (``max_episode_steps``, ``disable_env_checker``).
- ``check_term_params(index, name, params)``: the same for a reward term's constructor
  (``reward.terms.<i>.params.<key>``).

Keywords a factory passes on through ``**kwargs``, and value ranges, can only be checked by
building the object:
- ``build_error(env_id, kwargs, exc)``: what a failure while building the env becomes — a
  ``ConfigError`` naming ``env.kwargs`` (and the key, for an unexpected keyword) when the file
  gave kwargs, the exception itself otherwise.

Annotations the check does not understand (a class, a callable, ``Any``) accept any value.
"""

from __future__ import annotations

import collections.abc as cabc
import difflib
import inspect
import re
import types
import typing
from typing import Any

from rewardlab.config.loader import short_repr
from rewardlab.errors import ConfigError, InvalidArgument, RewardLabError

__all__ = ["check_env_kwargs", "check_term_params", "env_signature", "build_error", "type_text", "matches"]

_GYM_MAKE = ("max_episode_steps", "disable_env_checker")
_SEQUENCES = (list, tuple, cabc.Sequence, cabc.MutableSequence, cabc.Collection, cabc.Iterable)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def _hints(fn: Any) -> dict[str, Any]:
    target = fn.func if hasattr(fn, "func") else fn  # functools.partial
    if isinstance(target, type):
        target = target.__init__
    try:
        return typing.get_type_hints(target)
    except Exception:  # an annotation that names something not importable here: no type checks
        return {}


def env_signature(env_id: str) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool] | None:
    """``(parameters, type hints, takes **kwargs)`` of the factory behind ``env_id``, or None
    when it cannot be inspected (an optional family that is not installed)."""
    import gymnasium as gym

    from rewardlab.envs import ENVS

    extra: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    try:
        if env_id in ENVS:
            factory = ENVS.get(env_id)
        else:
            from gymnasium.envs.registration import load_env_creator

            spec = gym.spec(env_id)
            factory = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
            make_sig = inspect.signature(gym.make)
            make_hints = _hints(gym.make)
            for name in _GYM_MAKE:
                extra[name] = make_sig.parameters[name]
                if name in make_hints:
                    hints[name] = make_hints[name]
        sig = inspect.signature(factory)
    except (RewardLabError, ImportError, AttributeError, TypeError, ValueError, gym.error.Error):
        return None
    params = {n: p for n, p in sig.parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    hints = {**_hints(factory), **hints}
    return {**params, **extra}, hints, var_kw


def type_text(tp: Any) -> str:
    """A readable form of an annotation: ``int | None``, ``one of 'a', 'b'``, ``list[str]``."""
    if tp is type(None) or tp is None:
        return "None"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and origin is None:
        return tp.__name__
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


def matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` (plain YAML data) fits the annotation ``tp``; True when unsure."""
    if tp is Any or tp is inspect.Parameter.empty or isinstance(tp, (str, typing.TypeVar)):
        return True
    if tp is type(None) or tp is None:
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    base = origin or tp
    if base in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if base is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(matches(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(matches(v, args[0]) for v in value)
    if base in _MAPPINGS:
        return isinstance(value, dict)
    return True  # a class (Path, a backend object ...) or a callable: not checkable from data


def _check(given: dict[str, Any], params: dict[str, inspect.Parameter], hints: dict[str, Any], var_kw: bool,
           field: str, owner: str) -> None:
    for key, value in given.items():
        p = params.get(key)
        if p is None:
            if var_kw:
                continue
            valid = list(params)
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            if owner.startswith("reward term"):  # the wording of rewardlab.core.terms.build_term
                raise ConfigError(f"{field}.{key}: {owner} has no parameter {key!r};{hint} "
                                  f"valid parameters: {', '.join(valid) or '(none)'}")
            raise ConfigError(f"{field}.{key}: unknown keyword argument of {owner};{hint} "
                              f"valid: {', '.join(valid) or '(none)'}")
        tp = hints.get(key, p.annotation)
        if value is None and p.default is None:
            continue
        if not matches(value, tp):
            raise ConfigError(f"{field}.{key}: {short_repr(value)} is not {type_text(tp)} (a keyword argument of "
                              f"{owner})")


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Refuse unknown or wrongly typed ``env.kwargs`` of ``env_id`` (see the module docstring)."""
    if not kwargs:
        return
    found = env_signature(env_id)
    if found is not None:
        _check(kwargs, *found, "env.kwargs", f"env {env_id!r}")


def check_term_params(index: int, name: str, params: dict[str, Any]) -> None:
    """Refuse unknown or wrongly typed ``params`` of the registered term ``name``, the
    ``index``-th of ``reward.terms`` (see the module docstring)."""
    if not params:
        return
    from rewardlab.core.terms import TERMS

    try:
        cls = TERMS.get(name)
        sig = inspect.signature(cls)
    except (RewardLabError, ImportError, TypeError, ValueError):
        return  # reported when the term is built
    params_ = {n: p for n, p in sig.parameters.items()
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    _check(params, params_, _hints(cls), var_kw, f"reward.terms.{index}.params", f"reward term {name!r}")


def build_error(env_id: str, kwargs: dict[str, Any], exc: BaseException) -> BaseException:
    """What a failure to build ``env_id`` with ``kwargs`` is reported as (see the module docstring)."""
    if not kwargs or not isinstance(exc, Exception) or (
            isinstance(exc, RewardLabError) and not isinstance(exc, InvalidArgument)):
        return exc
    m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    field = f"env.kwargs.{m.group(1)}" if m and m.group(1) in kwargs else "env.kwargs"
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return ConfigError(f"{field}: env {env_id!r} could not be built with {short_repr(kwargs)}: "
                       f"{type(exc).__name__}: {first}")
