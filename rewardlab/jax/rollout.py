"""``ShapedVecEnv``: a batch of JAX envs with JAX reward terms and on-device episode statistics.

The counterpart of ``ShapedVectorEnv`` for the pure-JAX path, and of PureJaxRL's ``LogWrapper``:
``reset(key) -> VecState`` and ``step(key, state, actions, reward_params) -> (state, StepOut)``
are pure functions (jit, vmap and scan them). Every step computes the shaped reward from the
terms on ``(s, a, s')`` — with ``s'`` the true successor, before the automatic reset — and adds it
up per env; on the step an episode ends, ``StepOut`` carries that episode's true return (env reward
only), shaped return, per-term sums, length and success, and the sums restart at zero. Nothing
leaves the device.

>>> from rewardlab.jax.envs import make_env
>>> from rewardlab.jax.terms import build_jax_stack
>>> env = make_env("gymnax/CartPole-v1")
>>> venv = ShapedVecEnv(env, 2, build_jax_stack(["env", {"name": "step_penalty", "params": {"value": 0.25}}], env))
>>> vs = venv.reset(jax.random.PRNGKey(0))
>>> vs, out = venv.step(jax.random.PRNGKey(1), vs, jnp.zeros(2, jnp.int32), venv.stack.default_params())
>>> out.reward.tolist(), out.parts["step_penalty"].tolist()
([0.75, 0.75], [-0.25, -0.25])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rewardlab.errors import InvalidArgument
from rewardlab.jax.terms import JaxRewardStack, JaxTransition, build_jax_stack

__all__ = ["ShapedVecEnv", "VecState", "EpisodeSums", "StepOut"]


class EpisodeSums(NamedTuple):
    """Per-env running sums of the current episodes."""

    true_return: jax.Array
    shaped_return: jax.Array
    length: jax.Array
    terms: jax.Array  # (num_envs, num_terms), in ``stack.names`` order


class VecState(NamedTuple):
    env: Any          # the batched env state
    obs: jax.Array    # the current observations
    terms: dict       # the terms' per-env state
    sums: EpisodeSums


class StepOut(NamedTuple):
    """One batched step. ``ep_*`` hold the finished episode's statistics on rows where ``done``."""

    obs: jax.Array          # after the automatic reset where the episode ended
    reward: jax.Array       # the shaped reward (sum of ``parts``, clipped if the stack clips)
    reward_env: jax.Array
    parts: dict             # {term: weighted value}
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array    # the true last obs of the step
    done: jax.Array
    ep_true_return: jax.Array
    ep_shaped_return: jax.Array
    ep_length: jax.Array
    ep_terms: jax.Array
    ep_success: jax.Array


class ShapedVecEnv:
    """``num_envs`` copies of a ``JaxEnv`` with a ``JaxRewardStack`` (default: the env reward only)."""

    def __init__(self, env: Any, num_envs: int, stack: JaxRewardStack | None = None):
        if num_envs < 1:
            raise InvalidArgument(f"num_envs must be >= 1, got {num_envs}")
        self.env, self.num_envs = env, num_envs
        self.stack = stack if stack is not None else build_jax_stack(["env"], env)
        self.params = env.default_params
        self._features = jax.vmap(env.features)

    def reset(self, key: jax.Array) -> VecState:
        obs, state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(key, self.num_envs), self.params)
        n, k = self.num_envs, len(self.stack.names)
        sums = EpisodeSums(jnp.zeros(n), jnp.zeros(n), jnp.zeros(n, jnp.int32), jnp.zeros((n, k)))
        return VecState(state, obs, self.stack.init(n), sums)

    def step(self, key: jax.Array, vs: VecState, actions: jax.Array, reward_params: dict
             ) -> tuple[VecState, StepOut]:
        prev = self._features(vs.env)
        keys = jax.random.split(key, self.num_envs)
        obs, state, reward, term, trunc, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
            keys, vs.env, actions, self.params)
        tr = JaxTransition(vs.obs, actions, info["final_obs"], reward, term, trunc, prev, info["features"])
        term_states, total, parts = self.stack(vs.terms, tr, reward_params)
        done = term | trunc
        s = vs.sums
        ep = EpisodeSums(s.true_return + reward, s.shaped_return + total, s.length + 1,
                         s.terms + jnp.stack([parts[n] for n in self.stack.names], axis=1))
        out = StepOut(obs, total, reward, parts, term, trunc, info["final_obs"], done, ep.true_return,
                      ep.shaped_return, ep.length, ep.terms, info["success"])
        sums = jax.tree_util.tree_map(lambda x: jnp.where(done.reshape(done.shape + (1,) * (x.ndim - 1)), 0, x), ep)
        return VecState(state, obs, term_states, sums), out
