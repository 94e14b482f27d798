"""``--set`` overrides on a raw experiment mapping: key paths, list items selected by name.

``apply_overrides(data, ["a.b=c"])`` (values parsed as YAML), ``set_path`` (one path, in place),
``list_item_name`` (the name a list item is selected by).
"""

from __future__ import annotations

import copy
from typing import Any

from rewardlab.config.loader import MalformedYAML, load_yaml
from rewardlab.errors import ConfigError

__all__ = ["apply_overrides", "set_path", "list_item_name", "parse_value"]


def parse_value(text: str) -> Any:
    """An override's value parsed as YAML (bounded like a file: ``rewardlab.config.loader``); text
    that is not YAML is taken as a string."""
    try:
        return load_yaml(text, "--set value")
    except MalformedYAML:
        return text


def set_path(data: dict[str, Any], path: str, value: Any, *, what: str = "--set") -> None:
    """Set ``a.b.c`` in a raw config mapping, in place. In lists, a key that is not an index
    selects the element with that ``name``/``as`` (``reward.terms.potential.weight``); missing
    sections are created. ``what`` prefixes error messages (``--set``, ``sweep.params``).
    """
    keys = path.split(".")
    if not path or any(not k for k in keys):
        raise ConfigError(f"{what}: malformed key path {path!r}")
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            idx = _list_index(node, key, where, what)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise ConfigError(f"{what} {path}: {'.'.join(keys[:depth])} is a value, not a section")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides (values parsed as YAML) to a copy of ``data``; see ``set_path``.

    >>> apply_overrides({"reward": {"terms": [{"name": "env"}, "potential"]}},
    ...                 ["reward.terms.potential.weight=0.5"])["reward"]["terms"][1]
    {'name': 'potential', 'weight': 0.5}
    """
    data = copy.deepcopy(data)
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        set_path(data, path, parse_value(raw))
    return data


def list_item_name(item: Any) -> str | None:
    """The name a list item is selected by: its ``as``, else its ``name`` (or the bare string)."""
    if isinstance(item, dict):
        return item.get("as") or item.get("name")
    return item if isinstance(item, str) else None


def _list_index(node: list, key: str, where: str, what: str) -> int:
    if key.lstrip("-").isdigit():
        idx = int(key)
        if not -len(node) <= idx < len(node):
            raise ConfigError(f"{what} {where}: index {idx} out of range (list has {len(node)} items)")
        return idx
    for i, item in enumerate(node):
        if list_item_name(item) == key:
            if isinstance(item, str):
                node[i] = {"name": item}
            return i
    names = [list_item_name(x) for x in node if list_item_name(x)]
    raise ConfigError(f"{what} {where}: no list item named {key!r}; items: {names}")
