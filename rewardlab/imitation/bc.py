"""Behaviour cloning (BC): the baseline ILD is compared with, and ILD's warm start.

BC regresses the expert's actions on the expert's observations with the same policy ILD trains
(``NormalTanhPolicy``, 512-256 swish by default, observations normalised by running statistics),
as the reference's ``--il`` bootstrap does: full-batch iterations on the squared error between a
reparameterised action *sample* and the expert's action, Adam at 1e-3, the gradient clipped to
global norm 0.3. ``train_bc`` with seed ``s`` gives exactly the policy ``ILD(seed=s)`` starts its
physics updates from, so ILD vs BC measures what ILD's gradient through the simulator adds. BC
never touches the simulator while training; errors compound when the policy drifts to states the
expert never visited, which is what ILD's rollouts through the physics address.

Contents:

- ``BCConfig``: hyperparameters;
- ``bc_loss``: the mean squared action error of a policy's mode on a batch;
- ``train_bc``: fit an ``Actor`` to ``Demos``; returns it and the loss history;
- ``PolicyEvaluator``: rollouts of an ``Actor``'s mode from a demo set's initial states, compared
  with the expert's (return, Chamfer distance and time-aligned error in expert-normalised
  simulator-state space); used for ILD and BC alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab.envs.brax import make_brax_env
from rewardlab.errors import InvalidArgument
from rewardlab.imitation.ild import (
    ACTIVATIONS,
    Actor,
    Demos,
    NormalTanhPolicy,
    PolicyRollout,
    bc_fit,
    chamfer_distance,
    norm_apply,
    norm_init,
    norm_update,
    replay_demos,
)

__all__ = ["BCConfig", "bc_loss", "train_bc", "PolicyEvaluator"]


@dataclass
class BCConfig:
    """BC hyperparameters (the defaults are ILD's warm start, i.e. the reference's ``--il`` bootstrap)."""

    lr: float = 1e-3
    """Adam learning rate"""
    steps: int = 1000
    """full-batch iterations (reference: 1000)"""
    max_grad_norm: float = 0.3
    """global-norm clip of the gradient before Adam"""
    hidden: tuple[int, ...] = (512, 256)
    """policy MLP hidden sizes (the same as ILD's by default)"""
    activation: str = "swish"
    """policy MLP activation"""
    sample: bool = True
    """regress a reparameterised action sample (reference); false: the policy's mode"""

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise InvalidArgument(f"lr must be > 0, got {self.lr}")
        if self.steps < 1:
            raise InvalidArgument(f"steps must be >= 1, got {self.steps}")
        if not self.max_grad_norm > 0:
            raise InvalidArgument(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.activation not in ACTIVATIONS:
            raise InvalidArgument(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        self.hidden = tuple(int(h) for h in self.hidden)


def bc_loss(policy: NormalTanhPolicy, actor: Actor, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """Mean over the batch of ``‖mode(obs) − action‖²`` (observations normalised by the actor's statistics).

    >>> pol = NormalTanhPolicy(2, 1, (4,))
    >>> actor = pol.init_actor(jax.random.PRNGKey(0))
    >>> actor = actor._replace(params=[(w, b) for w, b in actor.params[:-1]] + [(0 * actor.params[-1][0],
    ...                        actor.params[-1][1])])  # mode(obs) = tanh(0) = 0
    >>> round(float(bc_loss(pol, actor, jnp.zeros((2, 2)), jnp.array([[0.5], [-1.0]]))), 4)  # (0.25 + 1) / 2
    0.625
    """
    return jnp.mean(jnp.sum(jnp.square(policy.act(actor, obs) - actions), axis=-1))


def train_bc(demos: Demos, config: BCConfig | None = None, *, seed: int = 0,
             n_demos: int | None = None) -> tuple[Actor, np.ndarray]:
    """Fit a ``NormalTanhPolicy`` to the first ``n_demos`` (default: the training split) demonstrations.

    Returns ``(actor, losses)``: ``losses[i]`` is the training loss of iteration ``i`` (before its
    step) and ``losses[-1]`` the mode's loss after the last step. Same seed, same policy and same
    settings as ``ILD``'s warm start give the same actor.
    """
    cfg = config or BCConfig()
    n = demos.n_train if n_demos is None else n_demos
    if not 1 <= n <= demos.obs.shape[0]:
        raise InvalidArgument(f"n_demos must be in [1, {demos.obs.shape[0]}], got {n}")
    obs = jnp.asarray(demos.obs[:n, :-1], jnp.float32)
    acts = jnp.asarray(demos.actions[:n], jnp.float32)
    policy = NormalTanhPolicy(int(obs.shape[-1]), int(acts.shape[-1]), cfg.hidden, cfg.activation)
    key, init_key = jax.random.split(jax.random.PRNGKey(seed))
    actor = policy.init_actor(init_key)
    _, sub = jax.random.split(key)
    opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr))

    @jax.jit
    def run(a, k):
        a, losses = bc_fit(policy, a, obs, acts, steps=cfg.steps, optimizer=opt, key=k, sample=cfg.sample)
        flat_o, flat_a = obs.reshape(-1, obs.shape[-1]), acts.reshape(-1, acts.shape[-1])
        return a, jnp.concatenate([losses, bc_loss(policy, a, flat_o, flat_a)[None]])

    actor, losses = run(actor, sub)
    return actor, np.asarray(losses)


_EVAL_FNS: dict = {}


class PolicyEvaluator:
    """Roll an ``Actor``'s mode out (no truncation, no clipping) from ``demos``' initial states.

    ``evaluator(actor)`` gives ``return`` (summed to the first termination), the expert's
    ``expert_return``, and, in the simulator-state space normalised by the expert's own statistics
    over these demos (fixed, so every policy is measured with one ruler), ``chamfer`` (two-way,
    RMS) and ``trajectory_error`` (time-aligned mean RMS distance). On Reacher also
    ``final_distance``: the fingertip–target distance at the last step. Evaluators of the same
    env, backend, horizon and policy shape share one compiled function per number of starts.
    """

    def __init__(self, demos: Demos, horizon: int | None = None, hidden: tuple[int, ...] = (512, 256),
                 activation: str = "swish"):
        self.demos = demos
        self.horizon = h = horizon or demos.horizon
        if not 1 <= h <= demos.horizon:
            raise InvalidArgument(f"horizon must be in [1, {demos.horizon}], got {h}")
        key = (demos.env, demos.backend, h, tuple(hidden), activation)
        if key not in _EVAL_FNS:
            env = make_brax_env(demos.env, demos.backend)
            policy = NormalTanhPolicy(int(env.observation_size), int(env.action_size), tuple(hidden), activation)
            rollout = PolicyRollout(env, policy, h)
            reacher = demos.env == "reacher"

            def metrics(actor, states, expert, stats):
                obs, sv, rew = jax.vmap(rollout, in_axes=(None, 0, None))(actor, states, None)
                x, e = norm_apply(stats, sv), norm_apply(stats, expert)
                out = {"return": rew.sum(axis=1).mean(),
                       "trajectory_error": jnp.sqrt(jnp.square(x - e).mean(axis=-1)).mean(),
                       "chamfer": jax.vmap(chamfer_distance)(x, e).mean()}
                if reacher:  # obs[8:10] is the fingertip − target vector
                    out["final_distance"] = jnp.linalg.norm(obs[:, -1, 8:10], axis=-1).mean()
                return out

            _EVAL_FNS[key] = (env, jax.jit(jax.vmap(env.reset)), jax.jit(metrics))
        env, reset, self._metrics = _EVAL_FNS[key]
        keys = jnp.asarray(demos.keys, jnp.uint32)
        self.states = reset(keys)
        _, expert = replay_demos(env, keys, jnp.asarray(demos.actions[:, :h], jnp.float32))
        self.expert = expert
        self.stats = norm_update(norm_init(expert.shape[-1]), expert)

    def __call__(self, actor: Actor) -> dict[str, float]:
        out = {k: float(v) for k, v in self._metrics(actor, self.states, self.expert, self.stats).items()}
        out["expert_return"] = float(self.demos.returns.mean())
        if self.demos.env == "reacher":
            out["expert_final_distance"] = float(np.linalg.norm(self.demos.obs[:, self.horizon, 8:10], axis=-1).mean())
        return out
