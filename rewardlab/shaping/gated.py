"""G-RA (Gated Reward Accumulation, Sun et al. 2025) and step-level process-reward terms.

- ``GatedAccumulation``: a ``RewardStack`` gate. Step-level terms (``gated``) count only when
  the higher-priority outcome term clears ``threshold``. ``mode="episode"`` (the paper's
  setting: the outcome is known at the end) holds the gated terms' rewards back during the
  episode and pays their sum at the episode's last step iff the episode's outcome sum
  ≥ ``threshold`` (else they are dropped); ``mode="running"`` counts them at each step only
  while the outcome accumulated so far already clears the threshold.

The step-level process rewards it gates are usually ``info_signal`` terms
(``rewardlab.shaping.basic``), e.g. the SWE envs' ``opened_buggy_file`` or ``test_run_improved``.

Build the gate from YAML with ``reward.gate: {outcome: env, threshold: 0.5, gated: [...]}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument

__all__ = ["GatedAccumulation"]


class GatedAccumulation:
    """Gate ``gated`` step terms on the ``outcome`` term's episode sum (G-RA).

    >>> from rewardlab.core.stack import RewardStack
    >>> from rewardlab.shaping.basic import EnvReward, StepPenalty
    >>> bonus = StepPenalty(-0.5); bonus.name = "bonus"  # +0.5 every step
    >>> gate = GatedAccumulation(outcome="env", gated=["bonus"], threshold=0.5)
    >>> stack = RewardStack([EnvReward(), bonus], gate=gate); stack.bind(2)
    >>> step = lambda r, done: Transition(None, None, None, np.array(r), np.array(done), np.zeros(2, bool))
    >>> stack(step([0.0, 0.0], [False, False]))[0]  # held back
    array([0., 0.], dtype=float32)
    >>> stack(step([1.0, 0.0], [True, True]))[0]  # env 0 solved: both bonuses paid; env 1: dropped
    array([2., 0.], dtype=float32)
    """

    MODES = ("episode", "running")

    def __init__(self, outcome: str, gated: Sequence[str], threshold: float = 0.5, mode: str = "episode"):
        if mode not in self.MODES:
            raise InvalidArgument(f"gate mode must be one of {self.MODES}, got {mode!r}")
        if isinstance(gated, str) or not gated:
            raise InvalidArgument(f"gate 'gated' must be a non-empty list of term names, got {gated!r}")
        if outcome in gated:
            raise InvalidArgument(f"the outcome term {outcome!r} cannot gate itself")
        if not np.isfinite(threshold):
            raise InvalidArgument(f"gate threshold must be finite, got {threshold}")
        self.outcome, self.gated = outcome, list(gated)
        self.threshold, self.mode = float(threshold), mode
        self._outcome_sum = np.zeros(0)
        self._pending = np.zeros((len(self.gated), 0))

    def check(self, names: Sequence[str]) -> None:
        """Every named term must be in the stack (called by ``RewardStack``)."""
        missing = [n for n in [self.outcome, *self.gated] if n not in names]
        if missing:
            raise InvalidArgument(f"gate names {missing} are not terms of the stack (terms: {list(names)})")

    def bind(self, num_envs: int) -> None:
        self._outcome_sum = np.zeros(num_envs)
        self._pending = np.zeros((len(self.gated), num_envs))

    def reset(self, env_ids: np.ndarray) -> None:
        if self._outcome_sum.size:
            self._outcome_sum[env_ids] = 0.0
            self._pending[:, env_ids] = 0.0

    def _grow(self, n: int) -> None:
        if len(self._outcome_sum) < n:
            old_o, old_p = self._outcome_sum, self._pending
            self.bind(n)
            self._outcome_sum[: len(old_o)] = old_o
            self._pending[:, : old_p.shape[1]] = old_p

    def apply(self, parts: dict[str, np.ndarray], t: Transition) -> dict[str, np.ndarray]:
        """Replace the gated terms' contributions by what G-RA lets through."""
        ids = t.env_ids
        self._grow(int(np.max(ids)) + 1)
        self._outcome_sum[ids] += parts[self.outcome]
        clears = self._outcome_sum[ids] >= self.threshold
        done = t.done
        for i, name in enumerate(self.gated):
            value = parts[name]
            if self.mode == "running":
                parts[name] = np.where(clears, value, 0.0).astype(np.float32)
                continue
            pending = self._pending[i, ids] + value
            parts[name] = np.where(done & clears, pending, 0.0).astype(np.float32)
            self._pending[i, ids] = np.where(done, 0.0, pending)
        self._outcome_sum[ids[done]] = 0.0
        return parts

    def __repr__(self) -> str:
        return f"GatedAccumulation(outcome={self.outcome!r}, gated={self.gated}, threshold={self.threshold:g}, " \
               f"mode={self.mode!r})"
