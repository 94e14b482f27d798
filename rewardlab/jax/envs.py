"""Pure-JAX environments behind one small functional interface, and their Gymnasium adapters.

Contents:

- ``JaxEnv``: the interface. ``reset(key, params) -> (obs, state)`` and
  ``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`` for
  *one* env (``jax.vmap`` it for a batch). ``step`` resets automatically: where the episode
  ended, ``obs``/``state`` already belong to the next episode and ``info`` holds the true last
  observation (``final_obs``), the JAX state fields of the true last state (``features``) and
  ``success``. Termination and truncation stay separate (a time limit is never a termination).
- ``GymnaxEnv`` (``gymnax/<id>``: classic control, bsuite, MinAtar) and ``MiniGridEnv``
  (``minigrid/<id>``: xminigrid's MiniGrid tasks, DoorKey-5x5 … 16x16 and the others).
  ``features(state)`` are the named state fields reward terms read: gymnax's state dataclass
  fields; for MiniGrid ``agent_pos`` (x, y), ``agent_dir``, ``has_key``, ``door_open``,
  ``key_pos``/``door_pos``/``goal_pos`` with ``*_present`` flags, ``at_goal``.
- ``JaxVectorEnv``: ``num_envs`` copies as a Gymnasium ``VectorEnv`` (``SAME_STEP`` autoreset,
  one jitted call per step), so numpy reward terms, our torch PPO and SB3 run on these envs;
  ``info`` carries the features (``agent_pos``, ``inventory`` ...) the numpy terms read.
- ``JaxGymEnv``: one env as a ``gymnasium.Env`` (what ``rewardlab.make("minigrid/...")`` returns).
- ``make_env(name)``: a ``JaxEnv`` from ``gymnax/<id>`` or ``minigrid/<id>``.

>>> env = make_env("gymnax/CartPole-v1")
>>> obs, state = env.reset(jax.random.PRNGKey(0), env.default_params)
>>> obs, state, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(1), state, 1, env.default_params)
>>> float(reward), bool(terminated), sorted(info)
(1.0, False, ['features', 'final_obs', 'success'])
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode

from rewardlab.errors import InvalidArgument
from rewardlab.jax.manifest import GYMNAX_TASKS, MINIGRID_TASKS, XLAND_TASKS  # the registered names, one list

__all__ = [
    "JaxEnv", "GymnaxEnv", "MiniGridEnv", "XLandEnv", "JaxVectorEnv", "JaxGymEnv", "make_env", "GYMNAX_TASKS",
    "MINIGRID_TASKS", "XLAND_TASKS", "make_gymnax", "make_minigrid", "make_xland", "make_gymnax_vec",
    "make_minigrid_vec", "make_xland_vec",
]

class JaxEnv:
    """One env as pure functions; subclasses implement ``_reset``, ``_step`` and ``features``.

    Attributes set by subclasses: ``name``, ``default_params``, ``obs_shape``, ``obs_dtype``,
    ``obs_low``/``obs_high`` (scalars or arrays), ``num_actions`` (None for continuous actions),
    ``action_shape``, ``action_low``/``action_high``, ``has_success`` (whether ``success`` means
    anything), ``max_steps`` (the episode's time limit), ``count_features``.
    """

    name: str
    default_params: Any
    obs_shape: tuple[int, ...]
    obs_dtype: Any
    obs_low: Any
    obs_high: Any
    num_actions: int | None
    action_shape: tuple[int, ...] = ()
    action_low: Any = None
    action_high: Any = None
    has_success: bool = False
    max_steps: int
    count_features: dict[str, tuple[int, int]] = {}
    """discrete state fields a count-based term may count, with their (width, height) domain"""

    def _reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        raise NotImplementedError

    def _step(self, key: jax.Array, state: Any, action: Any, params: Any
              ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array]:
        """One step without reset: ``(obs, state, reward, terminated, truncated)``."""
        raise NotImplementedError

    def features(self, state: Any) -> dict[str, jax.Array]:
        """The named JAX state fields reward terms may read."""
        raise NotImplementedError

    def success(self, state: Any, reward: jax.Array, terminated: jax.Array) -> jax.Array:
        """Whether the step solved the task (False where the env has no notion of success)."""
        return jnp.zeros((), bool)

    @property
    def eval_params(self) -> Any:
        """The params evaluation runs on: ``default_params``, except where an env holds tasks
        out of training (``XLandEnv`` with ``ruleset_split: train``: the held-out rulesets)."""
        return self.default_params

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        return self._reset(key, self.default_params if params is None else params)

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs, nstate, reward, terminated, truncated = self._step(key_step, state, action, params)
        terminated = jnp.asarray(terminated, bool)
        # A step that both ends the MDP and hits the time limit is a termination (no bootstrap).
        truncated = jnp.asarray(truncated, bool) & ~terminated
        done = terminated | truncated
        info = {"final_obs": obs, "features": self.features(nstate),
                "success": self.success(nstate, reward, terminated)}
        obs_r, state_r = self._reset(key_reset, params)
        state = jax.tree_util.tree_map(lambda r, s: jnp.where(done, r, s), state_r, nstate)
        obs = jnp.where(done, obs_r, obs)
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, truncated, info


class GymnaxEnv(JaxEnv):
    """A gymnax env; ``env_kwargs`` replace fields of its ``EnvParams`` (e.g. ``max_steps_in_episode``).

    gymnax's own ``step`` resets too, but it builds the info rewardlab needs only partly; this
    class calls ``step_env`` and ``is_truncated`` and resets in ``JaxEnv.step``.
    """

    def __init__(self, env_id: str, **env_kwargs: Any):
        import gymnax

        if env_id not in gymnax.registered_envs:
            raise InvalidArgument(f"unknown gymnax env {env_id!r}; registered: {', '.join(gymnax.registered_envs)}")
        self.env, params = gymnax.make(env_id)
        try:
            self.default_params = params.replace(**env_kwargs)
        except (TypeError, ValueError) as e:
            fields = [f.name for f in dataclasses.fields(params)]
            raise InvalidArgument(f"gymnax/{env_id}: bad env kwargs {sorted(env_kwargs)}; "
                                  f"its params are: {', '.join(fields)}") from e
        self.name = f"gymnax/{env_id}"
        ospace = self.env.observation_space(self.default_params)
        self.obs_shape, self.obs_dtype = tuple(ospace.shape), np.dtype(ospace.dtype)
        self.obs_low, self.obs_high = np.asarray(ospace.low), np.asarray(ospace.high)
        aspace = self.env.action_space(self.default_params)
        if hasattr(aspace, "n"):
            self.num_actions = int(aspace.n)
        else:
            self.num_actions = None
            self.action_shape = tuple(aspace.shape)
            self.action_low, self.action_high = np.asarray(aspace.low), np.asarray(aspace.high)
        self.max_steps = int(self.default_params.max_steps_in_episode)

    def _reset(self, key, params):
        obs, state = self.env.reset_env(key, params)
        return jnp.asarray(obs, self.obs_dtype), state

    def _step(self, key, state, action, params):
        obs, nstate, reward, terminated, _ = self.env.step_env(key, state, action, params)
        truncated = self.env.is_truncated(nstate, params)
        return jnp.asarray(obs, self.obs_dtype), nstate, reward, terminated, truncated

    def features(self, state):
        return {f.name: jnp.asarray(getattr(state, f.name)) for f in dataclasses.fields(state)}


class MiniGridEnv(JaxEnv):
    """An xminigrid MiniGrid task. Observations are the ``(view, view, 2)`` (tile, colour) grid in
    front of the agent; with ``show_carried`` (default, as in Farama's MiniGrid) the carried
    object is drawn on the agent's own cell, so the policy can see that it holds the key.
    ``env_kwargs`` replace fields of xminigrid's ``EnvParams`` (``max_steps``, ``view_size``).

    The env reward is xminigrid's (as MiniGrid's): ``1 − 0.9·t/max_steps`` on reaching the goal,
    else 0; ``success`` is a terminating step with a positive reward.
    """

    has_success = True

    def __init__(self, env_id: str, *, show_carried: bool = True, **env_kwargs: Any):
        import xminigrid

        if env_id not in xminigrid.registered_environments() or not env_id.startswith("MiniGrid-"):
            raise InvalidArgument(f"unknown MiniGrid env {env_id!r}; valid: {', '.join(MINIGRID_TASKS)} "
                                  f"and the XLand ones: {', '.join(XLAND_TASKS)}")
        self._setup(env_id, show_carried, env_kwargs)

    def _setup(self, env_id: str, show_carried: bool, env_kwargs: dict[str, Any]) -> None:
        import xminigrid
        from xminigrid.core.constants import NUM_COLORS, NUM_TILES, Tiles

        try:
            self.env, self.default_params = xminigrid.make(env_id, **env_kwargs)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"minigrid/{env_id}: bad env kwargs {sorted(env_kwargs)} ({e})") from e
        self.name = f"minigrid/{env_id}"
        self.show_carried = bool(show_carried)
        v = self.default_params.view_size
        self.obs_shape, self.obs_dtype = (v, v, 2), np.dtype(np.uint8)
        self.obs_low, self.obs_high = 0, max(NUM_TILES, NUM_COLORS) - 1
        self.num_tiles, self.num_colors = NUM_TILES, NUM_COLORS
        self.num_actions = int(self.env.num_actions(self.default_params))
        self.max_steps = int(self.default_params.max_steps)
        self.count_features = {"agent_pos": (self.default_params.width, self.default_params.height)}
        self._t = Tiles

    def _obs(self, timestep: Any) -> jax.Array:
        obs = timestep.observation
        if self.show_carried:
            v = obs.shape[0]
            obs = obs.at[v - 1, v // 2].set(timestep.state.agent.pocket)
        return obs.astype(jnp.uint8)

    def _reset(self, key, params):
        ts = self.env.reset(params, key)
        return self._obs(ts), ts

    def _step(self, key, state, action, params):
        ts = self.env.step(params, state, action)
        terminated = ts.discount == 0.0  # xminigrid: discount 0 only when the goal check ended the episode
        truncated = ts.state.step_num >= params.max_steps
        return self._obs(ts), ts, ts.reward, terminated, truncated

    def _find(self, tiles: jax.Array, ids: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
        mask = jnp.isin(tiles, jnp.asarray(ids, tiles.dtype))
        flat = jnp.argmax(mask.reshape(-1))
        row, col = jnp.divmod(flat, tiles.shape[1])
        return jnp.stack([col, row]).astype(jnp.int32), mask.any()

    def features(self, state):
        t = self._t
        tiles = state.state.grid[..., 0]
        pos = state.state.agent.position
        key_pos, key_present = self._find(tiles, (t.KEY,))
        door_pos, door_present = self._find(tiles, (t.DOOR_LOCKED, t.DOOR_CLOSED, t.DOOR_OPEN))
        goal_pos, goal_present = self._find(tiles, (t.GOAL,))
        return {
            "agent_pos": jnp.stack([pos[1], pos[0]]).astype(jnp.int32),  # (x, y) = (column, row)
            "agent_dir": jnp.asarray(state.state.agent.direction, jnp.int32),
            "has_key": state.state.agent.pocket[0] == t.KEY,
            "door_open": (tiles == t.DOOR_OPEN).any(),
            "key_pos": key_pos, "key_present": key_present,
            "door_pos": door_pos, "door_present": door_present,
            "goal_pos": goal_pos, "goal_present": goal_present,
            "at_goal": tiles[pos[0], pos[1]] == t.GOAL,
            "grid_size": jnp.asarray(tiles.shape, jnp.int32)[::-1],  # (width, height)
        }

    def success(self, state, reward, terminated):
        return terminated & (reward > 0)


@functools.cache
def _xland_params_class() -> type:
    """xminigrid's ``XLandEnvParams`` plus the benchmark (a pytree field) each reset samples from."""
    from flax import struct
    from xminigrid.envs.xland import XLandEnvParams

    class XLandParams(XLandEnvParams):
        benchmark: Any = struct.field(pytree_node=True, default=None)

    return XLandParams


class XLandEnv(MiniGridEnv):
    """An xminigrid XLand env (``XLand-MiniGrid-R1-9x9`` ...) over a benchmark of rulesets: every
    reset samples a ruleset (inside ``reset``, in JAX, so it vmaps and jits), places its objects
    and lets xminigrid's goal and rules run the episode. Reward, termination and ``success``
    are xminigrid's, as for ``MiniGridEnv``: ``1 − 0.9·t/max_steps`` when the goal is reached.

    Rulesets (``rewardlab.jax.xland_rulesets``), one source:

    - ``rulesets: generated`` (default): ``num_rulesets`` rulesets of chain depth ``chain_depth``
      with ``num_distractors`` distractor objects, drawn by our generator with ``ruleset_seed``
      and cached under ``~/.cache/rewardlab/xland``;
    - ``benchmark: <name>``: an xminigrid benchmark (``trivial-21k`` ...) already in
      ``$XLAND_MINIGRID_DATA``; never downloaded here (the error says what to fetch);
    - ``benchmark_path: <file>``: a benchmark file in xminigrid's bz2 pickle format.

    ``ruleset_split``: ``train`` (default) trains on all but a held-out ``test_fraction`` of the
    rulesets, and ``eval_params`` (what ``jax_ppo`` evaluates on) samples the held-out ones;
    ``test`` runs on the held-out ones, ``all`` on every ruleset (training and evaluation alike).
    The goal is not in the observation (as in XLand-MiniGrid, built for agents with memory) unless
    ``goal_obs``: then one row is appended to the view, ``(goal id, 0)`` (ids above 12 as ``(12, id −
    12)``) and the goal's one or two (tile, colour) pairs, so a memoryless policy can condition on
    the goal (the rules stay hidden): observations are ``(view + 1, view, 2)``.

    >>> env = XLandEnv("XLand-MiniGrid-R1-9x9", num_rulesets=8, chain_depth=0)
    >>> env.obs_shape, env.num_train_rulesets, env.num_eval_rulesets
    ((5, 5, 2), 6, 2)
    """

    def __init__(self, env_id: str, *, rulesets: Literal["generated"] = "generated", benchmark: str | None = None,
                 benchmark_path: str | None = None, num_rulesets: int = 256, chain_depth: int = 1,
                 ruleset_seed: int = 0, num_distractors: int = 2,
                 ruleset_split: Literal["train", "test", "all"] = "train", test_fraction: float = 0.2,
                 show_carried: bool = True, goal_obs: bool = False, **env_kwargs: Any):
        import xminigrid

        from rewardlab.jax import xland_rulesets as xr

        if env_id not in xminigrid.registered_environments() or env_id not in XLAND_TASKS:
            raise InvalidArgument(f"unknown XLand env {env_id!r}; valid: {', '.join(XLAND_TASKS)}")
        if rulesets != "generated":
            raise InvalidArgument(f"rulesets: the only value is 'generated' (for a file use benchmark_path, "
                                  f"for xminigrid's benchmarks benchmark: <name>), got {rulesets!r}")
        if benchmark is not None and benchmark_path is not None:
            raise InvalidArgument("give one of benchmark and benchmark_path, not both")
        if benchmark is not None:
            path = xr.registered_benchmark_path(benchmark)
        elif benchmark_path is not None:
            path = Path(benchmark_path)
        else:
            path = xr.generated_benchmark_path(num_rulesets, chain_depth, ruleset_seed, num_distractors)
        bench = xr.load_benchmark(path)
        train = xr.split_benchmark(bench, ruleset_split, test_fraction)
        held_out = xr.split_benchmark(bench, "test", test_fraction) if ruleset_split == "train" else train
        self.benchmark_file = str(path)
        self._setup(env_id, show_carried, env_kwargs)
        base = self.default_params
        cls = _xland_params_class()
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        as_jax = functools.partial(jax.tree_util.tree_map, jnp.asarray)
        self.default_params = cls(**fields, benchmark=as_jax(train))
        self._eval_params = cls(**fields, benchmark=as_jax(held_out))
        self.num_train_rulesets, self.num_eval_rulesets = len(train.goals), len(held_out.goals)
        self.goal_obs = bool(goal_obs)
        if self.goal_obs:
            v = self.obs_shape[1]
            self.obs_shape = (v + 1, v, 2)

    def _obs(self, timestep: Any) -> jax.Array:
        obs = super()._obs(timestep)
        if not self.goal_obs:
            return obs
        g = timestep.state.goal_encoding.astype(jnp.uint8)
        gid = jnp.stack([jnp.minimum(g[0], 12), jnp.maximum(g[0], 12) - 12]).astype(jnp.uint8)  # within [0, 12]
        row = jnp.zeros((1,) + obs.shape[1:], jnp.uint8).at[0, 0].set(gid).at[0, 1].set(g[1:3]).at[0, 2].set(g[3:5])
        return jnp.concatenate([obs, row], 0)

    @property
    def eval_params(self) -> Any:
        return self._eval_params

    def _reset(self, key, params):
        k_ruleset, k_env = jax.random.split(key)
        ruleset = params.benchmark.sample_ruleset(k_ruleset)
        ts = self.env.reset(params.replace(ruleset=ruleset), k_env)
        return self._obs(ts), ts


def make_env(name: str, **env_kwargs: Any) -> JaxEnv:
    """``gymnax/<id>`` or ``minigrid/<id>`` as a ``JaxEnv``.

    >>> make_env("minigrid/MiniGrid-DoorKey-5x5").obs_shape
    (7, 7, 2)
    """
    family, sep, task = name.partition("/")
    if family == "gymnax" and sep:
        return GymnaxEnv(task, **env_kwargs)
    if family == "minigrid" and sep and task.startswith("XLand-"):
        return XLandEnv(task, **env_kwargs)
    if family == "minigrid" and sep:
        return MiniGridEnv(task, **env_kwargs)
    raise InvalidArgument(f"JAX env names are 'gymnax/<id>' or 'minigrid/<id>', got {name!r}")


def _np_info(env: JaxEnv, features: dict[str, Any]) -> dict[str, Any]:
    """Features as numpy arrays, plus what numpy terms read: ``inventory`` ("key" when carried)."""
    out = {k: np.array(v) for k, v in features.items()}  # writable copies (consumers may edit info)
    if "has_key" in out:
        out["inventory"] = np.where(out["has_key"], "key", "").astype(object)
    return out


def _spaces(env: JaxEnv) -> tuple[gym.spaces.Box, gym.Space]:
    obs = gym.spaces.Box(np.broadcast_to(env.obs_low, env.obs_shape).astype(env.obs_dtype),
                         np.broadcast_to(env.obs_high, env.obs_shape).astype(env.obs_dtype),
                         env.obs_shape, env.obs_dtype)
    if env.num_actions is not None:
        return obs, gym.spaces.Discrete(env.num_actions)
    low = np.broadcast_to(np.asarray(env.action_low, np.float32), env.action_shape)
    high = np.broadcast_to(np.asarray(env.action_high, np.float32), env.action_shape)
    return obs, gym.spaces.Box(low, high, env.action_shape, np.float32)


class JaxVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of a ``JaxEnv`` as a Gymnasium ``VectorEnv`` (``SAME_STEP`` autoreset).

    One jitted, vmapped call per step. ``info`` has the features of the returned states
    (``agent_pos``, ``has_key``, ``inventory`` ... on MiniGrid), and on rows that ended
    ``final_obs`` and ``final_info`` (the final state's features and ``is_success``), in
    Gymnasium's vector form with ``_key`` masks, which is what ``ShapedVectorEnv`` and the
    agents read.

    >>> venv = JaxVectorEnv("minigrid/MiniGrid-DoorKey-5x5", num_envs=2)
    >>> obs, info = venv.reset(seed=0)
    >>> obs.shape, info["agent_pos"].shape, venv.single_action_space
    ((2, 7, 7, 2), (2, 2), Discrete(6))
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env: JaxEnv | str, num_envs: int = 8, **env_kwargs: Any):
        if num_envs < 1:
            raise InvalidArgument(f"num_envs must be >= 1, got {num_envs}")
        self.env = make_env(env, **env_kwargs) if isinstance(env, str) else env
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        params = self.env.default_params
        features = jax.vmap(self.env.features)

        def reset(key):
            obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)
            return obs, state, features(state)

        def step(key, state, action):
            keys = jax.random.split(key, num_envs)
            obs, state, reward, term, trunc, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
                keys, state, action, params)
            return obs, state, reward, term, trunc, info, features(state)

        self._reset, self._step = jax.jit(reset), jax.jit(step)
        self._state: Any = None
        self._key = jax.random.PRNGKey(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, sub = jax.random.split(self._key)
        obs, self._state, feats = self._reset(sub)
        return np.array(obs), _np_info(self.env, feats)

    def step(self, actions: Any):
        if self._state is None:
            raise InvalidArgument("call reset() before step()")
        actions = np.asarray(actions)
        if self.env.num_actions is not None:
            actions = actions.astype(np.int32)
        if actions.shape[:1] != (self.num_envs,):
            raise InvalidArgument(f"actions must have a leading dim of {self.num_envs}, got shape {actions.shape}")
        self._key, sub = jax.random.split(self._key)
        obs, self._state, reward, term, trunc, jinfo, feats = self._step(sub, self._state, jnp.asarray(actions))
        term, trunc = np.array(term), np.array(trunc)
        info = _np_info(self.env, feats)
        ended = term | trunc
        if ended.any():
            info["final_obs"] = np.array(jinfo["final_obs"])
            info["_final_obs"] = ended
            final = _np_info(self.env, jinfo["features"])
            if self.env.has_success:
                final["is_success"] = np.array(jinfo["success"])
            final = {**final, **{"_" + k: ended for k in final}}
            info["final_info"] = final
            info["_final_info"] = ended
        return np.array(obs), np.array(reward, np.float64), term, trunc, info


class JaxGymEnv(gym.Env):
    """One ``JaxEnv`` as a ``gymnasium.Env`` (no autoreset: call ``reset`` after an episode ends).

    >>> env = JaxGymEnv("gymnax/CartPole-v1")
    >>> obs, _ = env.reset(seed=0)
    >>> obs, r, term, trunc, info = env.step(0)
    >>> obs.shape, r, term
    ((4,), 1.0, False)
    """

    metadata = {"render_modes": []}

    def __init__(self, env: JaxEnv | str, **env_kwargs: Any):
        self.env = make_env(env, **env_kwargs) if isinstance(env, str) else env
        self.observation_space, self.action_space = _spaces(self.env)
        params = self.env.default_params
        self._reset = jax.jit(lambda k: self.env._reset(k, params))
        self._step_fn = jax.jit(lambda k, s, a: (*self.env._step(k, s, a, params), ))
        self._features = jax.jit(self.env.features)
        self._state: Any = None
        self._key = jax.random.PRNGKey(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, sub = jax.random.split(self._key)
        obs, self._state = self._reset(sub)
        return np.array(obs), self._info()

    def _info(self) -> dict[str, Any]:
        """The state fields, scalars as Python values (``inventory`` a string)."""
        return {k: v.item() if v.ndim == 0 else v for k, v in _np_info(self.env, self._features(self._state)).items()}

    def step(self, action: Any):
        if self._state is None:
            raise InvalidArgument("call reset() before step()")
        self._key, sub = jax.random.split(self._key)
        act = jnp.asarray(action, jnp.int32 if self.env.num_actions is not None else jnp.float32)
        obs, self._state, reward, term, trunc = self._step_fn(sub, self._state, act)
        terminated = bool(term)
        truncated = bool(trunc) and not terminated
        info = self._info()
        if self.env.has_success and (terminated or truncated):
            info["is_success"] = bool(terminated and float(reward) > 0)
        return np.array(obs), float(reward), terminated, truncated, info


# -- registry factories (``ENVS`` / ``VECTOR_ENVS`` in rewardlab/jax/manifest.py) ---------------
def make_gymnax(task: str, **kwargs: Any) -> JaxGymEnv:
    """``rewardlab.make("gymnax/<task>", **params)``: kwargs replace fields of gymnax's EnvParams."""
    return JaxGymEnv(GymnaxEnv(task, **kwargs))


def make_minigrid(task: str, **kwargs: Any) -> JaxGymEnv:
    """``rewardlab.make("minigrid/<task>", show_carried=True, max_steps=..., view_size=...)``."""
    return JaxGymEnv(MiniGridEnv(task, **kwargs))


def make_gymnax_vec(task: str, num_envs: int, **kwargs: Any) -> JaxVectorEnv:
    """``rewardlab.make_vec("gymnax/<task>", n)``: one jitted batched step instead of n Python envs."""
    return JaxVectorEnv(GymnaxEnv(task, **kwargs), num_envs)


def make_minigrid_vec(task: str, num_envs: int, **kwargs: Any) -> JaxVectorEnv:
    """``rewardlab.make_vec("minigrid/<task>", n)``: one jitted batched step instead of n Python envs."""
    return JaxVectorEnv(MiniGridEnv(task, **kwargs), num_envs)


def make_xland(task: str, *, rulesets: Literal["generated"] = "generated", benchmark: str | None = None,
               benchmark_path: str | None = None, num_rulesets: int = 256, chain_depth: int = 1,
               ruleset_seed: int = 0, num_distractors: int = 2,
               ruleset_split: Literal["train", "test", "all"] = "train", test_fraction: float = 0.2,
               show_carried: bool = True, goal_obs: bool = False, max_steps: int | None = None,
               view_size: int = 5) -> JaxGymEnv:
    """``rewardlab.make("minigrid/XLand-MiniGrid-<layout>", ...)``: see ``XLandEnv`` for the kwargs."""
    return JaxGymEnv(XLandEnv(task, **_xland_kwargs(locals())))


def make_xland_vec(task: str, num_envs: int, **kwargs: Any) -> JaxVectorEnv:
    """``rewardlab.make_vec("minigrid/XLand-MiniGrid-<layout>", n, ...)``: kwargs as ``make_xland``."""
    return JaxVectorEnv(XLandEnv(task, **kwargs), num_envs)


def _xland_kwargs(args: dict[str, Any]) -> dict[str, Any]:
    """A factory's arguments for ``XLandEnv`` (``max_steps: None``: xminigrid's 3·height·width)."""
    out = {k: v for k, v in args.items() if k != "task"}
    if out["max_steps"] is None:
        del out["max_steps"]
    return out
