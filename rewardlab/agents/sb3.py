"""Stable-Baselines3 agents on shaped vector envs.

``Sb3VecEnv`` adapts a Gymnasium ``SAME_STEP`` vector env (our ``ShapedVectorEnv``) to SB3's
``VecEnv`` API, so reward terms stay batched and SB3 sees the *shaped* reward, with
``terminal_observation`` and ``TimeLimit.truncated`` set so SB3 bootstraps truncated episodes.
``Sb3Agent`` wraps any SB3 algorithm behind rewardlab's ``Agent`` interface; the runner logs
``charts/true_return``, ``charts/shaped_return``, ``charts/success_rate`` and
``reward_terms/<name>`` from the shaped env's episode records.

``agent.params`` are the SB3 algorithm's constructor keywords; ``validate_sb3_params`` checks
their names against the constructor's signature and their values against its type hints
(``rewardlab check`` runs it through ``validate_agent_params`` before anything is built).
SB3 agents call no reward-term hooks (``HONOURED_HOOKS`` in ``agents/manifest.py``): the
config check refuses terms that learn through them.
"""

from __future__ import annotations

import difflib
import inspect
import pickle
import random
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from pydantic import ConfigDict, TypeAdapter, ValidationError
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv

from rewardlab.agents.base import TrainCallback
from rewardlab.core.wrappers import EpisodeRecord, merge_final_info
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = ["Sb3VecEnv", "ShapedEpisodeLogger", "Sb3Agent", "validate_sb3_params", "ppo_params", "a2c_params",
           "dqn_params", "make_ppo", "make_a2c", "make_dqn"]

ALGOS: dict[str, type[BaseAlgorithm]] = {"sb3_ppo": PPO, "sb3_a2c": A2C, "sb3_dqn": DQN}

# Constructor keywords rewardlab sets itself (gamma from agent.gamma, seed from train.seeds).
_SET_BY_REWARDLAB = ("self", "env", "gamma", "seed", "device", "verbose", "_init_setup_model")


def validate_sb3_params(agent: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against the constructor of the SB3 algorithm behind ``agent``:
    every key must be one of its keywords (not one rewardlab sets), every value of the type
    its annotation names. Returns a copy of ``params``; problems are a ``ConfigError`` naming
    ``agent.params.<key>``.

    >>> validate_sb3_params("sb3_ppo", {"n_steps": 64, "learning_rate": 3e-4})
    {'n_steps': 64, 'learning_rate': 0.0003}
    >>> validate_sb3_params("sb3_ppo", {"n_step": 64})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.n_step: unknown parameter for agent 'sb3_ppo' (SB3 PPO). Did you ...
    >>> validate_sb3_params("sb3_ppo", {"n_steps": "64"})
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.n_steps: '64' is invalid for agent 'sb3_ppo'; allowed: int
    """
    algo_cls = ALGOS[agent]
    sig = inspect.signature(algo_cls.__init__)
    valid = [p for p in sig.parameters if p not in _SET_BY_REWARDLAB]
    for key, value in params.items():
        if key in _SET_BY_REWARDLAB and key in sig.parameters:
            raise ConfigError(f"agent.params.{key}: set by rewardlab for agent {agent!r} (gamma from agent.gamma, "
                              "seed from train.seeds; device cpu, verbose 0)")
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"agent.params.{key}: unknown parameter for agent {agent!r} (SB3 "
                              f"{algo_cls.__name__}).{hint} Valid: {', '.join(valid)}")
        annotation = sig.parameters[key].annotation
        if annotation is inspect.Parameter.empty:
            continue
        try:
            adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
        except Exception:  # noqa: BLE001 - an annotation pydantic cannot express: the constructor checks it
            continue
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError as e:
            allowed = inspect.formatannotation(annotation)
            raise ConfigError(f"agent.params.{key}: {value!r} is invalid for agent {agent!r}; "
                              f"allowed: {allowed}") from e
    return dict(params)


def ppo_params(params: dict[str, Any]) -> dict[str, Any]:
    """``sb3_ppo``'s params check (see ``validate_sb3_params``)."""
    return validate_sb3_params("sb3_ppo", params)


def a2c_params(params: dict[str, Any]) -> dict[str, Any]:
    """``sb3_a2c``'s params check (see ``validate_sb3_params``)."""
    return validate_sb3_params("sb3_a2c", params)


def dqn_params(params: dict[str, Any]) -> dict[str, Any]:
    """``sb3_dqn``'s params check (see ``validate_sb3_params``)."""
    return validate_sb3_params("sb3_dqn", params)

# SB3's train/... keys -> rewardlab's losses/... keys (CleanRL names)
_LOSS_KEYS = {
    "train/policy_gradient_loss": "losses/policy_loss",
    "train/value_loss": "losses/value_loss",
    "train/entropy_loss": "losses/entropy_loss",
    "train/approx_kl": "losses/approx_kl",
    "train/clip_fraction": "losses/clipfrac",
    "train/explained_variance": "losses/explained_variance",
    "train/learning_rate": "charts/learning_rate",
    "train/loss": "losses/loss",
    "train/policy_loss": "losses/policy_loss",
}


def _split_info(info: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium's vector-form info (arrays plus ``_key`` masks) as SB3's list of per-env dicts."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get("_" + key)
        rows = range(n) if mask is None else np.flatnonzero(mask)
        if isinstance(value, dict):
            parts = _split_info(value, n)
            for i in rows:
                out[i][key] = parts[i]
        elif isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n:
            for i in rows:
                v = value[i]
                out[i][key] = v.item() if isinstance(v, np.generic) else v
        else:  # not batched (a scalar a vector env put there): every env sees it
            for i in rows:
                out[i][key] = value
    return out


class Sb3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over a Gymnasium vector env with ``SAME_STEP`` autoreset.

    - SB3 sees the env's reward (the shaped one under ``ShapedVectorEnv``); each ended episode
      carries ``terminal_observation`` and ``TimeLimit.truncated``, so time-outs bootstrap.
    - The per-env infos are the vector info split per env (an ended env gets its final-step
      info), so ``reward_terms``, ``reward_env`` and ``episode_stats`` reach SB3 callbacks.
    - Every ended episode gets Monitor's ``episode`` record (``r``, ``l``, ``t``) with the
      **true** return (``episode_stats["true_return"]``; the env's own reward when the env is
      not shaped): SB3's ``rollout/ep_rew_mean`` and ``evaluate_policy`` report what the task
      pays, not the shaped return. That is why ``env_is_wrapped(Monitor)`` answers True.
    - ``get_attr``/``set_attr``/``env_method`` act on the sub-envs at ``indices`` (a
      ``SyncVectorEnv``'s own envs); ``get_images`` returns their frames (``render_mode=
      "rgb_array"``), so ``VecVideoRecorder`` records.
    """

    def __init__(self, venv: gym.vector.VectorEnv):
        mode = venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.SAME_STEP:
            raise InvalidArgument(f"Sb3VecEnv needs a vector env with SAME_STEP autoreset (SB3's convention), "
                                  f"got {getattr(mode, 'name', mode)}: make it with make_vec(..., "
                                  "autoreset_mode=AutoresetMode.SAME_STEP)")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self._returns = np.zeros(self.num_envs, np.float64)  # env-reward sums, for unshaped envs
        self._lengths = np.zeros(self.num_envs, np.int64)
        self._t0 = time.time()

    def reset(self):
        obs, info = self.venv.reset(seed=self._seed)
        self._seed = None  # seed only the first reset, like SB3's own VecEnvs
        self.reset_infos = _split_info(info, self.num_envs)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, term, trunc, info = self.venv.step(self._actions)
        term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
        done = term | trunc
        env_reward = np.asarray(info.get("reward_env", reward), np.float64)
        self._returns += env_reward
        self._lengths += 1
        stats = info.get("episode_stats")
        stats_mask = info.get("_episode_stats", np.zeros(self.num_envs, bool))
        if done.any():
            # Rows that ended carry the reset info of their next episode: show SB3 the final one.
            per_env = _split_info(merge_final_info(info, info.get("final_info", {}), done), self.num_envs)
        else:
            per_env = _split_info(info, self.num_envs)
        for i in np.flatnonzero(done):
            infos_i = per_env[i]
            infos_i.pop("final_obs", None)
            infos_i.pop("final_info", None)
            infos_i["terminal_observation"] = info["final_obs"][i]
            # SB3 bootstraps from terminal_observation only when this flag is set.
            infos_i["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            if "is_success" in infos_i:
                infos_i["is_success"] = bool(infos_i["is_success"])
            if stats is not None and stats_mask[i]:
                record = {
                    "true_return": float(stats["true_return"][i]),
                    "shaped_return": float(stats["shaped_return"][i]),
                    "length": int(stats["length"][i]),
                    "terms": {name: float(v[i]) for name, v in stats["terms"].items()},
                }
                infos_i["episode_stats"] = record
                true_return, length = record["true_return"], record["length"]
            else:
                true_return, length = float(self._returns[i]), int(self._lengths[i])
            infos_i["episode"] = {"r": round(true_return, 6), "l": length, "t": round(time.time() - self._t0, 6)}
            self._returns[i] = 0.0
            self._lengths[i] = 0
        for i in np.flatnonzero(~done):
            per_env[i].pop("episode_stats", None)
        return obs, np.asarray(reward, np.float32), done, per_env

    def close(self) -> None:
        self.venv.close()

    def seed(self, seed: int | None = None):
        self._seed = seed
        return [seed] * self.num_envs

    # -- per-env access ------------------------------------------------------------------
    def _sub_envs(self) -> list[gym.Env] | None:
        """The single envs of a ``SyncVectorEnv`` (None for process-based or batched vector envs)."""
        envs = getattr(self.venv.unwrapped, "envs", None)
        return list(envs) if isinstance(envs, (list, tuple)) else None

    def _whole_vector(self, what: str, indices) -> Any:
        """The vector env itself, for an operation only it can do on all envs at once."""
        if self._indices(indices) != list(range(self.num_envs)):
            raise InvalidArgument(f"{what} on a subset of envs needs a SyncVectorEnv; "
                                  f"{type(self.venv.unwrapped).__name__} runs it on all envs only")
        return self.venv.unwrapped

    def get_attr(self, attr_name, indices=None):
        envs = self._sub_envs()
        if envs is not None:
            return [envs[i].get_wrapper_attr(attr_name) for i in self._indices(indices)]
        vec = self.venv.unwrapped
        if hasattr(vec, "get_attr") and not hasattr(vec, "envs"):
            try:
                values = vec.get_attr(attr_name)
            except AttributeError:
                values = None
            if values is not None:
                return [values[i] for i in self._indices(indices)]
        # a batched vector env (one object for all envs): its own attribute, for each index
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        envs = self._sub_envs()
        if envs is None:
            self._whole_vector("set_attr", indices).set_attr(attr_name, value)
            return
        for i in self._indices(indices):
            envs[i].set_wrapper_attr(attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        envs = self._sub_envs()
        if envs is None:
            return list(self._whole_vector("env_method", indices).call(method_name, *method_args, **method_kwargs))
        return [envs[i].get_wrapper_attr(method_name)(*method_args, **method_kwargs) for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        from stable_baselines3.common.env_util import is_wrapped
        from stable_baselines3.common.monitor import Monitor

        if issubclass(wrapper_class, Monitor):
            return [True] * len(self._indices(indices))  # the episode records above (true return)
        envs = self._sub_envs()
        if envs is None:
            return [False] * len(self._indices(indices))
        return [is_wrapped(envs[i], wrapper_class) for i in self._indices(indices)]

    def get_images(self):
        if self.render_mode != "rgb_array":
            warnings.warn(f"The render mode is {self.render_mode}, but get_images needs 'rgb_array' "
                          "(make the envs with render_mode='rgb_array')", stacklevel=2)
            return [None] * self.num_envs
        envs = self._sub_envs()
        if envs is not None:
            return [env.render() for env in envs]
        frames = self.venv.render()
        return [None] * self.num_envs if frames is None else list(frames)

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [int(indices)] if isinstance(indices, (int, np.integer)) else [int(i) for i in indices]


class ShapedEpisodeLogger(BaseCallback):
    """For SB3 code of your own: log the shaped env's episodes through SB3's logger.

    After every rollout it records ``charts/true_return``, ``charts/shaped_return``,
    ``charts/episode_length``, ``charts/success_rate`` and ``reward_terms/<name>`` (means over
    the episodes that finished), so they land in TensorBoard next to SB3's own keys. It reads
    ``info["episode_stats"]`` from the per-env infos, so it works with any SB3 ``VecEnv``
    whose envs are shaped by rewardlab: ``Sb3VecEnv`` or SB3's own (``make_vec_env`` with
    ``wrapper_class=ShapedEnv``)::

        venv = rewardlab.make_vec("minihack/Room-5x5", 8, reward=[...], gamma=0.99)
        model = PPO("MlpPolicy", Sb3VecEnv(venv), tensorboard_log="tb")
        model.learn(50_000, callback=ShapedEpisodeLogger())

    ``venv`` is optional: given a ``ShapedVectorEnv`` (it has ``pop_episodes``), the records
    come from its queue instead, the ones the runner logs.
    """

    def __init__(self, venv: Any = None):
        super().__init__()
        self.venv = venv if hasattr(venv, "pop_episodes") else None
        self._episodes: list[EpisodeRecord] = []
        self._warned_monitor = False

    def _on_step(self) -> bool:
        if self.venv is not None:
            return True
        infos, dones = self.locals.get("infos", ()), self.locals.get("dones")
        for i, info in enumerate(infos):
            if "episode_stats" not in info:
                if dones is not None and dones[i]:
                    raise InvalidArgument(
                        f"ShapedEpisodeLogger: env {i} ended an episode without info['episode_stats']; its env is "
                        "not shaped by rewardlab (build it with rewardlab.make(..., reward=[...]), "
                        "make_vec_env(..., wrapper_class=rewardlab.ShapedEnv) or Sb3VecEnv(rewardlab.make_vec(...)))")
                continue
            stats = info["episode_stats"]
            success = info.get("is_success")
            self._episodes.append(EpisodeRecord(
                env_id=i, true_return=float(stats["true_return"]), shaped_return=float(stats["shaped_return"]),
                length=int(stats["length"]), success=None if success is None else float(success),
                terms={k: float(v) for k, v in stats["terms"].items()}))
            self._check_monitor(info, stats)
        return True

    def _check_monitor(self, info: dict[str, Any], stats: dict[str, Any]) -> None:
        """Warn once when SB3's ``episode`` record holds the shaped return (a Monitor above the shaping)."""
        ep = info.get("episode")
        if self._warned_monitor or not isinstance(ep, dict) or "r" not in ep:
            return
        if not np.isclose(float(ep["r"]), float(stats["true_return"]), atol=1e-5):
            self._warned_monitor = True
            warnings.warn("SB3's episode record (rollout/ep_rew_mean, evaluate_policy) holds the shaped return "
                          f"({float(ep['r']):.4g}), not the true one ({float(stats['true_return']):.4g}): a Monitor "
                          "sits above the shaping wrapper. Shape below it: make_vec_env(env_id, "
                          "wrapper_class=rewardlab.ShapedEnv, wrapper_kwargs={'stack': [...]})", stacklevel=2)

    def _on_rollout_end(self) -> None:
        from rewardlab.core.keys import episode_metrics

        if self.venv is not None:
            episodes = self.venv.pop_episodes()
        else:
            episodes, self._episodes = self._episodes, []
        for key, value in episode_metrics(episodes).items():
            self.logger.record(key, value)


class _IterationCallback(BaseCallback):
    """Calls the runner after every rollout+update, with SB3's training losses."""

    def __init__(self, target: TrainCallback):
        super().__init__()
        self.target = target
        self._first = True
        self._continue = True

    def _report(self) -> None:
        values = self.model.logger.name_to_value
        metrics = {_LOSS_KEYS[k]: float(v) for k, v in values.items() if k in _LOSS_KEYS}
        self._continue = bool(self.target.on_iteration(self.model.num_timesteps, metrics))

    def _on_rollout_start(self) -> None:
        # A rollout starts after the previous update: report that iteration.
        if not self._first:
            self._report()
        self._first = False

    def _on_step(self) -> bool:
        return self._continue

    def _on_training_end(self) -> None:
        self._report()


class Sb3Agent:
    """Any SB3 algorithm behind rewardlab's ``Agent`` interface."""

    def __init__(self, agent: str, venv: gym.vector.VectorEnv, *, gamma: float, seed: int,
                 params: dict[str, Any]):
        params = validate_sb3_params(agent, dict(params or {}))
        algo_cls = ALGOS[agent]
        policy = params.pop("policy", None) or (
            "MultiInputPolicy" if isinstance(venv.single_observation_space, gym.spaces.Dict) else "MlpPolicy"
        )
        self.algo_cls, self.venv, self.seed = algo_cls, venv, seed
        self.vec = Sb3VecEnv(venv)
        try:
            self.model = algo_cls(policy, self.vec, gamma=gamma, seed=seed, device="cpu", verbose=0, **params)
        except (TypeError, ValueError, AssertionError) as e:
            raise ConfigError(f"agent.params for SB3 {algo_cls.__name__}: {e}") from e
        self.model.set_logger(Logger(folder=None, output_formats=[]))  # the runner does all logging

    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    def learn(self, total_steps: int, callback: TrainCallback) -> None:
        remaining = total_steps - self.num_timesteps
        if remaining <= 0:
            return
        # log_interval=None: SB3 never dumps (and so never clears) its logger values.
        self.model.learn(remaining, callback=_IterationCallback(callback), log_interval=None,
                         reset_num_timesteps=False)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=deterministic)
        return action

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save(path / "model.zip")
        # SB3 uses the global RNGs; keep them so a resumed run continues the same streams.
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate()}
        (path / "rng.pkl").write_bytes(pickle.dumps(rng))

    def load(self, path: Path) -> None:
        path = Path(path)
        self.model = self.algo_cls.load(path / "model.zip", env=self.vec, device="cpu")
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        rng = pickle.loads((path / "rng.pkl").read_bytes())
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["random"])


def make_ppo(venv, *, gamma: float, seed: int, params: dict[str, Any]) -> Sb3Agent:
    return Sb3Agent("sb3_ppo", venv, gamma=gamma, seed=seed, params=params)


def make_a2c(venv, *, gamma: float, seed: int, params: dict[str, Any]) -> Sb3Agent:
    return Sb3Agent("sb3_a2c", venv, gamma=gamma, seed=seed, params=params)


def make_dqn(venv, *, gamma: float, seed: int, params: dict[str, Any]) -> Sb3Agent:
    return Sb3Agent("sb3_dqn", venv, gamma=gamma, seed=seed, params=params)
