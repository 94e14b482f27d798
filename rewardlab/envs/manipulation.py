"""Multi-stage simulated manipulation tasks with named subtasks (``manipulation/<Task>``).

``ReachSequence-v0``: the MuJoCo two-link Reacher arm (Gymnasium ``Reacher-v5``'s model and
physics) must touch three waypoints in order, ``reach_a`` → ``reach_b`` → ``reach_c``. The
waypoints sit near three fixed places (each jittered by up to ``jitter`` per episode); the
observation is Reacher's 10 numbers with the *current* waypoint as the target
(``cos q``, ``sin q``, target x/y, ``q̇``, fingertip − target x/y). When the fingertip comes
within ``radius`` of the current waypoint the next one becomes the target; touching the last
ends the episode (``terminated``) with reward 1. Every other step pays 0: the true task reward
is sparse success. Episodes are truncated after ``max_episode_steps`` (200).

``info`` carries ``stage`` (waypoints reached so far), ``subtask`` (the current subtask's name),
``is_success``, ``distance`` (fingertip to the current waypoint) and ``task_progress``: the
geometric progress ``(k + clip(1 − d/d₀, 0, 1)) / K`` (``d₀`` the distance when stage ``k``
began), used only to *measure* learned progress models, never as a reward.

Contents:

- ``SUBTASKS``, ``WAYPOINTS``: the subtask names and the waypoints' nominal positions;
- ``ReachSequence``: the env;
- ``fingertip_jacobian``: the arm's planar fingertip position and Jacobian from joint angles
  (the scripted demonstrators' controller uses it);
- ``make_manipulation``: the factory behind ``rewardlab.make("manipulation/ReachSequence-v0")``.

Rendering needs ``MUJOCO_GL=egl`` on a headless machine; training does not render.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rewardlab.envs.robotics import refuse_window_without_display, without_window_modes
from rewardlab.errors import InvalidArgument

__all__ = ["TASKS", "SUBTASKS", "WAYPOINTS", "ReachSequence", "fingertip_jacobian", "make_manipulation"]

TASKS = ("ReachSequence-v0",)
SUBTASKS = ("reach_a", "reach_b", "reach_c")
# Nominal waypoints (metres, the arm's base at the origin; reach 0.21).
WAYPOINTS = np.array([[0.14, 0.08], [-0.06, 0.15], [-0.10, -0.12]], np.float64)
LINK1, LINK2 = 0.1, 0.11  # Reacher-v5's link lengths (body1 at 0.1, fingertip 0.11 beyond it)


def fingertip_jacobian(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planar fingertip position and its 2×2 Jacobian for joint angles ``q = (q1, q2)``.

    >>> p, j = fingertip_jacobian(np.zeros(2))
    >>> p.round(3).tolist(), j.round(3).tolist()
    ([0.21, 0.0], [[-0.0, -0.0], [0.21, 0.11]])
    """
    q1, q12 = q[0], q[0] + q[1]
    p = np.array([LINK1 * np.cos(q1) + LINK2 * np.cos(q12), LINK1 * np.sin(q1) + LINK2 * np.sin(q12)])
    j = np.array([[-LINK1 * np.sin(q1) - LINK2 * np.sin(q12), -LINK2 * np.sin(q12)],
                  [LINK1 * np.cos(q1) + LINK2 * np.cos(q12), LINK2 * np.cos(q12)]])
    return p, j


class ReachSequence(gym.Env):
    """Touch waypoints A, B, C in order with the MuJoCo Reacher arm; reward 1 on touching C.

    >>> env = ReachSequence()
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["stage"], info["subtask"]
    ((10,), 0, 'reach_a')
    >>> obs, r, term, trunc, info = env.step(np.zeros(2, np.float32))
    >>> r, term, info["is_success"], round(info["task_progress"], 3)
    (0.0, False, False, 0.0)
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(self, radius: float = 0.02, jitter: float = 0.02, render_mode: str | None = None):
        if not radius > 0:
            raise InvalidArgument(f"ReachSequence radius must be > 0, got {radius}")
        if not 0 <= jitter <= 0.05:
            raise InvalidArgument(f"ReachSequence jitter must be in [0, 0.05], got {jitter}")
        self.radius, self.jitter = float(radius), float(jitter)
        # Reacher-v5 holds the MuJoCo model; its own target is moved to the current waypoint.
        self._inner = gym.make("Reacher-v5", render_mode=render_mode).unwrapped
        self.render_mode = render_mode
        self.action_space = self._inner.action_space
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (10,), np.float64)
        self.num_stages = len(SUBTASKS)
        self.waypoints = WAYPOINTS.copy()
        self.stage = 0
        self._d0 = 1.0

    # -- helpers ---------------------------------------------------------------------------
    def _set_target(self, xy: np.ndarray) -> None:
        qpos, qvel = self._inner.data.qpos.copy(), self._inner.data.qvel.copy()
        qpos[2:4], qvel[2:4] = xy, 0.0
        self._inner.set_state(qpos, qvel)

    def fingertip(self) -> np.ndarray:
        """The fingertip's planar position."""
        return np.asarray(self._inner.get_body_com("fingertip")[:2], np.float64)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """The arm's joint angles and velocities."""
        return self._inner.data.qpos[:2].copy(), self._inner.data.qvel[:2].copy()

    def _obs(self) -> np.ndarray:
        return np.asarray(self._inner._get_obs(), np.float64)

    def _info(self) -> dict[str, Any]:
        done = self.stage >= self.num_stages
        k = min(self.stage, self.num_stages - 1)
        d = float(np.linalg.norm(self.fingertip() - self.waypoints[k]))
        within = 1.0 if done else float(np.clip(1.0 - d / max(self._d0, 1e-6), 0.0, 1.0))
        return {"stage": int(self.stage), "subtask": SUBTASKS[k], "is_success": bool(done), "distance": d,
                "task_progress": (min(self.stage, self.num_stages - 1) + within) / self.num_stages
                if not done else 1.0}

    # -- gym API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._inner.reset(seed=None if seed is None else int(self.np_random.integers(2**31)))
        self.waypoints = WAYPOINTS + self.np_random.uniform(-self.jitter, self.jitter, WAYPOINTS.shape)
        self.stage = 0
        self._set_target(self.waypoints[0])
        self._d0 = float(np.linalg.norm(self.fingertip() - self.waypoints[0]))
        return self._obs(), self._info()

    def step(self, action: Any):
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        self._inner.do_simulation(action, self._inner.frame_skip)
        reward, terminated = 0.0, False
        if np.linalg.norm(self.fingertip() - self.waypoints[self.stage]) < self.radius:
            self.stage += 1
            if self.stage >= self.num_stages:
                reward, terminated = 1.0, True
            else:
                self._set_target(self.waypoints[self.stage])
                self._d0 = float(np.linalg.norm(self.fingertip() - self.waypoints[self.stage]))
        if self.render_mode == "human":
            self._inner.render()
        return self._obs(), reward, terminated, False, self._info()

    def render(self):
        return self._inner.render()

    def close(self) -> None:
        self._inner.close()


def make_manipulation(task: str, **kwargs: Any) -> gym.Env:
    """``manipulation/ReachSequence-v0`` (kwargs: ``radius``, ``jitter``, ``max_episode_steps``, ``render_mode``)."""
    if task not in TASKS:
        raise InvalidArgument(f"unknown manipulation task {task!r}; known: {', '.join(TASKS)}")
    max_steps = kwargs.pop("max_episode_steps", 200)
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise InvalidArgument(f"max_episode_steps must be an integer >= 1, got {max_steps!r}")
    refuse_window_without_display(kwargs.get("render_mode"), f"manipulation/{task}")
    try:
        env = without_window_modes(ReachSequence(**kwargs))
    except TypeError as e:
        raise InvalidArgument(f"manipulation/{task}: {e}") from e
    return gym.wrappers.TimeLimit(env, max_episode_steps=max_steps)
