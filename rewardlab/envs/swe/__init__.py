"""Offline software-engineering tasks: buggy small Python repos, real pytest suites, a sandbox.

- ``sources``: the correct modules and their test suites (files under ``data/modules/``);
- ``corpus``: mutation operators, task generation and validation, the shipped corpus
  (``data/corpus.json``);
- ``sandbox``: contained pytest runs (namespaces, a private filesystem view, cgroup, rlimits, warm
  worker pool); split runs keep the verdict out of the code's process (``_split.py``);
- ``envs``: ``swe/PatchSelect-v0`` (discrete, feature vector) and ``swe/TextEdit-v0`` (text).

Docs: ``docs/envs/swe.md``. Nothing heavy is imported here.
"""
