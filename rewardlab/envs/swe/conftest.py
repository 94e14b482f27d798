"""pytest: ``data/`` holds the SWE task modules and their suites, which run only in the sandbox.

Collecting them (as tests, or as doctest modules under ``--doctest-modules``) would import
them as top-level modules (``strutils``, ``test_strutils``) of rewardlab's own test run.
"""

collect_ignore = ["data"]
