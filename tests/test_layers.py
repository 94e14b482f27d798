"""The package's layering (docs/architecture.md): imports point down only.

Every ``import rewardlab.X`` in every module under ``rewardlab/`` — function-local imports
included, since a local import hides a cycle rather than removing it — is checked against the
layer table below. A module may import its own layer or any layer below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rewardlab"

# Bottom to top; the same order as docs/architecture.md.
LAYERS: list[set[str]] = [
    {"errors"},
    {"core", "llm"},
    {"shaping", "envs", "agents", "imitation", "metrics", "jax"},
    {"config"},
    {"experiment", "results"},  # results: the public face of experiment.results
    {"sweep", "derl"},
    {"cli", "__main__"},
]

# Same-layer imports that are still wrong: a reward term must not depend on an agent
# (terms reach agents only through the hooks declared on ``Term``).
FORBIDDEN_SAME_LAYER = {("shaping", "agents")}

# The package facade re-exports the core API and ``make``; it sits above everything it imports.
FACADE = "__init__"


def _layer_of(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"rewardlab.{top} is in no layer: add it to LAYERS here and to docs/architecture.md")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported rewardlab module) for every import statement in the file."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "rewardlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.split(".")[0] == "rewardlab":
                if name == "rewardlab":  # ``from rewardlab import shaping`` imports the subpackage
                    out += [(node.lineno, f"rewardlab.{a.name}") for a in node.names]
                else:
                    out.append((node.lineno, name))
    return out


def _top(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else FACADE


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "data" in path.relative_to(PACKAGE).parts:  # shipped data files (SWE sources), not package code
            continue
        top = _top(path)
        if top == FACADE:
            continue
        mine = _layer_of(top)
        for line, name in _imports(path):
            parts = name.split(".")
            if len(parts) < 2:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports the package facade 'rewardlab'")
                continue
            other = parts[1]
            if other == top:
                continue
            theirs = _layer_of(other)
            if theirs > mine:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({top}, layer {mine}) imports {name} "
                           f"(layer {theirs})")
            elif (top, other) in FORBIDDEN_SAME_LAYER:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({top}) imports {name}: forbidden")
    return bad


def test_imports_point_down_only():
    bad = _violations()
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_every_subpackage_has_a_layer():
    for child in PACKAGE.iterdir():
        if child.name.startswith(("_", ".")) and child.name not in ("__main__.py",):
            continue
        if child.is_dir() and (child / "__init__.py").exists() or child.suffix == ".py":
            _layer_of(child.name.removesuffix(".py"))


@pytest.mark.parametrize("source, expect", [
    ("from rewardlab.experiment.runner import run_experiment\n", True),
    ("def f():\n    from rewardlab.cli import main\n", True),        # a local import counts too
    ("from rewardlab.core.terms import Term\n", False),
    ("import rewardlab.agents.ppo\n", True),                          # shaping -> agents: forbidden pair
])
def test_the_checker_catches_an_upward_import(tmp_path, source, expect):
    # A fake package with one ``shaping`` module: the checker must flag exactly the bad imports.
    global PACKAGE
    real, PACKAGE = PACKAGE, tmp_path / "rewardlab"
    try:
        (PACKAGE / "shaping").mkdir(parents=True)
        (PACKAGE / "shaping" / "__init__.py").write_text(source)
        assert bool(_violations()) is expect
    finally:
        PACKAGE = real


def test_the_architecture_page_shows_the_same_layers():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    block = text.split("<!-- layers:", 1)[1].split("```", 2)[1]
    doc = [{n.strip() for n in line.split("  ")[0].split(",")} for line in block.strip().splitlines()]
    assert doc[::-1] == LAYERS, "docs/architecture.md's layer block and LAYERS here differ"
