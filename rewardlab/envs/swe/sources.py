"""The correct small modules (and their pytest suites) the SWE task corpus is mutated from.

``MODULES[name] = (source, tests)``: ``source`` is the text of ``<name>.py``, ``tests`` the
text of ``tests/test_<name>.py``. Both are real files under ``data/modules/`` (package data,
read with ``importlib.resources`` so an installed wheel works too), linted by ruff like any
other code. ``data/`` has no ``__init__.py`` and ``rewardlab/envs/swe/conftest.py`` keeps
pytest (tests and doctests) out of it: the modules run only in the sandbox, as top-level
modules of a task's repository.

``NAMES`` fixes the order of the modules; the corpus generator depends on it (distractor
modules, the seeded choice of mutants), so a new module goes at the end.

>>> list(MODULES)[:3]
['strutils', 'numeric', 'listutils']
>>> src, tests = MODULES["strutils"]
>>> src.splitlines()[0], tests.splitlines()[0]
('def reverse_words(text):', 'from strutils import count_vowels, is_palindrome, pad_left, reverse_words, truncate')
"""

from __future__ import annotations

from importlib.resources import files
from types import MappingProxyType

__all__ = ["MODULES", "NAMES", "read_module"]

NAMES = ("strutils", "numeric", "listutils", "parsers", "structures", "intervals", "roman", "encoding",
         "validate", "matrix", "textstats")


def read_module(name: str) -> tuple[str, str]:
    """``(source, tests)`` of module ``name``, read from the package data."""
    root = files("rewardlab.envs.swe") / "data" / "modules"
    source = (root / f"{name}.py").read_text(encoding="utf-8")
    tests = (root / "tests" / f"test_{name}.py").read_text(encoding="utf-8")
    return source, tests


MODULES: MappingProxyType[str, tuple[str, str]] = MappingProxyType({name: read_module(name) for name in NAMES})
