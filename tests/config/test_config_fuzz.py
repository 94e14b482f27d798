"""Property-based fuzzing of ``rewardlab check`` (issue #23): the repository's experiment files,
mutated — values, types, keys, nesting, encodings, bytes, alias bombs, rich markup — never give a
traceback or a hang: ``check`` exits 0 (the mutation is valid) or 2 with one ``error:`` message,
which for a mutation of a field names the field (or its section).

Every example runs in this process under a watchdog (``signal.setitimer``); the Hypothesis
deadline is off because the first ``check`` of an env family imports it (seconds), the watchdog
is what catches a hang. ``max_examples`` keeps the test near 30 s on two cores.
"""

from __future__ import annotations

import contextlib
import copy
import io
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
# Brax (JAX compiles for ~30 s) and the SWE sandbox (its own suite) are left out.
FILES = sorted(p for p in (ROOT / "experiments").glob("*.yaml") if not p.name.startswith(("ild_brax", "oprl_swe")))
DOCS = {p.name: yaml.safe_load(p.read_text()) for p in FILES}
TEXTS = {p.name: p.read_text() for p in FILES}
HANG_SECONDS = 30

MARKUP = ["[bold]x[/b]", "[/]", "x[/red]y", "[link=file:///etc/passwd]a[/link]", ":warning:", "[red]", "\\[x]",
          "[/x]", "[", "]"]
PATHS = ["../escape", "a/b", "..", ".", "/abs", "x" * 300, "\x00", "\u202e", "é"]
NAMES = ["CartPole-v1", "env", "ppo", "sb3_ppo", "pg", "potential", "minihack/Room-5x5", "toy/GridWorld-v0"]
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 10**12 + 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e39, -1e39, 3.5e38, 1e-320, -0.0]),
    st.text(max_size=12), st.sampled_from(MARKUP + PATHS + NAMES),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(MARKUP)), inner, max_size=4)), max_leaves=8)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a document (mappings and lists)."""
    out = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out += paths(v, (*prefix, k))
    return out


def parent_of(doc: Any, path: tuple) -> Any:
    node = doc
    for k in path[:-1]:
        node = node[k]
    return node


def _bomb() -> str:
    lines = ['b0: &b0 ["lol"]'] + [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw) -> tuple[bytes, tuple | None]:
    """A mutated experiment file and the key path it changed (None for a text-level mutation)."""
    name = draw(st.sampled_from(sorted(DOCS)))
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "rename", "add", "wrap", "deep",
                                 "text"]))
    if kind == "text":
        text = TEXTS[name]
        how = draw(st.sampled_from(["utf16", "utf32", "latin1", "bom", "insert", "truncate", "flip", "bomb",
                                    "markup", "tab", "anchor"]))
        pos = draw(st.integers(0, len(text)))
        if how == "utf16":
            return text.encode("utf-16"), None
        if how == "utf32":
            return text.encode("utf-32"), None
        if how == "latin1":
            return (text + "description: café\n").encode("latin-1", errors="replace"), None
        if how == "bom":
            return b"\xef\xbb\xbf" + text.encode(), None
        if how == "insert":
            return text[:pos].encode() + draw(st.binary(min_size=1, max_size=8)) + text[pos:].encode(), None
        if how == "truncate":
            return text[:pos].encode(), None
        if how == "flip":
            raw = bytearray(text.encode())
            raw[min(pos, len(raw) - 1)] = draw(st.integers(0, 255))
            return bytes(raw), None
        if how == "bomb":
            return (_bomb() + text).encode() if draw(st.booleans()) else (
                text + "description:\n  " + _bomb().replace("\n", "\n  ")).encode(), None
        if how == "markup":
            return (text + f"description: {yaml.safe_dump(draw(st.sampled_from(MARKUP))).splitlines()[0]}\n"
                    ).encode(), None
        if how == "tab":
            return (text[:pos] + "\t" + text[pos:]).encode(), None
        return (text[:pos] + "&a " + text[pos:]).encode(), None
    doc = copy.deepcopy(DOCS[name])
    path = draw(st.sampled_from(paths(doc)))
    parent, key = parent_of(doc, path), path[-1]
    if kind == "replace":
        parent[key] = draw(VALUES)
    elif kind == "delete":
        del parent[key]
    elif kind == "rename" and isinstance(parent, dict):
        new = draw(st.one_of(st.text(max_size=10), st.sampled_from(MARKUP)))
        parent[new] = parent.pop(key)
        path = (*path[:-1], new)
    elif kind == "add":
        inside = isinstance(parent[key], (dict, list))
        target, where = (parent[key], path) if inside else (parent, path[:-1])
        if isinstance(target, dict):
            new = draw(st.one_of(st.text(max_size=10), st.sampled_from(MARKUP)))
            target[new] = draw(VALUES)
            path = (*where, new)
        else:
            target.append(draw(VALUES))
            path = (*where, len(target) - 1)
    elif kind == "wrap":
        parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
    elif kind == "deep":
        value: Any = 1
        for _ in range(draw(st.integers(20, 200))):
            value = [value]
        parent[key] = value
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode(), path


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"rewardlab check did not finish in {HANG_SECONDS} s")


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        for p in FILES:  # import every family once, outside the examples
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                main(["check", str(p)])
        yield Path(d)


def run_check(file: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", str(file)])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return code, " ".join((err.getvalue() + out.getvalue()).split())


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(case=mutated())
def test_mutated_experiments_give_a_message_or_pass(workdir, case):
    content, path = case
    file = workdir / "exp.yaml"
    file.write_bytes(content)
    code, out = run_check(file)  # any exception (a traceback) or Hang fails the example
    assert code in (0, 2), out
    assert "Traceback" not in out
    if code == 0:
        assert ": ok — env" in out
        return
    assert out.startswith("error: "), out
    if path is not None:  # a field mutation: the message names the field, its section or a key inside it
        names = {visible(k) for k in path if isinstance(k, str)}
        assert any(n in visible(out) for n in names) or "top level" in out, (path, out)


def visible(text: str) -> str:
    """``text`` as a terminal shows it: rich drops control characters; whitespace is normalised."""
    return "".join(c for c in text if c.isprintable() and not c.isspace())


@st.composite
def overridden(draw) -> tuple[str, str]:
    """An experiment and one ``--set key.path=value`` with a drawn path and YAML/markup/bomb value."""
    name = draw(st.sampled_from(sorted(DOCS)))
    path = ".".join(str(k) for k in draw(st.sampled_from(paths(DOCS[name]))))
    if draw(st.booleans()):
        path += "." + draw(st.sampled_from(["x", "[/x]", "0", "-1", "name"]))
    value = draw(st.one_of(
        VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip().replace("\n", " ")),
        st.text(max_size=20), st.sampled_from(MARKUP + [_bomb().replace("\n", " "), "[" * 500, "&a [*a]"])))
    return name, f"{path}={value}"


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=overridden())
def test_mutated_overrides_give_a_message_or_pass(workdir, case):
    name, override = case
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", str(ROOT / "experiments" / name), "--set", override])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    text = " ".join((err.getvalue() + out.getvalue()).split())
    assert code in (0, 2) and "Traceback" not in text, text
    assert text.startswith("error: ") if code == 2 else ": ok — env" in text
