"""Registry: values, lazy 'module:attr' entries, duplicates and error messages."""

from __future__ import annotations

import sys

import pytest

from rewardlab.core.registry import Registry, load_attr
from rewardlab.errors import RewardLabError, UnknownNameError


def test_register_get_and_names():
    r: Registry[int] = Registry("widget")
    r.register("b", value=2)
    r.register("a", value=1)
    r.register("c", indirect="math:pi")
    assert (r.get("a"), r.get("b")) == (1, 2)
    assert r.names() == ["a", "b", "c"] and list(r) == ["a", "b", "c"]
    assert "c" in r and "d" not in r
    r.unregister("a")
    assert r.names() == ["b", "c"]


def test_register_needs_exactly_one_of_value_and_indirect():
    r = Registry("widget")
    with pytest.raises(ValueError, match="exactly one of 'value' and 'indirect'"):
        r.register("a")
    with pytest.raises(ValueError, match="exactly one of 'value' and 'indirect'"):
        r.register("a", value=1, indirect="math:pi")


@pytest.mark.parametrize("second", [{"value": 2}, {"indirect": "math:e"}])
def test_duplicate_registration_is_refused(second):
    r = Registry("widget")
    r.register("a", indirect="math:pi")
    with pytest.raises(RewardLabError, match="duplicate registration for widget 'a'"):
        r.register("a", **second)
    r.get("a")  # resolved lazy entries stay registered, so duplicates are still refused
    with pytest.raises(RewardLabError, match="duplicate registration for widget 'a'"):
        r.register("a", **second)


def test_decorator_registers_the_object():
    r = Registry("widget")

    @r.decorator("f")
    def f():
        return 42

    assert r.get("f") is f and f() == 42


def test_lazy_entry_is_imported_only_on_get(tmp_path, monkeypatch):
    (tmp_path / "rl_lazy_probe_mod.py").write_text("class Box:\n    value = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rl_lazy_probe_mod", raising=False)
    r = Registry("widget")
    r.register("box", indirect="rl_lazy_probe_mod:Box")
    r.register("box_value", indirect="rl_lazy_probe_mod:Box.value")  # dotted attribute path
    assert "rl_lazy_probe_mod" not in sys.modules
    assert r.get("box_value") == 7
    assert "rl_lazy_probe_mod" in sys.modules
    assert r.get("box") is sys.modules["rl_lazy_probe_mod"].Box
    monkeypatch.delitem(sys.modules, "rl_lazy_probe_mod")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_colon_here", r"import path 'no_colon_here' must look like 'package\.module:attribute'"),
        ("math:", r"import path 'math:' must look like"),
        (":pi", r"import path ':pi' must look like"),
        ("rl_no_such_pkg_xyz.mod:thing",
         r"cannot import 'rl_no_such_pkg_xyz\.mod' for 'rl_no_such_pkg_xyz\.mod:thing': No module named"),
        ("math:no_such_attr", r"module 'math' has no attribute 'no_such_attr'"),
        ("math:pi.real.nope", r"module 'math' has no attribute 'pi\.real\.nope'"),
    ],
)
def test_bad_import_paths_give_clear_errors(path, message):
    with pytest.raises(RewardLabError, match=message):
        load_attr(path)
    r = Registry("widget")
    r.register("w", indirect=path)
    # The same clear error every time: a failed import must not unregister the name.
    for _ in range(2):
        with pytest.raises(RewardLabError, match=message):
            r.get("w")
    assert "w" in r


def test_unknown_name_lists_valid_names_and_suggests():
    r = Registry("widget")
    for n in ["alpha", "beta", "gamma"]:
        r.register(n, value=n)
    expected = r"^unknown widget 'betta'\. Did you mean 'beta'\? Valid widgets: alpha, beta, gamma$"
    with pytest.raises(UnknownNameError, match=expected) as e:
        r.get("betta")
    assert (e.value.kind, e.value.name, e.value.suggestion) == ("widget", "betta", "beta")
    with pytest.raises(KeyError):  # still a KeyError for callers that catch that
        r.get("betta")


def test_unknown_name_message_truncates_long_lists():
    r = Registry("widget")
    for i in range(45):
        r.register(f"w{i:02d}", value=i)
    with pytest.raises(UnknownNameError, match=r"Valid widgets: w00, w01, .*, w39 \.\.\.$"):
        r.get("zzz")
