"""Expert policies for the ILD / behaviour-cloning demonstrations.

Contents:

- ``train_expert_ppo``: train an expert with Brax's own PPO (``brax.training.agents.ppo``) on
  CPU and return its deterministic policy ``obs -> action`` (the mode of the tanh-Gaussian);
- ``zero_policy``: the zero-action baseline the experts are compared with.

Brax 0.14.2's PPO calls ``jax.device_put_replicated``, which jax 0.10 removed;
``_brax_ppo_compat`` restores it for one device (replicate = stack a leading device axis), the
only use Brax makes of it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from rewardlab.envs.brax import make_brax_env
from rewardlab.errors import InvalidArgument

__all__ = ["train_expert_ppo", "zero_policy", "PPO_DEFAULTS"]

#: PPO settings sized for a few minutes on one CPU core (Ant: ≈ 8k env-steps/s with 128 envs).
PPO_DEFAULTS: dict[str, Any] = {
    "num_envs": 128, "batch_size": 128, "num_minibatches": 8, "unroll_length": 10, "num_updates_per_batch": 4,
    "learning_rate": 3e-4, "entropy_cost": 1e-2, "discounting": 0.97, "reward_scaling": 10.0,
    "normalize_observations": True,
}


def _brax_ppo_compat() -> None:
    if "device_put_replicated" in getattr(jax, "_deprecations", {}) or not hasattr(jax, "device_put_replicated"):
        def device_put_replicated(x: Any, devices: list) -> Any:
            stacked = jax.tree_util.tree_map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)
            return jax.device_put(stacked, devices[0]) if len(devices) == 1 else stacked

        jax.device_put_replicated = device_put_replicated


def train_expert_ppo(env_name: str, backend: str, *, episode_length: int, num_timesteps: int, seed: int = 0,
                     hidden: tuple[int, ...] = (64, 64), num_evals: int = 5, log: Callable | None = print,
                     **ppo_kwargs: Any) -> tuple[Callable[[jax.Array], jax.Array], list[tuple[int, float]]]:
    """Train a PPO expert with ``brax.training.agents.ppo.train``.

    Returns ``(policy, curve)``: the deterministic policy ``obs -> action`` (jittable, one
    observation) and the evaluation curve ``[(env_steps, mean episode return)]`` Brax reports
    (stochastic policy, ``episode_length`` steps, 32 eval envs).
    """
    if num_timesteps < 1 or episode_length < 1:
        raise InvalidArgument(f"num_timesteps and episode_length must be >= 1, got {num_timesteps}, {episode_length}")
    _brax_ppo_compat()
    with contextlib.redirect_stdout(io.StringIO()):
        from brax.training.agents.ppo import networks as ppo_networks
        from brax.training.agents.ppo import train as ppo

    env = make_brax_env(env_name, backend)
    kwargs = {**PPO_DEFAULTS, **ppo_kwargs}
    factory = functools.partial(ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=tuple(hidden),
                                value_hidden_layer_sizes=tuple(hidden))
    curve: list[tuple[int, float]] = []
    t0 = time.time()

    def progress(steps: int, metrics: dict) -> None:
        ret = float(metrics.get("eval/episode_reward", float("nan")))
        curve.append((int(steps), ret))
        if log is not None:
            log(f"ppo {time.time() - t0:7.1f} s  env steps {steps:9d}  eval return {ret:9.3f}")

    make_policy, params, _ = ppo.train(env, num_timesteps=num_timesteps, episode_length=episode_length, seed=seed,
                                       network_factory=factory, num_evals=num_evals, num_eval_envs=32,
                                       progress_fn=progress, **kwargs)
    inference = make_policy(params, deterministic=True)
    key = jax.random.PRNGKey(0)

    def policy(obs: jax.Array) -> jax.Array:
        return inference(obs, key)[0]

    return policy, curve


def zero_policy(action_size: int) -> Callable[[jax.Array], jax.Array]:
    """The zero-action policy (the baseline an expert's return is compared with).

    >>> zero_policy(3)(jnp.ones(5))
    Array([0., 0., 0.], dtype=float32)
    """
    return lambda obs: jnp.zeros(action_size, jnp.float32)
