"""``jax_ppo``: a whole PPO training run as one pure JAX function (after PureJaxRL's ``ppo.py``).

``make_train(env, stack, cfg, ...)`` returns a ``JaxPPO`` whose ``train(key, reward_params)`` is
pure: ``jax.jit(jax.vmap(ppo.train))(keys, params)`` trains one run per (seed, reward variant)
in one compiled program. Three nested ``lax.scan``s — env steps in a rollout, minibatches in an
epoch, updates in the run — whose bodies are the named functions below, each tested on its own:

- ``rollout_step``: one batched env step with the policy (the rollout scan's body);
- ``compute_gae``: GAE(λ) of a time-major rollout (a reverse scan; same contract as
  ``rewardlab.core.returns.compute_gae``: truncated rows bootstrap ``γ·V(final_obs)``,
  terminated rows nothing, and the recursion stops at either);
- ``ppo_loss``: the clipped surrogate + value loss − entropy bonus of one minibatch;
- ``minibatch_update``: one gradient step (the minibatch scan's body);
- ``update_step``: rollout → GAE → ``n_epochs`` × ``n_minibatches`` steps (the outer scan's body).

The runs are cut into chunks (``run(state, reward_params, n_updates)``) so the runner can log,
evaluate and checkpoint between them; a run split into chunks computes exactly what one
``train`` call does. Everything that differs between runs — the seed's key and every numeric
reward parameter — is an argument, never a closed-over constant.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab.errors import ConfigError
from rewardlab.jax.config import JaxPPOConfig
from rewardlab.jax.rollout import ShapedVecEnv, StepOut, VecState

__all__ = [
    "Rollout", "TrainState", "JaxPPO", "make_train", "orthogonal", "init_policy", "policy_apply", "encode_obs",
    "rollout_step", "compute_gae", "ppo_loss", "minibatch_update", "update_step", "episode_metrics",
]


# -- the network ------------------------------------------------------------------------------
def orthogonal(key: jax.Array, n_in: int, n_out: int, scale: float = 1.0) -> jax.Array:
    """A random ``(n_in, n_out)`` matrix with orthonormal columns (or rows), times ``scale``:
    Gram–Schmidt (twice, for float32 accuracy) of a Gaussian matrix, which is Haar-distributed like
    the QR-based ``jax.nn.initializers.orthogonal``. Not that one: its batched LAPACK QR deadlocked
    under ``vmap`` over seeds on this 2-core CPU (jaxlib 0.10.2, ``OrthogonalQr`` in ``ParallelBatchMap``).

    >>> w = orthogonal(jax.random.PRNGKey(0), 6, 3)
    >>> bool(jnp.allclose(w.T @ w, jnp.eye(3), atol=1e-5))
    True
    """
    n, k = max(n_in, n_out), min(n_in, n_out)
    a = jax.random.normal(key, (n, k), jnp.float32)

    def body(q, i):
        v = a[:, i]
        for _ in range(2):
            v = v - q @ (q.T @ v)  # columns not yet filled are zero
        return q.at[:, i].set(v / jnp.linalg.norm(v)), None

    q, _ = jax.lax.scan(body, jnp.zeros_like(a), jnp.arange(k))
    return scale * (q if n_in >= n_out else q.T)


def _dense_init(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict:
    return {"w": orthogonal(key, n_in, n_out, scale), "b": jnp.zeros((n_out,), jnp.float32)}


def _mlp_init(key: jax.Array, sizes: list[int], last_scale: float) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense_init(k, a, b, last_scale if i == len(sizes) - 2 else float(np.sqrt(2)))
            for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True))]


def _mlp(layers: list[dict], x: jax.Array, activation: str) -> jax.Array:
    act = jnp.tanh if activation == "tanh" else jax.nn.relu
    for layer in layers[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def init_policy(key: jax.Array, obs_dim: int, num_actions: int, hidden: tuple[int, ...]) -> dict:
    """Separate actor and critic MLPs (orthogonal init: √2 hidden, 0.01 logits, 1 value), as in the PPO core."""
    ka, kc = jax.random.split(key)
    return {"actor": _mlp_init(ka, [obs_dim, *hidden, num_actions], 0.01),
            "critic": _mlp_init(kc, [obs_dim, *hidden, 1], 1.0)}


def policy_apply(params: dict, x: jax.Array, activation: str = "tanh") -> tuple[jax.Array, jax.Array]:
    """``(logits, value)`` of encoded observations ``x`` (leading batch dims kept)."""
    return _mlp(params["actor"], x, activation), _mlp(params["critic"], x, activation)[..., 0]


def encode_obs(obs: jax.Array, encoding: str, n_dims: int, onehot_sizes: tuple[int, ...] = ()) -> jax.Array:
    """Observations ``(..., *obs_shape)`` → ``(..., features)`` floats. ``onehot``: the last axis holds
    categorical channels (MiniGrid's tile and colour ids), each one-hot encoded with its size."""
    lead = obs.shape[: obs.ndim - n_dims]
    if encoding == "onehot":
        parts = [jax.nn.one_hot(obs[..., i], n, dtype=jnp.float32) for i, n in enumerate(onehot_sizes)]
        return jnp.concatenate(parts, -1).reshape(*lead, -1)
    return obs.astype(jnp.float32).reshape(*lead, -1)


# -- data carried through the scans -----------------------------------------------------------
class Rollout(NamedTuple):
    """One rollout, time-major ``(n_steps, num_envs, ...)``."""

    obs: jax.Array           # encoded observations the actions were taken in
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array        # the shaped reward
    terminated: jax.Array
    truncated: jax.Array
    final_value: jax.Array   # V(true final obs), used on truncated rows only


class TrainState(NamedTuple):
    params: dict
    opt_state: Any
    env: VecState
    key: jax.Array
    update: jax.Array        # updates done so far (int32)


@dataclass(frozen=True)
class _Static:
    """What the scan bodies need that is not traced: shapes, the env, the config."""

    venv: ShapedVecEnv
    cfg: JaxPPOConfig
    gamma: float
    encoding: str
    n_dims: int
    onehot_sizes: tuple[int, ...]
    num_updates: int
    tx: Any

    def encode(self, obs: jax.Array) -> jax.Array:
        return encode_obs(obs, self.encoding, self.n_dims, self.onehot_sizes)

    def forward(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return policy_apply(params, self.encode(obs), self.cfg.activation)


# -- scan bodies ------------------------------------------------------------------------------
def rollout_step(carry: tuple, key: jax.Array, *, static: _Static) -> tuple[tuple, tuple[Rollout, StepOut]]:
    """One batched env step: sample actions, step the shaped envs, value the true final obs."""
    params, vs, reward_params = carry
    k_act, k_env = jax.random.split(key)
    logits, value = static.forward(params, vs.obs)
    action = jax.random.categorical(k_act, logits)
    log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
    vs2, out = static.venv.step(k_env, vs, action, reward_params)
    # V(final obs) bootstraps truncated rows (the MDP did not end); terminated rows ignore it.
    _, final_value = static.forward(params, out.final_obs)
    row = Rollout(static.encode(vs.obs), action, log_prob, value, out.reward, out.terminated, out.truncated,
                  final_value)
    return (params, vs2, reward_params), (row, out)


def compute_gae(rewards: jax.Array, values: jax.Array, terminated: jax.Array, truncated: jax.Array,
                final_values: jax.Array, last_value: jax.Array, gamma: float, gae_lambda: float
                ) -> tuple[jax.Array, jax.Array]:
    """GAE(λ) of a time-major ``(T, N)`` rollout; returns ``(advantages, advantages + values)``.

    >>> r = jnp.ones((3, 1)); v = jnp.full((3, 1), 0.5); z = jnp.zeros((3, 1))
    >>> term = jnp.array([[0.0], [1.0], [0.0]])
    >>> adv, ret = compute_gae(r, v, term, z, z, jnp.array([2.0]), 0.5, 1.0)
    >>> ret[:, 0].tolist()  # [1 + .5*1, 1, 1 + .5*2]
    [1.5, 1.0, 2.0]
    """
    term, trunc = terminated.astype(jnp.float32), truncated.astype(jnp.float32)
    rewards = rewards + gamma * final_values * trunc
    nonterminal = 1.0 - jnp.maximum(term, trunc)
    next_values = jnp.concatenate([values[1:], last_value[None]], 0)
    deltas = rewards + gamma * next_values * nonterminal - values

    def body(adv, x):
        delta, nt = x
        adv = delta + gamma * gae_lambda * nt * adv
        return adv, adv

    _, advantages = jax.lax.scan(body, jnp.zeros_like(last_value), (deltas, nonterminal), reverse=True)
    return advantages, advantages + values


def ppo_loss(params: dict, batch: tuple, *, static: _Static) -> tuple[jax.Array, dict]:
    """Clipped surrogate + ``vf_coef``·value loss − ``ent_coef``·entropy of one minibatch
    ``(Rollout rows, advantages, returns)``; aux: the loss parts, approx. KL and clip fraction."""
    rows, adv, ret = batch
    cfg = static.cfg
    logits, value = policy_apply(params, rows.obs, cfg.activation)
    logp_all = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(logp_all, rows.action[:, None], -1)[:, 0]
    log_ratio = log_prob - rows.log_prob
    ratio = jnp.exp(log_ratio)
    if cfg.norm_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = jnp.maximum(-adv * ratio, -adv * jnp.clip(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
    if cfg.clip_vloss:
        clipped = rows.value + jnp.clip(value - rows.value, -cfg.clip_coef, cfg.clip_coef)
        v_loss = 0.5 * jnp.maximum((value - ret) ** 2, (clipped - ret) ** 2).mean()
    else:
        v_loss = 0.5 * ((value - ret) ** 2).mean()
    entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
    loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
    aux = {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy,
           "approx_kl": ((ratio - 1) - log_ratio).mean(),
           "clipfrac": (jnp.abs(ratio - 1) > cfg.clip_coef).astype(jnp.float32).mean()}
    return loss, aux


def minibatch_update(carry: tuple, batch: tuple, *, static: _Static) -> tuple[tuple, dict]:
    """One Adam step on one minibatch, at learning rate ``lr`` (carried: it is annealed per update)."""
    params, opt_state, lr = carry
    grads, aux = jax.grad(functools.partial(ppo_loss, static=static), has_aux=True)(params, batch)
    updates, opt_state = static.tx.update(grads, opt_state, params)
    params = jax.tree_util.tree_map(lambda p, u: p - lr * u, params, updates)
    return (params, opt_state, lr), aux


def _epoch(carry: tuple, key: jax.Array, *, static: _Static, data: tuple) -> tuple[tuple, dict]:
    """One pass over the shuffled batch in ``n_minibatches`` minibatches (the epoch scan's body)."""
    cfg = static.cfg
    size = data[1].shape[0]
    mb = size // cfg.n_minibatches
    perm = jax.random.permutation(key, size)[: mb * cfg.n_minibatches]
    shuffled = jax.tree_util.tree_map(lambda x: x[perm].reshape(cfg.n_minibatches, mb, *x.shape[1:]), data)
    return jax.lax.scan(functools.partial(minibatch_update, static=static), carry, shuffled)


def episode_metrics(out: StepOut) -> dict[str, jax.Array]:
    """Sums over the episodes that ended in a rollout (``ep_*`` where ``done``), and their count."""
    done = out.done.astype(jnp.float32)
    return {
        "episodes": done.sum(),
        "true_return": (out.ep_true_return * done).sum(),
        "shaped_return": (out.ep_shaped_return * done).sum(),
        "length": (out.ep_length * done).sum(),
        "success": (out.ep_success.astype(jnp.float32) * done).sum(),
        "terms": (out.ep_terms * done[..., None]).sum((0, 1)),
    }


def update_step(ts: TrainState, reward_params: dict, *, static: _Static) -> tuple[TrainState, dict]:
    """One PPO update: an ``n_steps`` rollout, GAE, then ``n_epochs`` epochs (the outer scan's body)."""
    cfg = static.cfg
    key, k_roll, k_epochs = jax.random.split(ts.key, 3)
    (_, vs, _), (rows, out) = jax.lax.scan(functools.partial(rollout_step, static=static),
                                           (ts.params, ts.env, reward_params), jax.random.split(k_roll, cfg.n_steps))
    _, last_value = static.forward(ts.params, vs.obs)
    adv, ret = compute_gae(rows.reward, rows.value, rows.terminated, rows.truncated, rows.final_value, last_value,
                           static.gamma, cfg.gae_lambda)
    flat = jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), (rows, adv, ret))
    lr = cfg.learning_rate * (1.0 - ts.update / static.num_updates) if cfg.anneal_lr else cfg.learning_rate
    (params, opt_state, _), aux = jax.lax.scan(
        functools.partial(_epoch, static=static, data=flat), (ts.params, ts.opt_state, jnp.float32(lr)),
        jax.random.split(k_epochs, cfg.n_epochs))
    metrics = {f"losses/{k}": v[-1].mean() for k, v in aux.items()}  # the last epoch, as the PPO core logs
    metrics["losses/learning_rate"] = jnp.float32(lr)
    metrics.update(episode_metrics(out))
    return TrainState(params, opt_state, vs, key, ts.update + 1), metrics


# -- the public object ------------------------------------------------------------------------
class JaxPPO:
    """PPO on a ``ShapedVecEnv`` as pure functions (see the module docstring). Build with ``make_train``."""

    def __init__(self, static: _Static):
        self.static = static
        self.venv, self.cfg = static.venv, static.cfg
        self.num_updates = static.num_updates
        self.steps_per_update = static.cfg.n_steps * static.venv.num_envs

    def init(self, key: jax.Array, reward_params: dict | None = None) -> TrainState:
        """A fresh run from ``key`` (the seed): network, optimiser and envs."""
        del reward_params  # the initial state does not depend on the reward
        k_net, k_env, k_run = jax.random.split(key, 3)
        env = self.venv.env
        obs_dim = self.static.encode(jnp.zeros((1, *env.obs_shape), env.obs_dtype)).shape[-1]
        params = init_policy(k_net, obs_dim, env.num_actions, self.cfg.hidden_sizes)
        return TrainState(params, self.static.tx.init(params), self.venv.reset(k_env), k_run, jnp.int32(0))

    def run(self, ts: TrainState, reward_params: dict, n_updates: int) -> tuple[TrainState, dict]:
        """``n_updates`` updates in one ``lax.scan``; metrics have a leading ``n_updates`` axis."""
        body = functools.partial(update_step, static=self.static)
        return jax.lax.scan(lambda s, _: body(s, reward_params), ts, None, length=n_updates)

    def train(self, key: jax.Array, reward_params: dict) -> tuple[TrainState, dict]:
        """The whole run, ``init`` + ``run(num_updates)``: the pure function to jit and vmap."""
        return self.run(self.init(key), reward_params, self.num_updates)

    def act(self, params: dict, obs: jax.Array, key: jax.Array, deterministic: bool = True) -> jax.Array:
        logits, _ = self.static.forward(params, obs)
        return jnp.argmax(logits, -1) if deterministic else jax.random.categorical(key, logits)

    def evaluate(self, params: dict, key: jax.Array, episodes: int, deterministic: bool = True) -> dict:
        """``episodes`` episodes on the *unshaped* env, one per env copy, each from its own reset
        drawn from ``key``: per-episode ``true_return``, ``length`` and ``success`` arrays."""
        env = self.venv.env
        eparams = env.eval_params  # held-out tasks where the env has them (XLand rulesets), else default_params
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, episodes), eparams)
        zeros = jnp.zeros(episodes)

        def body(carry, k):
            obs, state, active, ret, length, success = carry
            k_act, k_env = jax.random.split(k)
            action = self.act(params, obs, k_act, deterministic)
            obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_env, episodes), state, action, eparams)
            done = term | trunc
            ret = ret + jnp.where(active, reward, 0.0)
            length = length + active
            success = jnp.where(active & done, info["success"], success)
            return (obs, state, active & ~done, ret, length, success), None

        carry = (obs, state, jnp.ones(episodes, bool), zeros, zeros, jnp.zeros(episodes, bool))
        # Every episode ends within the env's time limit.
        (_, _, _, ret, length, success), _ = jax.lax.scan(body, carry, jax.random.split(k_run, env.max_steps))
        return {"true_return": ret, "length": length, "success": success}


def make_train(env: Any, stack: Any, cfg: JaxPPOConfig, *, num_envs: int, total_steps: int,
               gamma: float) -> JaxPPO:
    """A ``JaxPPO`` for ``env`` (a ``JaxEnv``) shaped by ``stack`` (a ``JaxRewardStack``).

    ``total_steps`` (env steps per run, all envs together) sets the number of updates,
    ``ceil(total_steps / (n_steps · num_envs))``, which the learning rate anneals over.
    """
    if env.num_actions is None:
        raise ConfigError(f"agent jax_ppo supports discrete actions; {env.name} has continuous ones")
    batch = cfg.n_steps * num_envs
    if batch < cfg.n_minibatches:
        raise ConfigError(f"agent.params.n_minibatches: {cfg.n_minibatches} is more than the batch "
                          f"n_steps * env.n_envs = {batch}")
    encoding = cfg.obs_encoding
    onehot_sizes: tuple[int, ...] = ()
    is_grid = hasattr(env, "num_tiles")
    if encoding == "auto":
        encoding = "onehot" if is_grid else "float"
    if encoding == "onehot":
        if not is_grid:
            raise ConfigError(f"agent.params.obs_encoding: onehot needs a minigrid/... env, got {env.name}")
        onehot_sizes = (env.num_tiles, env.num_colors)
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.scale_by_adam(eps=1e-5))
    static = _Static(ShapedVecEnv(env, num_envs, stack), cfg, float(gamma), encoding, len(env.obs_shape),
                     onehot_sizes, max(1, -(-int(total_steps) // batch)), tx)
    return JaxPPO(static)
