"""``ShapedEnv`` and ``ShapedVectorEnv``: replace an env's reward with a ``RewardStack``.

Every step both wrappers put ``info["reward_terms"] = {name: value}`` (weighted, summing to
the reward returned) and ``info["reward_env"]`` (the env's own reward). When an episode ends,
``info["episode_stats"]`` holds its true return (env reward only), shaped return, length,
success flag and per-term sums, and the same record is queued for ``pop_episodes()``.

Where a ``RecordEpisodeStatistics``/``Monitor`` sits matters (below a shaping wrapper it
records the unshaped return, above it the shaped one); these wrappers record both, so no
monitor is needed.

Wrapper order (the table is in ``docs/concepts.md``): a reward wrapper below the shaping
wrapper (``NormalizeReward``, ``ClipReward``, ``TransformReward``) would turn the "true"
return into a transformed one, so it is refused; an action wrapper below it (``ClipAction``,
``RescaleAction``) is followed, so the terms see the action the env executes.
``pop_episodes(env)`` finds the shaping wrapper under any outer (vector) wrappers.
"""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorActionWrapper, VectorRewardWrapper, VectorWrapper
from gymnasium.wrappers.utils import RunningMeanStd
from gymnasium.wrappers.vector import NormalizeObservation as _GymNormalizeObservation

from rewardlab.core.stack import RewardStack
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument, TermError, TermOutputError

__all__ = ["ShapedEnv", "ShapedVectorEnv", "EpisodeRecord", "pop_episodes", "check_vector_wrappers",
           "NormalizeObservation"]

_REWARD_FIX = ("put it above (outside) the shaping wrapper: the terms and the true return are computed from the "
               "env's own reward, and the learner sees the transformed shaped reward")


def _chain(env: Any) -> list[Any]:
    """``env`` and every env it wraps, outermost first."""
    out = [env]
    while isinstance(out[-1], (gym.Wrapper, VectorWrapper)):
        out.append(out[-1].env)
    return out


def _is_reward_wrapper(env: Any) -> bool:
    return isinstance(env, (gym.RewardWrapper, gym.wrappers.NormalizeReward, VectorRewardWrapper,
                            gym.wrappers.vector.NormalizeReward))


def _refuse_reward_wrappers(env: Any, where: str) -> None:
    for inner in _chain(env):
        if _is_reward_wrapper(inner):
            raise InvalidArgument(
                f"{type(inner).__name__} is below {where}: the 'true' return and every term would see its "
                f"transformed reward instead of the env's; {_REWARD_FIX}"
            )


def check_vector_wrappers(env: gym.Env) -> None:
    """Refuse per-copy wrappers that a ``ShapedVectorEnv`` above the vector env cannot account for.

    ``env`` is one copy of a vector env (with its ``wrappers=``). A reward wrapper there changes
    the reward the terms and the true return see; an action wrapper there changes the executed
    action where the batched terms cannot follow it (put its vector twin,
    ``gymnasium.wrappers.vector.ClipAction``, above the ``ShapedVectorEnv`` instead).
    """
    _refuse_reward_wrappers(env, "the shaping wrapper (in a vector copy's wrappers)")
    for inner in _chain(env):
        if isinstance(inner, gym.ActionWrapper):
            raise InvalidArgument(
                f"{type(inner).__name__} is in a vector copy's wrappers, below the shaping wrapper: the env would "
                f"execute the transformed action while the terms see the agent's; apply "
                f"gymnasium.wrappers.vector.{type(inner).__name__} to the shaped vector env instead (above it, the "
                f"terms see the action the env executes)"
            )


def pop_episodes(env: Any) -> list[EpisodeRecord]:
    """Episodes finished since the last call, from the shaping wrapper under any outer wrappers.

    >>> import gymnasium as gym
    >>> from rewardlab.shaping.basic import EnvReward
    >>> venv = ShapedVectorEnv(gym.make_vec("CartPole-v1", num_envs=1, vectorization_mode="sync"),
    ...                        RewardStack([EnvReward()]))
    >>> outer = gym.wrappers.vector.RecordEpisodeStatistics(venv)
    >>> _ = outer.reset(seed=0)
    >>> while not outer.step([0])[2].any(): pass
    >>> [(r.true_return, r.length) for r in pop_episodes(outer)]
    [(11.0, 11)]
    """
    for inner in _chain(env):
        if isinstance(inner, (ShapedEnv, ShapedVectorEnv)):
            return inner.pop_episodes()
    raise InvalidArgument(f"no ShapedEnv or ShapedVectorEnv under {env!r}: only a shaped env records episodes")


@dataclass
class EpisodeRecord:
    """Statistics of one finished episode."""

    env_id: int
    true_return: float
    shaped_return: float
    length: int
    success: float | None
    terms: dict[str, float] = field(default_factory=dict)
    truncated: bool = False


class _EpisodeAccumulator:
    """Per-env running sums, turned into ``EpisodeRecord``s when episodes end.

    ``sums`` holds one row per term and then the shaped return, in the row order of
    ``RewardStack.evaluate``'s matrix, so a full-batch step is one matrix addition.
    """

    def __init__(self, num_envs: int, names: list[str]):
        self.names = names
        self.true = np.zeros(num_envs, np.float64)
        self.sums = np.zeros((len(names) + 1, num_envs), np.float64)
        # Episode lengths are steps - start: a full-batch step counts with a Python increment.
        self.steps = 0
        self.start = np.zeros(num_envs, np.int64)
        self.finished: list[EpisodeRecord] = []

    @property
    def length(self) -> np.ndarray:
        return self.steps - self.start

    def clear(self, ids: np.ndarray) -> None:
        self.true[ids] = 0.0
        self.sums[:, ids] = 0.0
        self.start[ids] = self.steps

    def add_all(self, env_r: np.ndarray, m: np.ndarray) -> None:
        """Accumulate one step of every env from the stack's matrix (terms rows, then the total)."""
        self.true += env_r
        self.sums += m.astype(np.float64)  # a cast, then a same-type add: cheaper than a mixed-type add
        self.steps += 1

    def add(self, ids: np.ndarray | None, env_r: np.ndarray, total: np.ndarray, parts: dict[str, np.ndarray]) -> None:
        """Accumulate one step of the envs ``ids`` (``None``: every env)."""
        sel = slice(None) if ids is None else ids
        self.true[sel] += env_r
        self.sums[-1, sel] += total
        self.steps += 1
        if ids is not None:  # the other envs' episodes did not advance
            skip = np.ones(len(self.start), bool)
            skip[ids] = False
            self.start[skip] += 1
        for i, name in enumerate(self.names):
            self.sums[i, sel] += parts[name]

    def finish(self, ids: np.ndarray, success: np.ndarray | None, truncated: np.ndarray) -> dict[str, Any]:
        """Close the episodes of ``ids``; returns the vector-form ``episode_stats`` info."""
        sums = self.sums.copy()
        true, length = self.true.copy(), self.length
        for j, i in enumerate(ids):
            s = None if success is None or math.isnan(success[j]) else float(success[j])
            column = sums[:, i].tolist()
            self.finished.append(
                EpisodeRecord(
                    env_id=int(i),
                    true_return=float(true[i]),
                    shaped_return=column[-1],
                    length=int(length[i]),
                    success=s,
                    terms=dict(zip(self.names, column, strict=False)),
                    truncated=bool(truncated[j]),
                )
            )
        stats = {
            "true_return": true,
            "shaped_return": sums[-1],
            "length": length,
            "terms": dict(zip(self.names, sums, strict=False)),
        }
        self.clear(ids)
        return stats


def _success_of(info: dict[str, Any], rows: np.ndarray) -> np.ndarray | None:
    """``is_success`` (SB3 convention) of the given rows, NaN where the env did not say."""
    if "is_success" not in info:
        return None
    vals = np.asarray(info["is_success"], dtype=np.float64)[rows]
    mask = info.get("_is_success")
    if mask is not None:
        vals = np.where(np.asarray(mask)[rows], vals, np.nan)
    return vals


def merge_final_info(info: dict[str, Any], final: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Vector-form info where rows that ended carry their final info instead of the reset info."""
    out = dict(info)
    for key, fval in final.items():
        if key.startswith("_"):
            continue
        cur = info.get(key)
        if isinstance(fval, dict):
            out[key] = merge_final_info(cur if isinstance(cur, dict) else {}, fval, rows)
            continue
        fmask = final.get("_" + key)
        take = rows if fmask is None else rows & fmask
        if isinstance(cur, np.ndarray) and isinstance(fval, np.ndarray) and cur.shape == fval.shape:
            merged = cur.copy()
            for i in take.nonzero()[0].tolist():  # few rows end per step: slices beat a boolean gather/scatter
                merged[i : i + 1] = fval[i : i + 1]
            out[key] = merged
            cmask = info.get("_" + key)
            out["_" + key] = take if cmask is None else cmask | take
        else:
            out[key] = fval
            out["_" + key] = take
    return out


def _replace_rows(obs: Any, rows: np.ndarray, finals: np.ndarray) -> Any:
    """Copy of batched ``obs`` with the ``rows`` replaced by the per-env final observations."""
    idx = np.flatnonzero(rows)
    if isinstance(obs, dict):
        return {k: _replace_rows_array(v, idx, [finals[i][k] for i in idx]) for k, v in obs.items()}
    return _replace_rows_array(obs, idx, [finals[i] for i in idx])


def _replace_rows_array(arr: np.ndarray, idx: np.ndarray, values: list) -> np.ndarray:
    out = arr.copy()
    for i, v in zip(idx, values, strict=True):
        out[i] = v
    return out


def _info_to_batch(info: dict[str, Any]) -> dict[str, Any]:
    """A single env's info in Gymnasium's vector form with one row."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, dict):
            out[k] = _info_to_batch(v)
        else:
            arr = np.empty(1, dtype=object) if not isinstance(v, (np.ndarray, int, float, bool, np.number)) else None
            if arr is not None:
                arr[0] = v
                out[k] = arr
            else:
                out[k] = np.asarray(v)[None]
            out["_" + k] = np.ones(1, bool)
    return out


def _env_label(env: Any) -> str:
    """The env's id (``CartPole-v1``) for messages, or its class name."""
    spec = getattr(env, "spec", None)
    if spec is None:  # a SyncVectorEnv built from functions: ask its first env
        first = (getattr(env.unwrapped, "envs", None) or [None])[0]
        spec = getattr(first, "spec", None)
    return getattr(spec, "id", None) or type(env.unwrapped).__name__


def _evaluate(stack: RewardStack, t: Transition, env: Any) -> np.ndarray:
    """``stack.evaluate(t)`` (the terms' rows, then the total); a term's error gets the env's name added."""
    try:
        return stack.evaluate(t)
    except (TermError, TermOutputError) as e:
        if getattr(e, "env_named", False):
            raise
        err = type(e)(f"{e} (env {_env_label(env)})")
        err.env_named = True
        raise err from e.__cause__ or e


def _copy_batch(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _copy_batch(v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_copy_batch(v) for v in obs)
    return np.array(obs, copy=True)


def _batch1(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _batch1(v) for k, v in obs.items()}
    return np.asarray(obs)[None]


class ShapedVectorEnv(VectorWrapper):
    """Vector twin of :class:`ShapedEnv`: terms are evaluated once per step, batched.

    Works with Gymnasium's ``SAME_STEP`` autoreset (the final observation is read from
    ``info["final_obs"]``) and ``NEXT_STEP`` autoreset (the step after an episode end is a
    reset step: it gets reward 0 and is not shown to the terms).

    >>> import gymnasium as gym
    >>> from rewardlab.shaping.basic import EnvReward, StepPenalty
    >>> venv = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    >>> env = ShapedVectorEnv(venv, RewardStack([EnvReward(), StepPenalty(0.25)]))
    >>> _ = env.reset(seed=0)
    >>> _, reward, _, _, info = env.step(np.array([0, 1]))
    >>> reward, info["reward_terms"]["step_penalty"], info["reward_env"]
    (array([0.75, 0.75], dtype=float32), array([-0.25, -0.25], dtype=float32), array([1., 1.]))
    """

    def __init__(self, env: gym.vector.VectorEnv, stack: RewardStack):
        super().__init__(env)
        if not isinstance(stack, RewardStack):
            raise InvalidArgument(f"stack must be a RewardStack, got {type(stack).__name__}")
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode == AutoresetMode.DISABLED:
            raise InvalidArgument(
                "ShapedVectorEnv needs an autoresetting vector env (SAME_STEP or NEXT_STEP), got DISABLED"
            )
        self.autoreset_mode = mode
        _refuse_reward_wrappers(env, "ShapedVectorEnv")
        for copy_env in getattr(env.unwrapped, "envs", None) or []:  # SyncVectorEnv: each copy's own wrappers
            check_vector_wrappers(copy_env)
        # Vector action wrappers below: the terms see the action the env executes.
        self._action_maps = [w for w in _chain(env) if isinstance(w, VectorActionWrapper)]
        self.stack = stack
        stack.bind(self.num_envs)
        self._all = stack.all_ids  # read-only arange: tells the terms the batch is complete
        self._names = stack.names
        self._same_step = mode == AutoresetMode.SAME_STEP
        self._stats = _EpisodeAccumulator(self.num_envs, stack.names)
        self._prev_obs: Any = None
        self._reset_next = np.zeros(self.num_envs, bool)  # NEXT_STEP: rows whose next step is a reset
        # A vector env made with copy=False returns the same buffer every step, overwritten in
        # place: without a copy, the terms would see obs == next_obs.
        self._copy_obs = not getattr(env.unwrapped, "copy", True)
        self._pending: tuple[Any] | None = None  # step_async's actions, until step_wait

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.stack.reset(self._all)
        self.stack.observe_reset(obs, info, self._all)
        self._stats.clear(self._all)
        self._reset_next[:] = False
        self._prev_obs = _copy_batch(obs) if self._copy_obs else obs
        return obs, info

    def step(self, actions):
        return self._shape(actions, self.env.step(actions))

    def step_async(self, actions) -> None:
        """Start a step on a vector env that can step in the background (``WorkerVectorEnv``,
        ``AsyncVectorEnv``) and return at once; :meth:`step_wait` collects it, shaped. Between
        the two the caller is free, e.g. to compute another group's actions (docs/benchmarks.md
        measures what that overlap buys on this machine)."""
        if not hasattr(self.env, "step_async") or self._action_maps:
            raise InvalidArgument(f"step_async needs a vector env that steps in the background directly below "
                                  f"ShapedVectorEnv (WorkerVectorEnv or AsyncVectorEnv), got {self.env!r}")
        if self._pending is not None:
            raise InvalidArgument("step_async called twice without step_wait in between")
        self.env.step_async(actions)
        self._pending = (actions,)

    def step_wait(self):
        """The step started by :meth:`step_async`, shaped: what :meth:`step` returns."""
        if self._pending is None:
            raise InvalidArgument("step_wait called without a pending step_async")
        (actions,), self._pending = self._pending, None
        return self._shape(actions, self.env.step_wait())

    def _shape(self, actions, result):
        """The wrapper's work on one vector step's ``result`` (the env's 5-tuple) for ``actions``."""
        obs, env_r, term, trunc, info = result
        env_r = np.asarray(env_r)
        term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
        done = term | trunc
        any_done = np.count_nonzero(done) > 0  # (cheaper than done.any() on a few envs)
        next_obs, t_info = obs, info
        if self._same_step and any_done:
            # The returned obs of ended rows is already the next episode's first obs.
            next_obs = _replace_rows(obs, done, info["final_obs"])
            t_info = merge_final_info(info, info.get("final_info", {}), done)

        executed = actions
        for w in self._action_maps:
            executed = w.actions(executed)
        t = Transition(self._prev_obs, np.asarray(executed), next_obs, env_r, term, trunc, t_info, self._all)
        if self._same_step or not self._reset_next.any():
            active = None
            m = _evaluate(self.stack, t, self.env)
            total, parts = m[-1], dict(zip(self._names, m, strict=False))
            self._stats.add_all(env_r, m)
        else:
            # NEXT_STEP: rows that were reset by this step are not transitions of any episode.
            active = ~self._reset_next
            ids = np.flatnonzero(active)
            total = np.zeros(self.num_envs, np.float32)
            parts = {n: np.zeros(self.num_envs, np.float32) for n in self.stack.names}
            if len(ids):
                sub = _evaluate(self.stack, t.select(ids), self.env)
                total[ids] = sub[-1]
                for k, n in enumerate(parts):
                    parts[n][ids] = sub[k]
            started = np.flatnonzero(~active)
            self.stack.reset(started)
            self.stack.observe_reset(obs, info, started)
            self._stats.add(ids, env_r[ids], total[ids], {n: v[ids] for n, v in parts.items()})

        env_info, info = info, dict(info)
        info["reward_terms"] = parts
        info["reward_env"] = env_r
        ended_mask = done if active is None else done & active
        ended = ended_mask.nonzero()[0] if any_done else ()
        if len(ended):
            info["episode_stats"] = self._stats.finish(ended, _success_of(t_info, ended), trunc[ended])
            info["_episode_stats"] = ended_mask
            if self._same_step:
                # The ended rows of the env's info are already the next episodes' reset info.
                self.stack.reset(ended)
                self.stack.observe_reset(obs, env_info, ended)
        if not self._same_step:
            self._reset_next = ended_mask
        self._prev_obs = _copy_batch(obs) if self._copy_obs else obs
        return obs, total, term, trunc, info

    def pop_episodes(self) -> list[EpisodeRecord]:
        """Episodes finished since the last call (oldest first)."""
        out, self._stats.finished = self._stats.finished, []
        return out


class ShapedEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace a single env's reward with a ``RewardStack`` (terms see a batch of one).

    ``stack`` is a ``RewardStack`` or term specs (as in YAML). Built from specs, the wrapper
    records them, so ``gym.make(env.spec)`` rebuilds it with a fresh stack; a stack object
    holds per-env state that a second env must not share, so it is not recorded (nor are specs
    that hold objects which cannot be copied).

    >>> import gymnasium as gym
    >>> from rewardlab.shaping.basic import EnvReward, StepPenalty
    >>> env = ShapedEnv(gym.make("CartPole-v1"), RewardStack([EnvReward(), StepPenalty(0.25)]))
    >>> _ = env.reset(seed=0)
    >>> _, reward, _, _, info = env.step(0)
    >>> reward, info["reward_terms"], info["reward_env"]
    (0.75, {'env': 1.0, 'step_penalty': -0.25}, 1.0)
    >>> env = ShapedEnv(gym.make("CartPole-v1"), ["env", {"name": "step_penalty", "params": {"value": 0.25}}])
    >>> env.spec.additional_wrappers[-1].kwargs["stack"][1]["params"]
    {'value': 0.25}
    """

    def __init__(self, env: gym.Env, stack: RewardStack | list[Any] | tuple[Any, ...] | None, *,
                 gamma: float | None = None):
        if isinstance(stack, (list, tuple)):
            from rewardlab.core.terms import build_stack

            try:  # the record is a copy: later edits of the caller's specs must not change it
                specs = deepcopy(list(stack))
            except Exception:  # a live object in params (a model, a backend): built once, not recorded
                specs = None
            gym.utils.RecordConstructorArgs.__init__(self, stack=specs, gamma=gamma)
            stack = build_stack(list(stack), gamma=gamma)
        elif isinstance(stack, RewardStack):
            gym.utils.RecordConstructorArgs.__init__(self, stack=None, gamma=gamma)
        elif stack is None:
            # What env.spec holds for a wrapper built from a stack object.
            raise InvalidArgument("ShapedEnv was given no stack; a ShapedEnv built from a RewardStack object "
                                  "(or from term specs holding objects that cannot be copied) cannot be rebuilt "
                                  "from env.spec: build it from plain term specs "
                                  "(rewardlab.make(env_id, reward=[...])) instead")
        else:
            raise InvalidArgument(f"stack must be a RewardStack or a list of term specs, got {type(stack).__name__}")
        _refuse_reward_wrappers(env, "ShapedEnv")
        super().__init__(env)
        # Action wrappers below (ClipAction, RescaleAction): the terms see the executed action.
        self._action_maps = [w for w in _chain(env) if isinstance(w, gym.ActionWrapper)]
        self.stack = stack
        stack.bind(1)
        self._ids = stack.all_ids  # [0], read-only: the full batch of one
        self._stats = _EpisodeAccumulator(1, stack.names)
        self._prev_obs: Any = None

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.stack.reset(self._ids)
        self.stack.observe_reset(_batch1(obs), _info_to_batch(info), self._ids)
        self._stats.clear(self._ids)
        self._prev_obs = obs
        return obs, info

    def step(self, action):
        obs, env_r, term, trunc, info = self.env.step(action)
        b_info = _info_to_batch(info)
        executed = action
        for w in self._action_maps:
            executed = w.action(executed)
        t = Transition(
            _batch1(self._prev_obs), np.asarray(executed)[None], _batch1(obs),
            np.asarray([env_r], np.float64), np.asarray([term]), np.asarray([trunc]), b_info, self._ids,
        )
        m = _evaluate(self.stack, t, self.env)
        total, parts = m[-1], dict(zip(self.stack.names, m, strict=False))
        self._stats.add_all(t.env_reward, m)
        info = dict(info)
        info["reward_terms"] = {n: float(v[0]) for n, v in parts.items()}
        info["reward_env"] = float(env_r)
        if term or trunc:
            stats = self._stats.finish(self._ids, _success_of(b_info, self._ids), np.asarray([trunc]))
            info["episode_stats"] = {
                "true_return": float(stats["true_return"][0]),
                "shaped_return": float(stats["shaped_return"][0]),
                "length": int(stats["length"][0]),
                "terms": {n: float(v[0]) for n, v in stats["terms"].items()},
            }
        self._prev_obs = obs
        return obs, float(total[0]), term, trunc, info

    def pop_episodes(self) -> list[EpisodeRecord]:
        """Episodes finished since the last call (oldest first)."""
        out, self._stats.finished = self._stats.finished, []
        return out


class NormalizeObservation(_GymNormalizeObservation):
    """Gymnasium's vector ``NormalizeObservation`` that also accepts ``SAME_STEP`` autoreset.

    Gymnasium 1.2's wrapper asserts ``NEXT_STEP`` (with ``SAME_STEP`` the final observation of
    an ended episode is in ``info["final_obs"]``, not in the batch). This one updates the
    statistics with those final observations too and normalises them in ``info["final_obs"]``,
    so an agent that bootstraps from them sees what the policy sees. With ``NEXT_STEP`` it is
    Gymnasium's wrapper unchanged.

    >>> import gymnasium as gym
    >>> venv = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
    ...                     vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    >>> env = NormalizeObservation(venv)
    >>> obs, _ = env.reset(seed=0)
    >>> bool(abs(obs).max() < 2.0)
    True
    """

    def __init__(self, env: gym.vector.VectorEnv, epsilon: float = 1e-8):
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.SAME_STEP:
            super().__init__(env, epsilon)
        else:  # the parent's __init__ without its (and its base class's) NEXT_STEP assertion
            gym.utils.RecordConstructorArgs.__init__(self, epsilon=epsilon)
            VectorWrapper.__init__(self, env)
            self.obs_rms = RunningMeanStd(shape=self.single_observation_space.shape,
                                          dtype=self.single_observation_space.dtype)
            self.epsilon = epsilon
            self._update_running_mean = True
        self._same_step = mode == AutoresetMode.SAME_STEP

    def step(self, actions):
        obs, reward, term, trunc, info = self.env.step(actions)
        done = np.asarray(term, bool) | np.asarray(trunc, bool)
        if not (self._same_step and done.any() and "final_obs" in info):
            return self.observations(obs), reward, term, trunc, info
        rows = np.flatnonzero(done)
        finals = np.stack([info["final_obs"][i] for i in rows])
        if self._update_running_mean:
            self.obs_rms.update(finals)
        obs = self.observations(obs)  # updates with the batch, then normalises it
        # The final observations with the same statistics as the batch they came with.
        finals = (finals - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        final_obs = np.array(info["final_obs"], copy=True)
        for j, i in enumerate(rows):
            final_obs[i] = finals[j]
        return obs, reward, term, trunc, {**info, "final_obs": final_obs}
