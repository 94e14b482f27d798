"""The docs site (MkDocs Material + mkdocstrings API reference) builds with --strict.

--strict turns every warning into a failure: a broken relative link or anchor, a page missing
from the nav in mkdocs.yml, an API object that no longer resolves.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_extension():
    spec = importlib.util.spec_from_file_location("doctest_fences", ROOT / "docs/_ext/doctest_fences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doctest_blocks_are_fenced_and_prose_is_not():
    fence = _load_extension().fence_doctests
    text = "Sum of rewards.\n\n>>> f([1, 2])\n[1.5, 1.0]\n\nMore prose [not code]."
    assert fence(text) == (
        "Sum of rewards.\n\n```pycon\n>>> f([1, 2])\n[1.5, 1.0]\n```\n\nMore prose [not code]."
    )
    assert fence(">>> 1\n1").endswith("```")   # a block at the very end is closed too


def test_docs_site_builds_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site/api/core/index.html").is_file()
    assert (tmp_path / "site/methods/potential/index.html").is_file()
