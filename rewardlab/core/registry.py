"""Name registries: YAML builds terms, potentials, envs and agents from these names.

The built-in names come from **manifests**: every ``rewardlab`` subpackage may have a
``manifest.py`` of plain data, one mapping per registry (``TERMS = {"env":
"rewardlab.shaping.basic:EnvReward"}``), and a registry created with ``manifest="TERMS"``
reads the entries under that key from all of them on first use. An entry is a lazy
``"package.module:attr"`` string, imported on first ``get`` so heavy families (nle, jax,
alfworld) stay optional, or a list ``["package.module:factory", arg, ...]``: the factory with
its first arguments bound (``["rewardlab.envs.minihack:make_minihack", "Room-5x5"]``). So a
lookup works right after ``import rewardlab``, and ``core`` names no module of a layer above.
User code adds names with ``register`` (or the ``register_term``-style decorators); duplicate
names, with each other or with a manifest, are refused.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from rewardlab.errors import RewardLabError, UnknownNameError

__all__ = ["Registry", "load_attr", "manifest_modules", "manifest_entries", "describe_params", "lazy_exports"]

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


@functools.cache
def manifest_modules() -> tuple[ModuleType, ...]:
    """The ``rewardlab.<package>.manifest`` modules, in package-name order (imported once)."""
    root = Path(__file__).resolve().parents[1]  # the rewardlab package directory
    found = []
    for info in sorted(pkgutil.iter_modules([str(root)]), key=lambda m: m.name):
        if info.ispkg and (root / info.name / "manifest.py").is_file():
            found.append(importlib.import_module(f"rewardlab.{info.name}.manifest"))
    return tuple(found)


def manifest_entries(key: str) -> dict[str, Any]:
    """All manifests' entries under ``key``; a name declared by two manifests is an error."""
    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for module in manifest_modules():
        for name, entry in getattr(module, key, {}).items():
            if name in out:
                raise RewardLabError(f"{key} name {name!r} is declared by both {owner[name]} and {module.__name__}")
            out[name], owner[name] = entry, module.__name__
    return out


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` that import ``name`` from the submodule
    ``exports[name]`` on first use, so ``import package.light_module`` does not import the heavy
    ones (torch) the other names need.

    >>> getattr_, dir_ = lazy_exports("json", {"JSONEncoder": "encoder"})
    >>> getattr_("JSONEncoder").__module__
    'json.encoder'
    """
    import sys

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        vars(sys.modules[package])[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__


def describe_params(obj: Any) -> list[str]:
    """The keyword parameters of a registered class or factory, as ``name: type = default`` texts
    (generated from the signature, so listings and docs cannot drift from the code). Fields a
    params class lists in ``REFUSED`` (inherited ones its agent does not take) are left out.

    >>> def f(task, *, value: float = 0.01, key: str): ...
    >>> describe_params(functools.partial(f, "Room-5x5"))
    ['value: float = 0.01', 'key: str']
    """
    import inspect

    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    refused = getattr(obj, "REFUSED", {})
    out = []
    for p in sig.parameters.values():
        if p.name in refused:
            continue
        if p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")  # passed on (e.g. to the underlying Gymnasium env)
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
            continue
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        text = p.name + (f": {ann}" if p.annotation is not p.empty and ann else "")
        out.append(text + ("" if p.default is p.empty else f" = {p.default!r}"))
    return out


def _load_entry(entry: Any) -> Any:
    if isinstance(entry, str):
        return load_attr(entry)
    if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], str):
        return functools.partial(load_attr(entry[0]), *entry[1:])
    raise RewardLabError(f"a manifest entry must be 'package.module:attr' or ['package.module:attr', arg, ...], "
                         f"got {entry!r}")


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

    def __init__(self, kind: str, *, manifest: str | None = None):
        self.kind = kind
        self.manifest = manifest
        self._values: dict[str, T] = {}
        self._lazy: dict[str, Any] = {}
        self._manifest_loaded = manifest is None

    def _load_manifest(self) -> None:
        # Before any lookup or registration: a user name that clashes with a built-in one
        # fails at its registration, not later at some lookup.
        if self._manifest_loaded:
            return
        self._manifest_loaded = True
        for name, entry in manifest_entries(self.manifest).items():  # type: ignore[arg-type]
            if name in self._values or name in self._lazy:
                raise RewardLabError(f"duplicate registration for {self.kind} {name!r} (also in a manifest)")
            self._lazy[name] = entry

    def register(self, name: str, *, value: T | None = None, indirect: str | None = None) -> None:
        """Add ``name``: exactly one of a ``value`` or an ``indirect`` ``"package.module:attr"`` path."""
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
        """The object registered as ``name`` (imported on first use); unknown names list the valid ones."""
        self._load_manifest()
        if name in self._values:
            return self._values[name]
        if name in self._lazy:
            # Load before removing the lazy entry: a failed import must fail the same way
            # next time, not turn the name into an "unknown" one.
            value = _load_entry(self._lazy[name])
            del self._lazy[name]
            self._values[name] = value  # type: ignore[assignment]
            return value  # type: ignore[return-value]
        raise UnknownNameError(self.kind, name, self.names())

    def unregister(self, name: str) -> None:
        """Remove an entry (tests register temporary names and clean up)."""
        self._values.pop(name, None)
        self._lazy.pop(name, None)

    def names(self) -> list[str]:
        """All registered names, sorted (manifest entries included, none imported)."""
        self._load_manifest()
        return sorted({*self._values, *self._lazy})

    def __contains__(self, name: object) -> bool:
        self._load_manifest()
        return name in self._values or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
