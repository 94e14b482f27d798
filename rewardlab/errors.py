"""Project exceptions: every bad input ends in one of these, with a message naming the problem.

- ``RewardLabError``: base class; the CLI prints its message and exits with status 2.
- ``ConfigError``: a malformed or invalid experiment file / override.
- ``UnknownNameError``: a name not in a registry (lists valid names, suggests the closest).
- ``InvalidArgument``: a constructor argument outside its allowed range.
- ``TermOutputError``: a reward term returned the wrong shape, dtype or a non-finite value.
- ``TermError``: a reward term raised while computing its value (the message names the term and
  the env; the original exception is its ``__cause__``).
- ``RunDirError``: ``--resume`` on something that is not a run directory.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "RewardLabError",
    "ConfigError",
    "UnknownNameError",
    "InvalidArgument",
    "TermOutputError",
    "TermError",
    "RunDirError",
]


class RewardLabError(Exception):
    """Base class of all rewardlab errors caused by bad input."""


class ConfigError(RewardLabError):
    """An experiment file or a ``--set`` override is malformed or invalid."""


class InvalidArgument(RewardLabError, ValueError):
    """A constructor argument is outside its allowed range."""


class TermOutputError(RewardLabError):
    """A reward term returned a value of the wrong shape or a non-finite value."""


class TermError(RewardLabError):
    """A reward term raised an exception while computing its value."""


class RunDirError(RewardLabError):
    """A path given as a run directory is not one."""


class RunStopped(RewardLabError):
    """A callback stopped a run early on purpose (e.g. a sweep pruned an unpromising trial)."""


class UnknownNameError(RewardLabError, KeyError):
    """A name that is not registered; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        valid = sorted(valid)
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        shown = ", ".join(valid[:40]) + (" ..." if len(valid) > 40 else "")
        msg = f"unknown {kind} {name!r}.{hint} Valid {kind}s: {shown}"
        super().__init__(msg)
        self.kind, self.name, self.valid, self.suggestion = kind, name, valid, close[0] if close else None

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
