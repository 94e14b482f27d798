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


# --- manifests: the built-in names, without import side effects ---------------------------


def test_a_lookup_works_right_after_import_rewardlab():
    # A fresh interpreter: nothing but ``import rewardlab`` before the lookups.
    import subprocess

    code = ("import rewardlab, sys; t = rewardlab.core.TERMS.get('env'); "
            "assert t.name == 'env', t.name; "
            "from rewardlab.envs import ENVS; assert 'minihack/Room-5x5' in ENVS; "
            "from rewardlab.agents import AGENTS; assert {'ppo', 'sb3_ppo', 'ild'} <= set(AGENTS.names()); "
            "assert 'rewardlab.shaping.barfi' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_core_names_no_module_of_a_layer_above():
    # Imports are checked by tests/test_layers.py; this catches lazy "module:attr" tables in strings.
    import ast
    from pathlib import Path

    import rewardlab.core

    for path in Path(rewardlab.core.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                for layer in ("shaping", "envs", "agents", "imitation", "experiment", "config", "sweep", "derl"):
                    assert f"rewardlab.{layer}" not in node.value, f"{path.name}:{node.lineno} names rewardlab.{layer}"


def test_every_built_in_term_is_named_as_registered():
    from rewardlab.core.registry import manifest_entries
    from rewardlab.core.terms import TERMS

    for name in manifest_entries("TERMS"):
        try:
            cls = TERMS.get(name)
        except RewardLabError as e:  # an optional extra that is not installed
            assert "cannot import" in str(e)
            continue
        assert cls.name == name, f"{cls.__name__}.name is {cls.name!r}, registered as {name!r}"


def test_a_user_name_that_clashes_with_a_built_in_is_refused_at_registration():
    from rewardlab.core.terms import Term, register_term

    with pytest.raises(RewardLabError, match="duplicate registration for reward term 'env'"):
        @register_term("env")
        class MyEnv(Term):
            pass


def test_a_name_declared_by_two_manifests_is_an_error(monkeypatch):
    import types

    from rewardlab.core import registry

    a, b = types.ModuleType("rewardlab.a.manifest"), types.ModuleType("rewardlab.b.manifest")
    a.THINGS, b.THINGS = {"x": "math:pi"}, {"x": "math:e"}
    monkeypatch.setattr(registry, "manifest_modules", lambda: (a, b))
    with pytest.raises(RewardLabError, match="'x' is declared by both rewardlab.a.manifest and rewardlab.b.manifest"):
        Registry("thing", manifest="THINGS").get("x")


def test_manifest_entries_bind_arguments():
    import types

    from rewardlab.core import registry

    m = types.ModuleType("rewardlab.m.manifest")
    m.THINGS = {"floor": ["math:floor", 2.7], "bad": 3}
    orig = registry.manifest_modules
    registry.manifest_modules = lambda: (m,)
    try:
        r = Registry("thing", manifest="THINGS")
        assert r.get("floor")() == 2
        with pytest.raises(RewardLabError, match="a manifest entry must be"):
            r.get("bad")
    finally:
        registry.manifest_modules = orig


def test_env_manifest_task_lists_match_their_families():
    # The families whose modules import heavy packages keep their task names in the manifest;
    # check them against the family module where it can be read.
    import ast
    from pathlib import Path

    import rewardlab.envs
    from rewardlab.envs import manifest

    root = Path(rewardlab.envs.__file__).parent
    tree = ast.parse((root / "alfworld" / "env.py").read_text())
    alf = next(n for n in ast.walk(tree) if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "ENV_TASKS")
    assert tuple(k.value for k in alf.value.keys) == manifest.ALFWORLD_TASKS
    swe = (root / "swe" / "envs.py").read_text()
    assert all(f'"{t}"' in swe or f"'{t}'" in swe or t.split("-")[0] in swe for t in manifest.SWE_TASKS)
