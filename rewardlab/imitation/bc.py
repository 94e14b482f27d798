"""Behaviour cloning (BC): the baseline ILD is compared with, from the same demonstrations.

BC regresses the expert's actions on the expert's observations (mean squared error) with
the same deterministic ``MLPPolicy`` ILD trains, by Adam on minibatches of ``(obs, action)``
pairs. It never touches the simulator while training; errors compound when the policy drifts
to states the expert never visited, which is what ILD's rollouts through the physics avoid.

Contents:

- ``BCConfig``: hyperparameters;
- ``bc_loss``: the mean squared action error of a policy on a batch;
- ``train_bc``: fit a policy to ``Demos``; returns its parameters and the loss history;
- ``PolicyEvaluator``: deterministic rollouts of policy parameters from a demo set's initial
  states, compared with the expert's (return, time-aligned trajectory error, Chamfer distance);
  used for ILD and BC alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab.envs.brax import make_brax_env
from rewardlab.errors import InvalidArgument
from rewardlab.imitation.ild import Demos, DiffRollout, MLPPolicy, chamfer_distance

__all__ = ["BCConfig", "bc_loss", "train_bc", "PolicyEvaluator"]


@dataclass
class BCConfig:
    """BC hyperparameters."""

    lr: float = 1e-3
    """Adam learning rate"""
    steps: int = 2000
    """gradient steps"""
    batch_size: int = 256
    """(obs, action) pairs per step (sampled with replacement)"""
    hidden: tuple[int, ...] = (64, 64)
    """policy MLP hidden sizes (the same as ILD's by default)"""

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise InvalidArgument(f"lr must be > 0, got {self.lr}")
        if self.steps < 1 or self.batch_size < 1:
            raise InvalidArgument(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        self.hidden = tuple(int(h) for h in self.hidden)


def bc_loss(params: list, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """Mean over the batch of ``‖π(obs) − action‖²``.

    >>> params = MLPPolicy(2, 1, (4,)).init(jax.random.PRNGKey(0), out_scale=0.0)  # π(obs) = 0
    >>> round(float(bc_loss(params, jnp.zeros((2, 2)), jnp.array([[0.5], [-1.0]]))), 4)  # (0.25 + 1) / 2
    0.625
    """
    return jnp.mean(jnp.sum(jnp.square(MLPPolicy.apply(params, obs) - actions), axis=-1))


def train_bc(demos: Demos, config: BCConfig | None = None, *, seed: int = 0,
             n_demos: int | None = None) -> tuple[list, np.ndarray]:
    """Fit ``MLPPolicy`` to the first ``n_demos`` (default: the training split) demonstrations.

    Returns ``(params, losses)``: ``losses[i]`` is the loss on the full data set before step
    ``i`` (and ``losses[-1]`` after the last step), so it is comparable between steps.
    """
    cfg = config or BCConfig()
    n = demos.n_train if n_demos is None else n_demos
    if not 1 <= n <= demos.obs.shape[0]:
        raise InvalidArgument(f"n_demos must be in [1, {demos.obs.shape[0]}], got {n}")
    obs = jnp.asarray(demos.obs[:n, :-1].reshape(-1, demos.obs.shape[-1]), jnp.float32)
    acts = jnp.asarray(demos.actions[:n].reshape(-1, demos.actions.shape[-1]), jnp.float32)
    policy = MLPPolicy(int(obs.shape[-1]), int(acts.shape[-1]), cfg.hidden)
    key, init_key = jax.random.split(jax.random.PRNGKey(seed))
    params = policy.init(init_key)
    opt = optax.adam(cfg.lr)
    batch = min(cfg.batch_size, int(obs.shape[0]))

    def step(carry, k):
        p, o = carry
        full = bc_loss(p, obs, acts)
        idx = jax.random.randint(k, (batch,), 0, obs.shape[0])
        g = jax.grad(bc_loss)(p, obs[idx], acts[idx])
        upd, o = opt.update(g, o, p)
        return (optax.apply_updates(p, upd), o), full

    @jax.jit
    def run(p, k):
        (p, _), losses = jax.lax.scan(step, (p, opt.init(p)), jax.random.split(k, cfg.steps))
        return p, jnp.concatenate([losses, bc_loss(p, obs, acts)[None]])

    params, losses = run(params, key)
    return params, np.asarray(losses)


_EVAL_FNS: dict = {}


class PolicyEvaluator:
    """Roll ``MLPPolicy`` parameters out (no truncation, no clipping) from ``demos``' initial states.

    ``evaluator(params)`` gives ``return`` (summed to the first termination), the expert's
    ``expert_return``, ``trajectory_error`` (time-aligned mean ‖s_t − e_t‖) and ``chamfer``
    against the expert's trajectories from the same starts. Evaluators of the same env, backend
    and horizon share one compiled function per number of starts.
    """

    def __init__(self, demos: Demos, horizon: int | None = None):
        self.demos = demos
        self.horizon = h = horizon or demos.horizon
        if not 1 <= h <= demos.horizon:
            raise InvalidArgument(f"horizon must be in [1, {demos.horizon}], got {h}")
        key = (demos.env, demos.backend, h)
        if key not in _EVAL_FNS:
            env = make_brax_env(demos.env, demos.backend)
            rollout = DiffRollout(env, h, None, None)

            def metrics(params, states, expert):
                obs, rew = jax.vmap(rollout, in_axes=(None, 0))(params, states)
                return {"return": rew.sum(axis=1).mean(),
                        "trajectory_error": jnp.linalg.norm(obs - expert, axis=-1).mean(),
                        "chamfer": jax.vmap(chamfer_distance)(obs, expert).mean()}

            _EVAL_FNS[key] = (jax.jit(jax.vmap(env.reset)), jax.jit(metrics))
        reset, self._metrics = _EVAL_FNS[key]
        self.states = reset(jnp.asarray(demos.keys, jnp.uint32))
        self.expert = jnp.asarray(demos.obs[:, : h + 1], jnp.float32)

    def __call__(self, params: list) -> dict[str, float]:
        out = {k: float(v) for k, v in self._metrics(params, self.states, self.expert).items()}
        out["expert_return"] = float(self.demos.returns.mean())
        return out
