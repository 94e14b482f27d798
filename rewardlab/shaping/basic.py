"""Basic terms: the task reward, a per-step penalty, a count-based novelty bonus, and values
the env reports in ``info``.

- ``info_signal``: ``reward * info[key]``, a process reward from a step signal the env reports
  only on some steps (SWE envs' ``opened_buggy_file``); missing entries count 0.
- ``info_component``: an env-reported reward component that must be present every step
  (Gymnasium MuJoCo / Brax ``reward_forward``, ``reward_ctrl``, ...); with weight 1 a task's
  components add up to its reward, so YAML re-weights or drops them one by one.
"""

from __future__ import annotations

import numpy as np

from rewardlab.core.terms import Term, require_info
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument, TermOutputError

__all__ = ["EnvReward", "StepPenalty", "Novelty", "InfoSignal", "InfoComponent"]


class EnvReward(Term):
    """The environment's own (task) reward.

    >>> t = Transition(None, None, None, np.array([1.0, 0.0]), np.zeros(2, bool), np.zeros(2, bool))
    >>> EnvReward()(t)
    array([1., 0.], dtype=float32)
    """

    name = "env"

    def __call__(self, t: Transition) -> np.ndarray:
        return np.asarray(t.env_reward, np.float32)

    def _evaluate_into(self, t: Transition, out: np.ndarray, full: bool) -> bool:
        out[...] = t.env_reward  # the same float32 cast, into the stack's row
        return True


class StepPenalty(Term):
    """A constant ``-value`` every step (pushes towards short episodes).

    >>> t = Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool))
    >>> StepPenalty(0.01)(t)
    array([-0.01, -0.01], dtype=float32)
    """

    name = "step_penalty"

    def __init__(self, value: float = 0.01):
        if not np.isfinite(value):
            raise InvalidArgument(f"step_penalty value must be finite, got {value}")
        self.value = float(value)

    def __call__(self, t: Transition) -> np.ndarray:
        return np.full(t.num_envs, -self.value, np.float32)

    def _constant(self) -> float:
        return -self.value


class Novelty(Term):
    """Count-based exploration bonus ``1/sqrt(N(s'))``.

    ``key="obs"`` counts whole next observations; any other value names an ``info`` entry
    (e.g. ``"agent_pos"`` on MiniHack) whose value identifies the state. ``scope="episode"``
    resets the counts when each env's episode ends; ``"global"`` keeps them for the run.

    >>> t = Transition(None, None, np.array([[0], [0], [1]]), np.zeros(3), np.zeros(3, bool), np.zeros(3, bool))
    >>> term = Novelty()
    >>> term(t).round(3)  # the two envs in state 0 count in order: 1 then 2
    array([1.   , 0.707, 1.   ], dtype=float32)
    """

    name = "novelty"

    def __init__(self, key: str = "obs", scope: str = "global"):
        if scope not in ("global", "episode"):
            raise InvalidArgument(f"novelty scope must be 'global' or 'episode', got {scope!r}")
        self.key, self.scope = key, scope
        self._counts: dict[tuple[int, bytes], int] | dict[bytes, int] = {}

    def reset(self, env_ids: np.ndarray) -> None:
        if self.scope == "episode":
            drop = {int(i) for i in env_ids}
            self._counts = {k: v for k, v in self._counts.items() if k[0] not in drop}

    def _states(self, t: Transition) -> np.ndarray:
        if self.key == "obs":
            x = t.next_obs
            if isinstance(x, dict):
                x = np.concatenate([np.asarray(v).reshape(t.num_envs, -1).view(np.uint8) for v in x.values()], 1)
        else:
            if self.key not in t.info:
                raise InvalidArgument(f"novelty key {self.key!r} is not in info (keys: {sorted(t.info)})")
            x = t.info[self.key]
        x = np.ascontiguousarray(np.asarray(x).reshape(t.num_envs, -1))
        return x

    def __call__(self, t: Transition) -> np.ndarray:
        states = self._states(t)
        out = np.empty(t.num_envs, np.float32)
        episodic = self.scope == "episode"
        for row, (env, s) in enumerate(zip(t.env_ids, states, strict=True)):
            k = (int(env), s.tobytes()) if episodic else s.tobytes()
            n = self._counts.get(k, 0) + 1
            self._counts[k] = n
            out[row] = n ** -0.5
        return out


class InfoSignal(Term):
    """``reward * info[key]`` each step: a process reward from a signal the env reports.

    Entries the vector env marks missing (``info["_" + key]`` false) count 0, unless
    ``required`` (then they are an error).

    >>> info = {"opened_buggy_file": np.array([1.0, 0.0])}
    >>> InfoSignal("opened_buggy_file", reward=0.25)(
    ...     Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info))
    array([0.25, 0.  ], dtype=float32)
    """

    name = "info_signal"

    required = False

    def __init__(self, key: str, reward: float = 1.0):
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"{self.name} needs a non-empty info key, got {key!r}")
        if not np.isfinite(reward):
            raise InvalidArgument(f"{self.name} reward must be finite, got {reward}")
        self.key, self.reward = key, float(reward)

    def __call__(self, t: Transition) -> np.ndarray:
        vals = np.asarray(require_info(t.info, self.key, self.name), np.float64).reshape(t.num_envs)
        mask = t.info.get("_" + self.key)
        if mask is not None and not np.all(mask):
            if self.required:
                raise TermOutputError(f"{self.name}: info[{self.key!r}] is missing for envs "
                                      f"{np.flatnonzero(~np.asarray(mask)).tolist()}")
            vals = np.where(mask, vals, 0.0)
        return (self.reward * vals).astype(np.float32)


class InfoComponent(InfoSignal):
    """The env's reward component ``info[key]`` (already signed: costs are negative), required every step.

    >>> info = {"reward_ctrl": np.array([-0.5, -0.1]), "_reward_ctrl": np.array([True, True])}
    >>> t = Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info)
    >>> InfoComponent("reward_ctrl")(t)
    array([-0.5, -0.1], dtype=float32)
    """

    name = "info_component"

    required = True

    def __init__(self, key: str):
        super().__init__(key, 1.0)
