"""Name registries: YAML builds terms, potentials, envs and agents from these names.

Entries are either a value or a lazy ``"package.module:attr"`` string, imported on first
``get`` so heavy families (nle, jax, alfworld) stay optional. Duplicate names are refused.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from rewardlab.errors import RewardLabError, UnknownNameError

__all__ = ["Registry", "load_attr"]

T = TypeVar("T")


def load_attr(path: str) -> object:
    """Import ``"package.module:attr"`` and return the attribute, with a clear error."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise RewardLabError(f"import path {path!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RewardLabError(f"cannot import {module_name!r} for {path!r}: {e}") from e
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as e:
        raise RewardLabError(f"module {module_name!r} has no attribute {attr!r}") from e
    return obj


class Registry(Generic[T]):
    """A name → object map with lazy entries and helpful unknown-name errors.

    >>> r = Registry("widget")
    >>> r.register("a", value=1)
    >>> r.get("a")
    1
    >>> r.get("b")
    Traceback (most recent call last):
    ...
    rewardlab.errors.UnknownNameError: unknown widget 'b'. Valid widgets: a
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._values: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str, *, value: T | None = None, indirect: str | None = None) -> None:
        if (value is None) == (indirect is None):
            raise ValueError("register() needs exactly one of 'value' and 'indirect'")
        if name in self:
            raise RewardLabError(f"duplicate registration for {self.kind} {name!r}")
        if value is not None:
            self._values[name] = value
        else:
            self._lazy[name] = indirect  # type: ignore[assignment]

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def wrap(obj: T) -> T:
            self.register(name, value=obj)
            return obj

        return wrap

    def get(self, name: str) -> T:
        if name in self._values:
            return self._values[name]
        if name in self._lazy:
            # Load before removing the lazy entry: a failed import must fail the same way
            # next time, not turn the name into an "unknown" one.
            value = load_attr(self._lazy[name])
            del self._lazy[name]
            self._values[name] = value  # type: ignore[assignment]
            return value  # type: ignore[return-value]
        raise UnknownNameError(self.kind, name, self.names())

    def unregister(self, name: str) -> None:
        """Remove an entry (tests register temporary names and clean up)."""
        self._values.pop(name, None)
        self._lazy.pop(name, None)

    def names(self) -> list[str]:
        return sorted({*self._values, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._values or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
