"""Reading experiment files (issue #23, items 13 and 15): bytes that are not UTF-8 text, deep
nesting, YAML alias bombs, huge files and rich markup in values give one message and exit
status 2 — never a traceback, never a hang."""

from __future__ import annotations

import codecs
import time
from pathlib import Path

import pytest
import yaml

from rewardlab.cli import main
from rewardlab.config import load_config
from rewardlab.config.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_yaml
from rewardlab.errors import ConfigError

GOOD = "name: t\nenv: {id: CartPole-v1, n_envs: 2}\nagent: {name: ppo}\ntrain: {total_steps: 256}\n"


def check(tmp_path: Path, capsys, content: str | bytes, *extra: str) -> tuple[int, str]:
    p = tmp_path / "exp.yaml"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    code = main(["check", str(p), *extra])
    cap = capsys.readouterr()
    return code, " ".join((cap.err + cap.out).split())


def test_a_good_file_passes(tmp_path, capsys):
    code, out = check(tmp_path, capsys, GOOD)
    assert code == 0 and "ok" in out


@pytest.mark.parametrize(("content", "expected"), [
    (GOOD.encode("utf-16"), "UTF-16"),
    (GOOD.encode("utf-16-le"), "NUL bytes"),          # no byte-order mark
    (GOOD.encode("utf-32"), "UTF-32"),
    ((GOOD + "description: café\n").encode("latin-1"), "line 5, column 17"),
    ((GOOD + "description: café\n").encode("cp1252"), "Latin-1"),
    (bytes(range(256)) * 4, "not a text file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "not a text file"),
])
def test_files_that_are_not_utf8_text(tmp_path, capsys, content, expected):
    code, out = check(tmp_path, capsys, content)
    assert code == 2, out
    assert "UTF-8" in out and expected in out and "Traceback" not in out


def test_a_utf8_byte_order_mark_is_fine(tmp_path, capsys):
    assert check(tmp_path, capsys, codecs.BOM_UTF8 + (GOOD + "description: café\n").encode())[0] == 0


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_quickly(tmp_path, capsys, opener):
    if opener == "- ":
        deep = "\n" + "".join("  " * (i + 1) + "-\n" for i in range(300))  # block sequences, one per line
    else:
        deep = opener * 5000 + ("]" if opener == "[" else "}") * 5000
    code, out = check(tmp_path, capsys, GOOD + "description: " + deep + "\n")
    assert code == 2
    assert f"nested more than {MAX_DEPTH} levels deep" in out


@pytest.mark.parametrize(("lists", "refused"), [(MAX_DEPTH - 3, False), (MAX_DEPTH - 2, True)])
def test_nesting_at_the_bound(tmp_path, capsys, lists, refused):
    deep = "[" * lists + "]" * lists  # inside the top level, agent and agent.params: 3 levels
    text = GOOD.replace("agent: {name: ppo}", f"agent: {{name: ppo, params: {{x: {deep}}}}}")
    code, out = check(tmp_path, capsys, text)
    assert code == 2 and "agent.params.x" in out  # the field, in either message
    assert ("nested more than" in out) == refused
    assert ("unknown parameter for agent 'ppo'" in out) != refused  # the schema's check once the depth is fine


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["top", "description", "kwargs"])
def test_alias_bomb_is_refused_quickly(tmp_path, capsys, where):
    bomb = _bomb()
    if where == "top":
        text = bomb + GOOD
    else:
        inner = "  " + bomb.replace("\n", "\n  ").rstrip() + "\n"
        key = "description:\n" if where == "description" else "env:\n  id: CartPole-v1\n  kwargs:\n"
        if where == "kwargs":
            inner = "    " + bomb.replace("\n", "\n    ").rstrip() + "\n"
            text = key + inner + "agent: {name: ppo}\n"
        else:
            text = GOOD + key + inner
    t0 = time.monotonic()
    code, out = check(tmp_path, capsys, text)
    assert time.monotonic() - t0 < 5
    assert code == 2 and f"more than {MAX_NODES:,} values" in out and "alias" in out


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="refers to itself"):
        load_yaml("a: &x [1, *x]\n", "<t>")


def test_a_few_aliases_are_fine(tmp_path, capsys):
    text = GOOD + "reward:\n  terms:\n    - &t {name: step_penalty, params: {value: 0.01}}\n    - {<<: *t, as: again}\n"
    assert check(tmp_path, capsys, text)[0] == 0


def test_a_50_mb_file_is_refused_without_reading_it(tmp_path, capsys):
    p = tmp_path / "exp.yaml"
    with p.open("wb") as f:
        f.write(GOOD.encode() + b"description: '")
        f.seek(50 * 2**20)
        f.write(b"'\n")
    t0 = time.monotonic()
    code = main(["check", str(p)])
    out = " ".join(capsys.readouterr().err.split())
    assert time.monotonic() - t0 < 2
    assert code == 2 and f"larger than {MAX_FILE_BYTES // 1024} KiB" in out


def test_many_values_in_a_small_file_are_refused_quickly(tmp_path, capsys):
    text = GOOD + "description: [" + ",".join(["1"] * (MAX_NODES + 10)) + "]\n"
    assert len(text.encode()) < MAX_FILE_BYTES
    t0 = time.monotonic()
    code, out = check(tmp_path, capsys, text)
    assert time.monotonic() - t0 < 5
    assert code == 2 and f"more than {MAX_NODES:,} values" in out


def test_a_directory_is_not_a_file(tmp_path, capsys):
    code = main(["check", str(tmp_path)])
    assert code == 2 and "not a regular file" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("value", ["[bold]x[/b]", "[/]", "x[/red]y", "[link=file:///etc/passwd]a[/link]", ":warning:"])
@pytest.mark.parametrize("field", ["env.id", "agent.name", "reward.terms", "name", "train.total_steps"])
def test_rich_markup_in_values_is_printed_verbatim(tmp_path, capsys, field, value):
    data = yaml.safe_load(GOOD)
    section, _, key = field.partition(".")
    if field == "reward.terms":
        data["reward"] = {"terms": [value]}
    elif key:
        data[section][key] = value
    else:
        data[section] = value
    code, out = check(tmp_path, capsys, yaml.safe_dump(data))
    if code == 0:  # a valid name (":warning:") is just a name
        assert field == "name" and "ok" in out
    else:
        assert code == 2
        assert value in out  # shown as written (not swallowed as markup, not crashing rich)


def test_markup_in_an_ok_file_path(tmp_path, capsys):
    d = tmp_path / "[bold]x[red]"
    d.mkdir()
    code, out = check(d, capsys, GOOD)
    assert code == 0 and "[bold]x[red]" in out


def test_markup_in_set_overrides(tmp_path, capsys):
    code, out = check(tmp_path, capsys, GOOD, "--set", "agent.params.[/x]=1")
    assert code == 2 and "agent.params.[/x]" in out


@pytest.mark.parametrize(("text", "expected"), [
    ("env: {id: CartPole-v1, kwargs: {a: .nan}}", "env.kwargs.a: nan is not a finite number"),
    ("env: {id: CartPole-v1, kwargs: {a: [1, -.inf]}}", "env.kwargs.a.1: -inf is not a finite number"),
    ("env: {id: CartPole-v1, kwargs: {a: 1.0e+400}}", "env.kwargs.a: inf is not a finite number"),
    ("env: {id: CartPole-v1, kwargs: {a: 99999999999999999999999}}", "does not fit a 64-bit integer"),
    ("env: {id: CartPole-v1, kwargs: {a: 2001-12-14}}", "env.kwargs.a: a date"),
    ("env: {id: CartPole-v1, kwargs: {a: !!binary aGVsbG8=}}", "env.kwargs.a: bytes"),
    ("env: {id: CartPole-v1, kwargs: {a: !!set {x}}}", "env.kwargs.a: a set"),
    ("env: {id: CartPole-v1, kwargs: {yes: 1}}", "env.kwargs: the key True is not a string"),
    ("env: {id: CartPole-v1}\n1: 2", "the key 1 is not a string"),
    ("env: {id: CartPole-v1, kwargs: {a: !!python/object:os.system x}}", "malformed YAML"),
])
def test_values_that_are_not_plain_finite_data(tmp_path, text, expected):
    p = tmp_path / "exp.yaml"
    p.write_text(text + "\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert expected in str(e.value)
