"""G-RA (Gated Reward Accumulation, Sun et al. 2025) and step-level process-reward terms.

- ``GatedAccumulation``: a ``RewardStack`` gate over **priority levels** of terms. The terms of
  the highest level (the outcome) always pay; a term of a lower level pays only when *every*
  higher level's accumulated reward clears that level's threshold (a gate per level, as in the
  paper: a reward is accumulated only if the rewards of higher priority meet theirs).
  ``mode="episode"`` (the paper's setting: the outcome is known at the end) holds a gated
  term's rewards back during the episode and pays their sum at the episode's last step iff
  all higher levels' episode sums clear their thresholds (else they are dropped);
  ``mode="running"`` pays a gated term at a step only while the higher levels' sums so far
  already clear their thresholds.

  Two levels (one outcome term gating a list of step terms) keep their short form
  ``GatedAccumulation(outcome, gated, threshold)``; more levels are
  ``GatedAccumulation(levels=[[outcome], [level 1 terms], [level 2 terms], ...],
  threshold=[t0, t1, ...])`` (one threshold per level that gates a lower one; a single
  number applies to all of them). A level's sum is the raw weighted sum of its terms'
  contributions, before any gate of its own.

The step-level process rewards it gates are usually ``info_signal`` terms
(``rewardlab.shaping.basic``), e.g. the SWE envs' ``opened_buggy_file`` or ``test_run_improved``.

Build the gate from YAML with ``reward.gate: {outcome: env, threshold: 0.5, gated: [...]}`` or
``reward.gate: {levels: [[env], [tests], [localize]], threshold: [0.5, 0.5]}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument

__all__ = ["GatedAccumulation"]


def _names(value: object, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value \
            or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"gate {what} must be a non-empty list of term names, got {value!r}")
    return list(value)


class GatedAccumulation:
    """Gate lower-priority terms on the accumulated rewards of the higher levels (G-RA).

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

    Three levels: ``tip`` (+0.25 a step) pays only in episodes where the outcome ``env`` clears
    0.5 *and* ``bonus`` clears 1.0.

    >>> tip = StepPenalty(-0.25); tip.name = "tip"
    >>> gate = GatedAccumulation(levels=[["env"], ["bonus"], ["tip"]], threshold=[0.5, 1.0])
    >>> stack = RewardStack([EnvReward(), bonus, tip], gate=gate); stack.bind(2)
    >>> stack(step([0.0, 0.0], [False, False]))[0]
    array([0., 0.], dtype=float32)
    >>> total, parts = stack(step([1.0, 1.0], [True, False]))  # env 0: bonus sum 1.0 clears 1.0
    >>> parts["bonus"], parts["tip"]
    (array([1., 0.], dtype=float32), array([0.5, 0. ], dtype=float32))
    >>> stack.gate.thresholds, stack.gate.levels
    ([0.5, 1.0], [['env'], ['bonus'], ['tip']])
    """

    MODES = ("episode", "running")

    def __init__(self, outcome: str | None = None, gated: Sequence[str] | None = None,
                 threshold: float | Sequence[float] = 0.5, mode: str = "episode",
                 levels: Sequence[Sequence[str]] | None = None):
        if mode not in self.MODES:
            raise InvalidArgument(f"gate mode must be one of {self.MODES}, got {mode!r}")
        if levels is None:
            if outcome is None or gated is None:
                raise InvalidArgument("a gate needs 'outcome' and 'gated' (two levels), or 'levels': "
                                      "[[highest-priority terms], [next level], ...]")
            if not isinstance(outcome, str):
                raise InvalidArgument(f"gate outcome must be one term name, got {outcome!r}; "
                                      "several outcome terms: levels: [[a, b], [gated terms]]")
            gated = _names(gated, "'gated'")
            if outcome in gated:
                raise InvalidArgument(f"the outcome term {outcome!r} cannot gate itself")
            levels = [[outcome], gated]
        else:
            if outcome is not None or gated is not None:
                raise InvalidArgument("give a gate either 'levels' or 'outcome' + 'gated', not both")
            if isinstance(levels, str) or not isinstance(levels, Sequence) or len(levels) < 2:
                raise InvalidArgument(f"gate levels must be a list of >= 2 lists of term names (highest "
                                      f"priority first), got {levels!r}")
            levels = [_names(lv, f"level {k}") for k, lv in enumerate(levels)]
            flat = [n for lv in levels for n in lv]
            twice = sorted({n for n in flat if flat.count(n) > 1})
            if twice:
                raise InvalidArgument(f"gate levels name {twice} more than once; a term belongs to one level")
        self.levels: list[list[str]] = [list(lv) for lv in levels]
        n_gates = len(self.levels) - 1
        raw = [threshold] * n_gates if np.isscalar(threshold) else list(threshold)  # type: ignore[arg-type]
        if len(raw) != n_gates:
            raise InvalidArgument(f"gate threshold: one per gating level ({n_gates} for {len(self.levels)} "
                                  f"levels) or a single number, got {threshold!r}")
        try:
            self.thresholds = [float(x) for x in raw]
        except (TypeError, ValueError):
            raise InvalidArgument(f"gate threshold must be numbers, got {threshold!r}") from None
        if not all(np.isfinite(self.thresholds)):
            raise InvalidArgument(f"gate threshold must be finite, got {threshold!r}")
        self.mode = mode
        # Lower-priority terms in order, with their level.
        self._gated = [(k, name) for k in range(1, len(self.levels)) for name in self.levels[k]]
        self._sums = np.zeros((n_gates, 0))
        self._pending = np.zeros((len(self._gated), 0))

    # The two-level view (the original API): the first level's first term, the rest.
    @property
    def outcome(self) -> str:
        return self.levels[0][0]

    @property
    def gated(self) -> list[str]:
        return [name for _, name in self._gated]

    @property
    def threshold(self) -> float:
        return self.thresholds[0]

    def check(self, names: Sequence[str]) -> None:
        """Every named term must be in the stack (called by ``RewardStack``)."""
        missing = [n for lv in self.levels for n in lv if n not in names]
        if missing:
            raise InvalidArgument(f"gate names {missing} are not terms of the stack (terms: {list(names)})")

    def bind(self, num_envs: int) -> None:
        self._sums = np.zeros((len(self.thresholds), num_envs))
        self._pending = np.zeros((len(self._gated), num_envs))

    def reset(self, env_ids: np.ndarray) -> None:
        if self._sums.shape[1]:
            self._sums[:, env_ids] = 0.0
            self._pending[:, env_ids] = 0.0

    def _grow(self, n: int) -> None:
        if self._sums.shape[1] < n:
            old_s, old_p = self._sums, self._pending
            self.bind(n)
            self._sums[:, : old_s.shape[1]] = old_s
            self._pending[:, : old_p.shape[1]] = old_p

    def apply(self, parts: dict[str, np.ndarray], t: Transition) -> dict[str, np.ndarray]:
        """Replace the gated terms' contributions by what G-RA lets through."""
        ids = t.env_ids
        self._grow(int(np.max(ids)) + 1)
        # Raw (pre-gate) sums of the gating levels, then: level k is open iff levels 0..k-1 clear.
        for j in range(len(self.thresholds)):
            self._sums[j, ids] += sum(np.asarray(parts[name], np.float64) for name in self.levels[j])
        clears = self._sums[:, ids] >= np.asarray(self.thresholds)[:, None]
        open_ = np.logical_and.accumulate(clears, axis=0)  # open_[k - 1]: every level above k clears
        done = t.done
        for i, (k, name) in enumerate(self._gated):
            value, ok = parts[name], open_[k - 1]
            if self.mode == "running":
                parts[name] = np.where(ok, value, 0.0).astype(np.float32)
                continue
            pending = self._pending[i, ids] + value
            parts[name] = np.where(done & ok, pending, 0.0).astype(np.float32)
            self._pending[i, ids] = np.where(done, 0.0, pending)
        self._sums[:, ids[done]] = 0.0
        return parts

    def __repr__(self) -> str:
        if len(self.levels) == 2 and len(self.levels[0]) == 1:
            return f"GatedAccumulation(outcome={self.outcome!r}, gated={self.gated}, " \
                   f"threshold={self.threshold:g}, mode={self.mode!r})"
        return f"GatedAccumulation(levels={self.levels}, threshold={self.thresholds}, mode={self.mode!r})"
