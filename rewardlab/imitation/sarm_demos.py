"""Deterministic demonstrations of mixed quality for ``manipulation/ReachSequence-v0`` (SARM, RA-BC).

Scripted controllers drive the MuJoCo Reacher arm with a Cartesian PD law
``a = clip(kp · Jᵀ(x* − x)/0.01 − kd · q̇, −1, 1)`` towards a goal ``x*``; five *styles* differ
in gains, noise and goals:

- ``clean``: ``kp = 3, kd = 0.2`` straight to each waypoint (≈ 75 steps);
- ``slow``: ``kp = 1`` (≈ 150 steps, same path, slower);
- ``noisy``: ``clean`` plus Gaussian action noise (σ = 0.6 before clipping);
- ``detour``: before waypoints B and C, first to a random point 0.1–0.15 away from the
  waypoint, then to it (longer, with stretches of negative progress);
- ``fail``: reaches A (or A and B) cleanly, then heads to a decoy point (the next waypoint
  mirrored through the arm's base, 80% as far) and hovers there until the time limit: the demo
  never succeeds.

Every demo records the observations (``T + 1`` frames), actions (``T``), the true geometric
task progress per frame, success, and its **subtask annotation**: ``(name, start, end)`` frame
spans, contiguous (``end`` of one is the next one's ``start``); frame ``end`` is the first frame
after the waypoint was touched. A failing demo is annotated with the subtasks it completed.
Generation is deterministic in ``seed`` (a few seconds for 60 demos); nothing is downloaded.

Contents: ``STYLES``, ``Demo``, ``DemoSet``, ``generate_demos``, ``parse_mix``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from rewardlab.envs.manipulation import SUBTASKS, fingertip_jacobian, make_manipulation
from rewardlab.errors import InvalidArgument

__all__ = ["STYLES", "Demo", "DemoSet", "generate_demos", "parse_mix"]

STYLES = ("clean", "slow", "noisy", "detour", "fail")
_GAINS = {"clean": (3.0, 0.2), "slow": (1.0, 0.2), "noisy": (3.0, 0.2), "detour": (3.0, 0.2), "fail": (3.0, 0.2)}
_NOISE = 0.6
_DECOY_SCALE = -0.8  # the decoy: the current waypoint mirrored through the base, 80% as far


@dataclass
class Demo:
    """One demonstration: ``obs`` (T+1, 10), ``actions`` (T, 2), ``progress`` (T+1,) and its annotation."""

    style: str
    obs: np.ndarray
    actions: np.ndarray
    progress: np.ndarray
    success: bool
    subtasks: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of frames (``T + 1``)."""
        return len(self.obs)


@dataclass
class DemoSet:
    """Demos plus the task's subtask names (in order)."""

    demos: list[Demo]
    names: tuple[str, ...] = SUBTASKS

    def select(self, styles: Iterable[str] | None = None, success_only: bool = False) -> DemoSet:
        """The demos of the given styles (all if None), optionally only the successful ones."""
        keep = set(STYLES if styles is None else styles)
        unknown = keep - set(STYLES)
        if unknown:
            raise InvalidArgument(f"unknown demo style(s) {sorted(unknown)}; known: {', '.join(STYLES)}")
        return DemoSet([d for d in self.demos if d.style in keep and (d.success or not success_only)], self.names)

    def __len__(self) -> int:
        return len(self.demos)


def parse_mix(mix: Mapping[str, int]) -> dict[str, int]:
    """Check a ``{style: count}`` mapping.

    >>> parse_mix({"clean": 2, "fail": 1})
    {'clean': 2, 'fail': 1}
    >>> parse_mix({"sloppy": 2})
    Traceback (most recent call last):
    ...
    rewardlab.errors.InvalidArgument: unknown demo style 'sloppy'; known: clean, slow, noisy, detour, fail
    """
    out = {}
    for style, n in dict(mix).items():
        if style not in STYLES:
            raise InvalidArgument(f"unknown demo style {style!r}; known: {', '.join(STYLES)}")
        if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
            raise InvalidArgument(f"demo count for {style!r} must be an integer >= 0, got {n!r}")
        out[style] = n
    if sum(out.values()) == 0:
        raise InvalidArgument("the demo mix must ask for at least one demo")
    return out


def _goal_point(rng: np.random.Generator, around: np.ndarray) -> np.ndarray:
    """A reachable point 0.1–0.15 from ``around`` (radius from the base in [0.06, 0.19])."""
    for _ in range(100):
        ang = rng.uniform(0, 2 * np.pi)
        p = around + rng.uniform(0.10, 0.15) * np.array([np.cos(ang), np.sin(ang)])
        if 0.06 <= np.linalg.norm(p) <= 0.19:
            return p
    return np.zeros(2) + 0.08


def _rollout(style: str, seed: int, max_steps: int) -> Demo:
    rng = np.random.default_rng(seed)
    env = make_manipulation("ReachSequence-v0", max_episode_steps=max_steps)
    inner = env.unwrapped
    obs, info = env.reset(seed=seed)
    kp, kd = _GAINS[style]
    fail_after = int(rng.integers(1, 3)) if style == "fail" else None
    detour_for: dict[int, np.ndarray] = {}
    if style == "detour":
        detour_for = {k: _goal_point(rng, inner.waypoints[k]) for k in (1, 2)}
    obs_l, act_l, prog_l = [obs], [], [info["task_progress"]]
    subtasks: list[tuple[str, int, int]] = []
    start, success = 0, False
    for t in range(max_steps):
        k = inner.stage
        q, qd = inner.joint_state()
        tip, jac = fingertip_jacobian(q)
        goal = inner.waypoints[k]
        if fail_after is not None and k >= fail_after:
            goal = _DECOY_SCALE * inner.waypoints[k]
        elif k in detour_for:
            if np.linalg.norm(tip - detour_for[k]) < 0.03:
                del detour_for[k]  # detour point visited: now the real waypoint
            else:
                goal = detour_for[k]
        a = kp * jac.T @ (goal - tip) / 0.01 - kd * qd
        if style == "noisy":
            a = a + rng.normal(0.0, _NOISE, 2)
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        obs, _, term, trunc, info = env.step(a)
        obs_l.append(obs)
        act_l.append(a)
        prog_l.append(info["task_progress"])
        if info["stage"] > k:  # waypoint k touched during this step: frame t+1 ends subtask k
            subtasks.append((SUBTASKS[k], start, t + 1))
            start = t + 1
        if term or trunc:
            success = bool(info["is_success"])
            break
    env.close()
    return Demo(style, np.asarray(obs_l, np.float32), np.asarray(act_l, np.float32),
                np.asarray(prog_l, np.float32), success, subtasks)


def generate_demos(mix: Mapping[str, int], seed: int = 0, max_steps: int = 200) -> DemoSet:
    """``mix[style]`` demos of each style, deterministic in ``seed`` (demo ``i`` of a style uses
    its own seed, so adding demos of one style leaves the others unchanged).

    >>> ds = generate_demos({"clean": 1, "fail": 1}, seed=0)
    >>> [(d.style, d.success, [s[0] for s in d.subtasks]) for d in ds.demos]
    [('clean', True, ['reach_a', 'reach_b', 'reach_c']), ('fail', False, ['reach_a', 'reach_b'])]
    >>> d = ds.demos[0]
    >>> d.subtasks[0][1], d.subtasks[-1][2] == d.length - 1, d.actions.shape == (d.length - 1, 2)
    (0, True, True)
    """
    mix = parse_mix(mix)
    demos = []
    for s_idx, style in enumerate(STYLES):
        for i in range(mix.get(style, 0)):
            demos.append(_rollout(style, seed * 100_003 + s_idx * 10_007 + i, max_steps))
    return DemoSet(demos)
