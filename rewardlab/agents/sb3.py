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
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv

from rewardlab.agents.base import TrainCallback
from rewardlab.errors import ConfigError

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


class Sb3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over a Gymnasium vector env with ``SAME_STEP`` autoreset."""

    def __init__(self, venv: gym.vector.VectorEnv):
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None

    def reset(self):
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None  # seed only the first reset, like SB3's own VecEnvs
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, term, trunc, info = self.venv.step(self._actions)
        done = np.logical_or(term, trunc)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            final = info["final_obs"][i]
            infos[i]["terminal_observation"] = final
            # SB3 bootstraps from terminal_observation only when this flag is set.
            infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            final_info = info.get("final_info", {})
            if "is_success" in final_info and final_info.get("_is_success", np.ones(self.num_envs, bool))[i]:
                infos[i]["is_success"] = bool(final_info["is_success"][i])
        return obs, np.asarray(reward, np.float32), done, infos

    def close(self) -> None:
        self.venv.close()

    def seed(self, seed: int | None = None):
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [getattr(self.venv, method_name)(*args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._indices(indices))

    def get_images(self):
        return []

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


class ShapedEpisodeLogger(BaseCallback):
    """For SB3 code of your own: log the shaped env's episodes through SB3's logger.

    After every rollout it records ``charts/true_return``, ``charts/shaped_return``,
    ``charts/episode_length``, ``charts/success_rate`` and ``reward_terms/<name>`` (means over
    the episodes that finished), so they land in TensorBoard next to SB3's own keys::

        venv = rewardlab.make_vec("minihack/Room-5x5", 8, reward=[...], gamma=0.99)
        model = PPO("MlpPolicy", Sb3VecEnv(venv), tensorboard_log="tb")
        model.learn(50_000, callback=ShapedEpisodeLogger(venv))
    """

    def __init__(self, venv):
        super().__init__()
        if not hasattr(venv, "pop_episodes"):
            raise TypeError(f"ShapedEpisodeLogger needs a ShapedVectorEnv, got {type(venv).__name__}")
        self.venv = venv

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        from rewardlab.core.keys import episode_metrics

        for key, value in episode_metrics(self.venv.pop_episodes()).items():
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
