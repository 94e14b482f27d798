"""Gymnasium MuJoCo tasks with their reward components as named terms (``robotics/<Task>``).

The v5 MuJoCo envs report each reward component in ``info`` with its sign applied
(``reward_ctrl`` is negative), and the components add up to the env reward. ``COMPONENTS``
lists them per task, and ``component_terms(task)`` turns them into ``info_component`` term
specs, so an experiment re-weights or replaces them in YAML::

    reward:
      terms:
        - {name: info_component, params: {key: reward_forward}, as: forward}
        - {name: info_component, params: {key: reward_ctrl}, as: ctrl, weight: 0.5}

Contents:

- ``COMPONENTS``: task → reward component keys;
- ``component_terms``: term specs whose weighted sum (weights 1) is the env reward;
- ``SparseReach``: a success-only reward (1 within ``radius`` of the target) for
  ``Reacher-v5``/``Pusher-v5``, the sparse task that reach-target shaping helps;
- ``make_robotics``: the factory behind ``rewardlab.make("robotics/HalfCheetah-v5")`` and
  ``robotics/ReacherSparse-v5`` / ``robotics/PusherSparse-v5``.

Rendering needs ``MUJOCO_GL=egl`` on a headless machine; training does not render. Without a
display (no ``DISPLAY``/``WAYLAND_DISPLAY``) the ``human`` mode is not offered: MuJoCo's window
would abort the interpreter (GLFW finds no monitor), so it is refused at make and left out of
``metadata["render_modes"]``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from rewardlab.errors import InvalidArgument
from rewardlab.shaping.reach import slice_distance

__all__ = ["COMPONENTS", "SPARSE_TASKS", "component_terms", "SparseReach", "make_robotics",
           "refuse_window_without_display", "without_window_modes"]

COMPONENTS: dict[str, tuple[str, ...]] = {
    "HalfCheetah-v5": ("reward_forward", "reward_ctrl"),
    "Hopper-v5": ("reward_forward", "reward_ctrl", "reward_survive"),
    "Walker2d-v5": ("reward_forward", "reward_ctrl", "reward_survive"),
    "Ant-v5": ("reward_forward", "reward_ctrl", "reward_contact", "reward_survive"),
    "Humanoid-v5": ("reward_forward", "reward_ctrl", "reward_contact", "reward_survive"),
    "Reacher-v5": ("reward_dist", "reward_ctrl"),
    "Pusher-v5": ("reward_dist", "reward_ctrl", "reward_near"),
}

# Sparse variants: (base task, slice a, slice b) — the distance ‖obs[a] − obs[b]‖ to the goal.
# Reacher-v5 obs[8:10] is fingertip − target; Pusher-v5 obs[17:20] is the object, obs[20:23] the goal.
SPARSE_TASKS: dict[str, tuple[str, tuple[int, int], tuple[int, int] | None]] = {
    "ReacherSparse-v5": ("Reacher-v5", (8, 10), None),
    "PusherSparse-v5": ("Pusher-v5", (17, 20), (20, 23)),
}


def component_terms(task: str) -> list[dict[str, Any]]:
    """``info_component`` term specs (weight 1) whose sum is ``task``'s reward.

    >>> component_terms("Reacher-v5")
    [{'name': 'info_component', 'params': {'key': 'reward_dist'}, 'as': 'dist'}, \
{'name': 'info_component', 'params': {'key': 'reward_ctrl'}, 'as': 'ctrl'}]
    """
    if task not in COMPONENTS:
        raise InvalidArgument(f"no reward components known for {task!r}; known: {', '.join(COMPONENTS)}")
    return [{"name": "info_component", "params": {"key": k}, "as": k.removeprefix("reward_")} for k in COMPONENTS[task]]


class SparseReach(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Success-only reward: 1 when ``‖obs[a] − obs[b]‖ < radius`` after the step, else 0.

    ``info["is_success"]`` says the same; ``info["reach_distance"]`` is the distance and the
    original dense components stay in ``info``. A potential on the same distance
    (``robotics/reach_distance``) or the dense ``reach_distance`` term shapes it.

    >>> import numpy as np
    >>> env = SparseReach(gym.make("Reacher-v5"), a=(8, 10), radius=0.05)
    >>> obs, _ = env.reset(seed=0)
    >>> obs, r, term, trunc, info = env.step(np.zeros(2, np.float32))
    >>> r, info["is_success"], round(info["reach_distance"], 3)
    (0.0, False, 0.19)
    """

    def __init__(self, env: gym.Env, a: tuple[int, int], b: tuple[int, int] | None = None, radius: float = 0.05):
        if radius <= 0:
            raise InvalidArgument(f"radius must be > 0, got {radius}")
        # Recorded so env.spec rebuilds the wrapper (gym.make(env.spec), Gymnasium's env checker).
        gym.utils.RecordConstructorArgs.__init__(self, a=a, b=b, radius=radius)
        super().__init__(env)
        self.distance = slice_distance(a, b)
        self.radius = float(radius)

    def step(self, action: Any):
        obs, _, terminated, truncated, info = self.env.step(action)
        dist = float(self.distance(obs[None])[0])
        success = dist < self.radius
        info = dict(info, is_success=success, reach_distance=dist)
        return obs, float(success), terminated, truncated, info


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def refuse_window_without_display(render_mode: str | None, env_id: str) -> None:
    """MuJoCo envs: ``human`` rendering on a machine without a display is an error, not an abort."""
    if render_mode == "human" and not _has_display():
        raise InvalidArgument(f"{env_id}: render_mode 'human' opens a window and this machine has no display "
                              "(DISPLAY/WAYLAND_DISPLAY unset); use render_mode='rgb_array' (MUJOCO_GL=egl)")


def without_window_modes(env: gym.Env) -> gym.Env:
    """MuJoCo envs, headless: stop advertising ``human`` (see the module docstring)."""
    if not _has_display():
        md = env.unwrapped.metadata
        env.unwrapped.metadata = {**md, "render_modes": [m for m in md.get("render_modes", []) if m != "human"]}
    return env


def make_robotics(task: str, **kwargs: Any) -> gym.Env:
    """A Gymnasium MuJoCo task (``HalfCheetah-v5`` ...) or a sparse variant (``ReacherSparse-v5``, ``radius=``)."""
    refuse_window_without_display(kwargs.get("render_mode"), f"robotics/{task}")
    if task in SPARSE_TASKS:
        base, a, b = SPARSE_TASKS[task]
        radius = kwargs.pop("radius", 0.05)
        return SparseReach(without_window_modes(gym.make(base, **kwargs)), a=a, b=b, radius=radius)
    if task not in COMPONENTS:
        raise InvalidArgument(f"unknown robotics task {task!r}; known: {', '.join([*COMPONENTS, *SPARSE_TASKS])}")
    try:
        return without_window_modes(gym.make(task, **kwargs))
    except TypeError as e:
        raise InvalidArgument(f"robotics/{task}: {e}") from e
