"""Reading experiment files safely: bytes to text to YAML to plain data, each step bounded.

- ``read_text(path)``: the file's text; refuses files larger than ``MAX_FILE_BYTES`` without
  reading them, and bytes that are not UTF-8 text (UTF-16/32, Latin-1, binary) with a message
  that says what the file looks like and where the first bad byte is.
- ``load_yaml(text, source)``: the YAML document, parsed by a first pass over the parser's
  events that refuses, before anything is built, nesting deeper than ``MAX_DEPTH`` and more
  than ``MAX_NODES`` values *after alias expansion* (a "billion laughs" alias bomb is a few
  hundred bytes that expand to 10⁹ values) and aliases that refer to themselves.
- ``check_plain_data(data)``: only ``null``, booleans, numbers, strings, lists and string-keyed
  mappings, with every float finite and every integer inside 64 bits; the message names the
  field (``env.kwargs.a.1``).
- ``load_file(path)``: all three.

Every ``ConfigError`` here is plain text; the CLI prints messages without interpreting markup.
"""

from __future__ import annotations

import codecs
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rewardlab.config.limits import INT64, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from rewardlab.errors import ConfigError

__all__ = ["MAX_FILE_BYTES", "MAX_DEPTH", "MAX_NODES", "MalformedYAML", "read_text", "decode", "load_yaml",
           "check_plain_data", "load_file", "short_repr"]


class MalformedYAML(ConfigError):
    """Text that is not valid YAML (``--set`` then takes the value as a plain string)."""


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_FIX = "experiment files must be UTF-8 text (re-save it as UTF-8)"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: fast, same results


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (messages quote user values, which may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_text(path: str | Path) -> str:
    """The UTF-8 text of an experiment file (a UTF-8 byte-order mark is dropped)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"experiment file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"{path} is not a regular file (an experiment file is a YAML text file)")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{path} is {size / 2**20:.1f} MiB, larger than {MAX_FILE_BYTES // 1024} KiB: not an "
                          "experiment file (they are a few KB)")
    with path.open("rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)  # the file may grow after stat()
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB: not an experiment file")
    return decode(raw, str(path))


def decode(raw: bytes, source: str) -> str:
    """``raw`` as UTF-8 text, or a ``ConfigError`` saying what the bytes look like."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    for bom, name in _WIDE_BOMS:
        if raw.startswith(bom):
            raise ConfigError(f"{source} is {name} text; {_FIX}")
    head = raw[:4096]
    controls = sum(b < 32 and b not in (9, 10, 13) for b in head)
    if b"\x00" in head and controls <= len(head) // 2 and (head[0::2].count(0) > len(head) // 3
                                                           or head[1::2].count(0) > len(head) // 3):
        raise ConfigError(f"{source} has NUL bytes between its characters: UTF-16 or UTF-32 text without a "
                          f"byte-order mark? {_FIX}")
    if controls > max(8, len(head) // 100):
        raise ConfigError(f"{source} is not a text file ({controls} control bytes in its first "
                          f"{len(head)}): binary data? {_FIX}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        hint = ""
        try:
            raw.decode("cp1252")
            hint = " It looks like Latin-1/Windows-1252 text."
        except UnicodeDecodeError:
            pass
        raise ConfigError(f"{source} is not UTF-8: byte 0x{raw[e.start]:02x} at line {line}, column {column}."
                          f"{hint} {_FIX}") from None


def _where(event: Any) -> str:
    mark = getattr(event, "start_mark", None) or getattr(event, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


class _Open:
    """A collection being parsed: its anchor, expanded size and depth so far, and its position."""

    __slots__ = ("anchor", "size", "depth", "mapping", "count", "key")

    def __init__(self, anchor: str | None, mapping: bool):
        self.anchor, self.mapping = anchor, mapping
        self.size = self.depth = self.count = 0
        self.key = "?"


def _path(stack: list[_Open]) -> str:
    parts = [(c.key if c.count % 2 else "?") if c.mapping else str(c.count) for c in stack]
    return ".".join(parts[:8]) + (".…" if len(parts) > 8 else "") if parts else "(top level)"


def _check_events(text: str, source: str) -> None:
    """One pass over the parser's events: bounded depth and expanded size, no self-reference; a
    message names the source, the key path and the line."""
    stack: list[_Open] = []
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> (expanded size, depth) of a closed node
    open_anchors: set[str] = set()
    total = 0

    def too_deep(event: Any) -> ConfigError:
        return ConfigError(f"{source}: {_path(stack)}: values nested more than {MAX_DEPTH} levels deep{_where(event)}")

    def add(size: int, depth: int, event: Any) -> None:
        nonlocal total
        if len(stack) + depth > MAX_DEPTH:
            raise too_deep(event)
        if stack:
            top = stack[-1]
            top.size += size
            top.depth = max(top.depth, depth)
            if top.mapping and top.count % 2 == 0:  # a key
                top.key = str(event.value)[:40] if isinstance(event, yaml.ScalarEvent) else "?"
        else:
            total += size
        if total + sum(c.size for c in stack) > MAX_NODES:
            via = " (through YAML aliases *name)" if isinstance(event, yaml.AliasEvent) or anchored else ""
            raise ConfigError(f"{source}: {_path(stack)}: more than {MAX_NODES:,} values{via}{_where(event)}; an "
                              "experiment file has a few hundred (alias bombs expand a short file to billions)")
        if stack:
            stack[-1].count += 1

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(stack) + 1 > MAX_DEPTH:
                    raise too_deep(event)
                stack.append(_Open(event.anchor, isinstance(event, yaml.MappingStartEvent)))
                if event.anchor:
                    open_anchors.add(event.anchor)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                done = stack.pop()
                if done.anchor:
                    open_anchors.discard(done.anchor)
                    anchored[done.anchor] = (done.size + 1, done.depth + 1)
                add(done.size + 1, done.depth + 1, event)
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor:
                    anchored[event.anchor] = (1, 0)
                add(1, 0, event)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise ConfigError(f"{source}: {_path(stack)}: the YAML alias *{event.anchor} refers to "
                                      f"itself{_where(event)}")
                if event.anchor in anchored:  # an undefined alias: the loader reports it
                    add(*anchored[event.anchor], event)
    except yaml.YAMLError as e:
        if "nesting depth" in str(getattr(e, "problem", "")):  # libyaml's own bound (1,000 flow levels)
            raise too_deep(e) from None
        return  # malformed: ``load_yaml`` reports it with its line and column


def load_yaml(text: str, source: str = "<config>") -> Any:
    """The YAML document in ``text`` (bounded: see the module docstring)."""
    _check_events(text, source)
    try:
        return yaml.load(text, Loader=_Loader)  # a safe loader: CSafeLoader or SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise MalformedYAML(f"malformed YAML in {source}{where}: {problem}") from None
    except (RecursionError, MemoryError) as e:  # not expected after the bounds above
        raise ConfigError(f"{source}: the YAML document is too large or too deep ({type(e).__name__})") from None


_NAMES = {"date": "a date", "datetime": "a date and time", "bytes": "bytes (!!binary)", "set": "a set (!!set)"}


def check_plain_data(data: Any, path: str = "", *, types: bool = True) -> None:
    """Refuse anything but plain, finite data; the message names the field (``a.b.0``).

    With ``types=False`` only numbers are checked (every float finite, every integer inside 64
    bits) and other objects pass: for mappings built in Python rather than read from a file.
    """
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        label = where or "(top level)"
        if value is None or isinstance(value, (bool, np.bool_, str)):
            continue
        if isinstance(value, numbers.Integral):
            if not INT64[0] <= int(value) <= INT64[1]:
                raise ConfigError(f"{label}: {short_repr(value, 40)} does not fit a 64-bit integer")
        elif isinstance(value, numbers.Real):
            if not math.isfinite(value):
                raise ConfigError(f"{label}: {float(value)} is not a finite number (NaN and infinities are refused; "
                                  "use a large finite bound such as 1e9)")
        elif isinstance(value, dict):
            for k, v in value.items():
                if types and not isinstance(k, str):
                    raise ConfigError(f"{label}: the key {short_repr(k, 40)} is not a string (YAML reads yes/no/on/"
                                      "off as booleans and bare numbers as numbers: quote the key)")
                stack.append((f"{where}.{k}" if where else str(k), v))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(value))
        elif types:
            kind = _NAMES.get(type(value).__name__, type(value).__name__)
            raise ConfigError(f"{label}: {kind} is not allowed; values are null, booleans, numbers, strings, "
                              "lists and mappings (quote it to make it a string)")


def load_file(path: str | Path) -> Any:
    """Read, parse and check an experiment file; ``None`` for an empty document."""
    data = load_yaml(read_text(path), str(path))
    check_plain_data(data)
    return data
