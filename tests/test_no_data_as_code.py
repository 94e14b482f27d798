"""Data ships as data files (JSON/NPZ/``.py`` sources under a ``data/`` folder), not as Python
literals: a module-level literal of many lines or a long string constant in package code is
data stored as code (docs/architecture.md, "Data")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rewardlab"
MAX_LITERAL_LINES = 60       # a task list or a table of a few dozen entries is configuration
MAX_STRING_CHARS = 3000      # longer texts (module sources, prompts) belong in a data file


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _is_literal(k) for k in node.keys) and all(_is_literal(v) for v in node.values)
    return False


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        value = getattr(node, "value", None)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and value is not None and _is_literal(value):
            lines = value.end_lineno - value.lineno + 1
            if lines > MAX_LITERAL_LINES:
                out.append(f"{path.name}:{node.lineno}: a {lines}-line literal")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > MAX_STRING_CHARS:
            out.append(f"{path.name}:{node.lineno}: a {len(node.value)}-character string")
    return out


def test_no_module_holds_data_as_python_literals():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "data" not in path.relative_to(PACKAGE).parts:
            bad += [f"{path.relative_to(PACKAGE.parent)}: {o}" for o in _offences(path)]
    assert not bad, "data stored as code (move it to a data file):\n" + "\n".join(bad)


def test_the_check_flags_a_large_literal(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("TASKS = [\n" + "".join(f"    {{'id': {i}}},\n" for i in range(100)) + "]\n")
    assert _offences(f)
    f.write_text("SRC = " + repr("x = 1\n" * 1000) + "\n")
    assert _offences(f)
    f.write_text("TASKS = {'a': 1, 'b': 2}\n")
    assert not _offences(f)
