"""ILD: imitation learning through differentiable physics (Chen et al., CVPR 2023) on Brax.

Follows the reference code (``sail-sg/ILD``, ``policy/brax_task/train_on_policy.py``): a
stochastic NormalTanh policy (512-256 swish MLP on running-mean/std normalised observations)
is first fitted to the demonstrations by behaviour cloning (1,000 full-batch iterations, the
reference's ``--il 1``), then rolled out through the Brax physics from the demonstrations'
initial states. The loss is the two-way Chamfer distance between the agent's and the expert's
*simulator state* trajectories (link positions, rotations, velocities and angular velocities),
both normalised by running mean/std statistics of the agent's states, with the RMS distance
between states, squashed by ``tanh``. Its gradient flows back through the simulator with:

- truncation: the gradient through the physics state is stopped every ``truncation`` steps (10);
- per-step normalisation: the cotangent reaching each step's next physics state is rescaled to
  a global norm of at most ``step_grad_clip`` (reference: 1.0) by an identity with a custom
  backward pass;
- the parameter gradient is clipped to global norm ``max_grad_norm`` (reference: 0.3), then Adam
  with a learning rate decaying linearly from ``lr`` (1e-3) to ``lr_end`` (1e-5).

Contents:

- ``chamfer_distance``: two-way Chamfer distance between two state sequences (RMS or L2);
- ``clip_gradient``: identity whose backward pass clips the cotangent's global norm;
- ``RunningNorm`` / ``norm_init`` / ``norm_update`` / ``norm_apply``: Brax-style running mean/std;
- ``NormalTanhPolicy`` / ``Actor``: the policy and its parameters with their observation statistics;
- ``state_vector`` / ``PolicyRollout``: simulator-state features and differentiable rollouts;
- ``bc_fit``: full-batch behaviour cloning of an ``Actor`` (the warm start; ``bc.train_bc`` wraps it);
- ``Demos``: expert demonstrations (observations, actions, reset keys), saved as ``.npz``;
- ``ILD`` / ``ILDConfig``: the learner;
- ``MLPPolicy`` / ``DiffRollout`` / ``train_expert_apg``: a deterministic tanh MLP and its rollouts,
  used by the analytic-policy-gradient expert trainer (``scripts/make_ild_expert.py --expert apg``);
- ``ILDAgent`` / ``make_ild``: the ``ild`` agent the experiment runner drives.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab.agents.params import check_fields, is_int, is_num, params_from_dict
from rewardlab.envs.brax import make_brax_env
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = [
    "chamfer_distance", "clip_gradient", "RunningNorm", "norm_init", "norm_update", "norm_apply",
    "NormalTanhPolicy", "Actor", "state_vector", "PolicyRollout", "bc_fit", "replay_demos", "Demos",
    "MLPPolicy", "DiffRollout", "ILDConfig", "ILD", "train_expert_apg", "reacher_pd_expert", "collect_demos",
    "ILDAgent", "ILDAgentParams", "make_ild", "DATA_DIR", "MATCH_SPACES",
]

DATA_DIR = Path(__file__).parent / "data"
MATCH_SPACES = ("state", "obs")
ACTIVATIONS = {"swish": jax.nn.swish, "tanh": jnp.tanh, "relu": jax.nn.relu}


def chamfer_distance(a: jax.Array, b: jax.Array, metric: str = "rms") -> jax.Array:
    """Two-way Chamfer distance: mean distance of each ``a`` row to its nearest ``b`` row, plus the reverse.

    ``metric="rms"`` (the reference's): ``sqrt(mean_k (a_k − b_k)²)``; ``"l2"``: the Euclidean norm.

    >>> a = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    >>> b = jnp.array([[0.0, 0.0], [3.0, 0.0]])
    >>> round(float(chamfer_distance(a, b, "l2")), 4)  # a→b: (0 + 1)/2; b→a: (0 + 2)/2
    1.5
    >>> round(float(chamfer_distance(a, b)), 4)  # the same with each distance divided by sqrt(2)
    1.0607
    """
    sq = jnp.square(a[:, None, :] - b[None, :, :])
    d = jnp.sqrt((sq.mean(axis=-1) if metric == "rms" else sq.sum(axis=-1)) + 1e-12)
    return d.min(axis=1).mean() + d.min(axis=0).mean()


def _global_norm(leaves: list[jax.Array]) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves) + 1e-12)


@jax.custom_vjp
def _clip_floats(max_norm: jax.Array, leaves: tuple) -> tuple:
    return leaves


def _clip_fwd(max_norm, leaves):
    return leaves, max_norm


def _clip_bwd(max_norm, g):
    g = [jnp.nan_to_num(x) for x in g]
    scale = jnp.minimum(1.0, max_norm / _global_norm(g))
    return jnp.zeros_like(max_norm), tuple(x * scale for x in g)


_clip_floats.defvjp(_clip_fwd, _clip_bwd)


def clip_gradient(tree: Any, max_norm: float) -> Any:
    """Identity on ``tree``; on the way back, its cotangent (NaNs zeroed) is rescaled to global norm ≤ ``max_norm``.

    >>> g = jax.grad(lambda x: jnp.sum(clip_gradient(x, 0.3) * 10.0))(jnp.ones(4))
    >>> round(float(jnp.linalg.norm(g)), 4)
    0.3
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    idx = [i for i, x in enumerate(leaves) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    clipped = _clip_floats(jnp.asarray(max_norm, jnp.float32), tuple(leaves[i] for i in idx))
    for i, x in zip(idx, clipped, strict=True):
        leaves[i] = x
    return jax.tree_util.tree_unflatten(treedef, leaves)


# -- running mean/std (Brax's observation normaliser of the reference's version) ----------
class RunningNorm(NamedTuple):
    """Running statistics: ``count``, ``mean`` and the running sum of squared deviations ``var_sum``."""

    count: jax.Array
    mean: jax.Array
    var_sum: jax.Array


def norm_init(size: int) -> RunningNorm:
    """Empty statistics: ``norm_apply`` is then the identity (mean 0, variance 1), clipped to ±5."""
    return RunningNorm(jnp.zeros(()), jnp.zeros(size), jnp.ones(size))


def norm_update(stats: RunningNorm, x: jax.Array) -> RunningNorm:
    """Add a batch ``(..., d)`` to the statistics (Welford's update, as Brax's normaliser)."""
    x = x.reshape(-1, x.shape[-1])
    count = stats.count + x.shape[0]
    to_old = x - stats.mean
    mean = stats.mean + jnp.sum(to_old / count, axis=0)
    return RunningNorm(count, mean, stats.var_sum + jnp.sum((x - mean) * to_old, axis=0))


def norm_apply(stats: RunningNorm, x: jax.Array, clip: float = 5.0) -> jax.Array:
    """``(x − mean) / std`` with the variance clipped to [1e-6, 1e6] and the result to ±``clip``.

    The variance is ``var_sum / (count + 1)``: the initial ``var_sum`` of 1 acts as one prior
    sample of variance 1, as in the Brax normaliser the reference uses.

    >>> s = norm_update(norm_init(1), jnp.array([[1.0], [3.0]]))
    >>> [round(float(v), 3) for v in norm_apply(s, jnp.array([[2.0], [4.0]]))[:, 0]]  # mean 2, var (1+2)/(2+1)
    [0.0, 2.0]
    """
    var = jnp.clip(stats.var_sum / (stats.count + 1.0), 1e-6, 1e6)
    return jnp.clip((x - stats.mean) / jnp.sqrt(var), -clip, clip)


# -- the policy ----------------------------------------------------------------------------
class Actor(NamedTuple):
    """A policy's parameters together with the running statistics that normalise its observations."""

    params: list
    obs_stats: RunningNorm


class NormalTanhPolicy:
    """The reference's policy: an MLP (``hidden``, ``activation``) outputs the mean and raw scale of a
    Gaussian; actions are ``tanh(mean + (softplus(scale) + 0.001)·ε)`` (Brax's NormalTanhDistribution,
    reparameterised), the mode is ``tanh(mean)``. Parameters are a list of ``(W, b)``; the output
    layer has ``2 × action_size`` units.
    """

    min_std = 0.001

    def __init__(self, obs_size: int, action_size: int, hidden: tuple[int, ...] = (512, 256),
                 activation: str = "swish"):
        if activation not in ACTIVATIONS:
            raise InvalidArgument(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        self.sizes = (obs_size, *hidden, 2 * action_size)
        self.action_size, self.activation = action_size, ACTIVATIONS[activation]

    def init(self, key: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """LeCun-uniform weights, zero biases (Flax ``Dense`` defaults, as Brax's ``make_model``)."""
        params = []
        for k, n_in, n_out in zip(jax.random.split(key, len(self.sizes) - 1), self.sizes[:-1], self.sizes[1:],
                                  strict=True):
            lim = jnp.sqrt(3.0 / n_in)
            params.append((jax.random.uniform(k, (n_in, n_out), minval=-lim, maxval=lim), jnp.zeros(n_out)))
        return params

    def init_actor(self, key: jax.Array) -> Actor:
        return Actor(self.init(key), norm_init(self.sizes[0]))

    def logits(self, params: list, obs_n: jax.Array) -> jax.Array:
        x = obs_n
        for w, b in params[:-1]:
            x = self.activation(x @ w + b)
        w, b = params[-1]
        return x @ w + b

    def mode(self, params: list, obs_n: jax.Array) -> jax.Array:
        return jnp.tanh(self.logits(params, obs_n)[..., : self.action_size])

    def sample(self, params: list, obs_n: jax.Array, key: jax.Array) -> jax.Array:
        out = self.logits(params, obs_n)
        loc, raw = out[..., : self.action_size], out[..., self.action_size:]
        std = jax.nn.softplus(raw) + self.min_std
        return jnp.tanh(loc + std * jax.random.normal(key, loc.shape))

    def act(self, actor: Actor, obs: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """The mode (``key`` None) or a sample, on observations normalised by the actor's statistics."""
        obs_n = norm_apply(jax.lax.stop_gradient(actor.obs_stats), obs)
        return self.mode(actor.params, obs_n) if key is None else self.sample(actor.params, obs_n, key)


def state_vector(pipeline_state: Any) -> jax.Array:
    """The simulator state the reference matches: every link's position, rotation (quaternion),
    velocity and angular velocity, flattened (Brax ``x.pos, x.rot, xd.vel, xd.ang``; the
    reference's ``qp.pos, qp.rot, qp.vel, qp.ang``)."""
    x, xd = pipeline_state.x, pipeline_state.xd
    return jnp.concatenate([x.pos.ravel(), x.rot.ravel(), xd.vel.ravel(), xd.ang.ravel()])


def _is_float_array(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _alive(done: jax.Array) -> jax.Array:
    """1 for the steps up to and including the first ``done``, 0 after it (``done`` has shape ``(T,)``)."""
    return jnp.concatenate([jnp.ones(1, done.dtype), jnp.cumprod(1.0 - done)[:-1]])


def _check_rollout_args(horizon: int, truncation: int | None, step_grad_clip: float | None) -> None:
    """The argument checks both differentiable rollouts share."""
    if horizon < 1:
        raise InvalidArgument(f"horizon must be >= 1, got {horizon}")
    if truncation is not None and truncation < 1:
        raise InvalidArgument(f"truncation must be >= 1 (or null for none), got {truncation}")
    if step_grad_clip is not None and step_grad_clip <= 0:
        raise InvalidArgument(f"step_grad_clip must be > 0 (or null for none), got {step_grad_clip}")


class PolicyRollout:
    """Differentiable rollouts of an ``Actor`` through a Brax env, with truncation and per-step normalisation.

    ``rollout(actor, state, key)`` runs ``horizon`` steps from one env state and returns the
    observations ``(T+1, d_obs)``, simulator-state vectors ``(T+1, d_state)`` (the first of both
    is the initial state's) and rewards ``(T,)``, zeroed after the first termination. ``key``
    None means the policy's mode; otherwise actions are sampled (reparameterised).
    """

    def __init__(self, env: Any, policy: NormalTanhPolicy, horizon: int, truncation: int | None = None,
                 step_grad_clip: float | None = None):
        _check_rollout_args(horizon, truncation, step_grad_clip)
        self.env, self.policy, self.horizon = env, policy, horizon
        self.truncation, self.step_grad_clip = truncation, step_grad_clip

    def __call__(self, actor: Actor, state: Any, key: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array]:
        stochastic = key is not None
        keys = jax.random.split(key, self.horizon) if stochastic else jnp.zeros((self.horizon, 2), jnp.uint32)

        def body(s, xs):
            i, k = xs
            action = self.policy.act(actor, s.obs, k if stochastic else None)
            ns = self.env.step(s, action)
            # The reference's norm_grad: the cotangent of the next state (the loss's share on it plus
            # everything flowing back from later steps) is rescaled to norm <= step_grad_clip.
            if self.step_grad_clip is not None:
                ns = clip_gradient(ns, self.step_grad_clip)
            if self.truncation is not None:
                cut = (i + 1) % self.truncation == 0
                ns = jax.tree_util.tree_map(
                    lambda x: jnp.where(cut, jax.lax.stop_gradient(x), x) if _is_float_array(x) else x, ns)
            return ns, (ns.obs, state_vector(ns.pipeline_state), ns.reward, ns.done)

        _, (obs, sv, rew, done) = jax.lax.scan(body, state, (jnp.arange(self.horizon), keys))
        obs = jnp.concatenate([state.obs[None], obs])
        sv = jnp.concatenate([state_vector(state.pipeline_state)[None], sv])
        return obs, sv, rew * _alive(done)


def bc_fit(policy: NormalTanhPolicy, actor: Actor, obs: jax.Array, actions: jax.Array, *, steps: int,
           optimizer: optax.GradientTransformation, key: jax.Array,
           sample: bool = True) -> tuple[Actor, jax.Array]:
    """Behaviour cloning as the reference's ``--il`` bootstrap: ``steps`` full-batch iterations on
    ``mean_batch ‖a(obs) − action‖²``, where ``a(obs)`` is a reparameterised *sample* of the policy
    (``sample=False``: its mode). Every iteration first adds the batch's observations to the
    observation statistics, as the reference does. Returns ``(actor, losses)``: ``losses[i]`` is
    the loss of iteration ``i`` (before its step; sampled when ``sample``).
    """
    obs = obs.reshape(-1, obs.shape[-1])
    actions = actions.reshape(-1, actions.shape[-1])

    def loss(params, stats, k):
        a = policy.act(Actor(params, stats), obs, k if sample else None)
        return jnp.mean(jnp.sum(jnp.square(a - actions), axis=-1))

    def step(carry, k):
        params, stats, opt_state = carry
        stats = norm_update(stats, obs)
        val, g = jax.value_and_grad(loss)(params, stats, k)
        upd, opt_state = optimizer.update(g, opt_state, params)
        return (optax.apply_updates(params, upd), stats, opt_state), val

    (params, stats, _), losses = jax.lax.scan(step, (actor.params, actor.obs_stats, optimizer.init(actor.params)),
                                              jax.random.split(key, steps))
    return Actor(params, stats), losses


def replay_demos(env: Any, keys: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Re-simulate demonstrations from their reset keys and actions: observations ``(N, T+1, d_obs)``
    and simulator-state vectors ``(N, T+1, d_state)`` (Brax physics is deterministic)."""

    def one(key, acts):
        s0 = env.reset(key)

        def body(s, a):
            ns = env.step(s, a)
            return ns, (ns.obs, state_vector(ns.pipeline_state))

        _, (obs, sv) = jax.lax.scan(body, s0, acts)
        return (jnp.concatenate([s0.obs[None], obs]),
                jnp.concatenate([state_vector(s0.pipeline_state)[None], sv]))

    return jax.jit(jax.vmap(one))(keys, actions)


@dataclass
class Demos:
    """Expert demonstrations of one Brax task: ``obs`` (N, T+1, d), ``actions`` (N, T, a), reset ``keys`` (N, 2).

    ``returns`` are summed up to the first termination. The first ``n_train`` trajectories
    are for training; the rest (if any) are held-out expert trajectories for evaluation.
    """

    env: str
    backend: str
    obs: np.ndarray
    actions: np.ndarray
    keys: np.ndarray
    returns: np.ndarray
    n_train: int | None = None

    def __post_init__(self) -> None:
        if self.n_train is None:
            self.n_train = int(self.obs.shape[0])
        if not 1 <= self.n_train <= self.obs.shape[0]:
            raise InvalidArgument(f"n_train must be in [1, {self.obs.shape[0]}], got {self.n_train}")

    def split(self) -> tuple[Demos, Demos | None]:
        """``(train, held_out)``; ``held_out`` is None when every trajectory is for training."""
        k = self.n_train

        def part(sl: slice) -> Demos:
            return Demos(self.env, self.backend, self.obs[sl], self.actions[sl], self.keys[sl], self.returns[sl])

        return part(slice(0, k)), (part(slice(k, None)) if k < self.obs.shape[0] else None)

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[1])

    def save(self, path: Path) -> None:
        np.savez_compressed(path, env=self.env, backend=self.backend, obs=self.obs.astype(np.float32),
                            actions=self.actions.astype(np.float32), keys=self.keys, returns=self.returns,
                            n_train=self.n_train)

    @classmethod
    def load(cls, path: str | Path) -> Demos:
        """Load a demo file; a bare name (``reacher``) means the packaged ``data/ild_<name>.npz``."""
        p = Path(path)
        if not p.suffix and not p.exists():
            p = DATA_DIR / f"ild_{path}.npz"
        if not p.is_file():
            shipped = sorted(x.stem.removeprefix("ild_") for x in DATA_DIR.glob("ild_*.npz"))
            raise ConfigError(f"ILD demos {str(path)!r} not found; shipped demos: {', '.join(shipped) or '(none)'} "
                              "(regenerate with scripts/make_ild_expert.py)")
        with np.load(p) as z:
            n_train = int(z["n_train"]) if "n_train" in z.files else None
            return cls(str(z["env"]), str(z["backend"]), z["obs"], z["actions"], z["keys"], z["returns"], n_train)


class MLPPolicy:
    """Deterministic ``tanh`` MLP ``obs -> action in [-1, 1]`` (the APG expert's); parameters: a list of ``(W, b)``."""

    def __init__(self, obs_size: int, action_size: int, hidden: tuple[int, ...] = (64, 64)):
        self.sizes = (obs_size, *hidden, action_size)

    def init(self, key: jax.Array, out_scale: float = 0.01) -> list[tuple[jax.Array, jax.Array]]:
        params = []
        keys = jax.random.split(key, len(self.sizes) - 1)
        for i, (k, n_in, n_out) in enumerate(zip(keys, self.sizes[:-1], self.sizes[1:], strict=True)):
            scale = out_scale if i == len(self.sizes) - 2 else 1.0
            w = jax.random.normal(k, (n_in, n_out)) * scale * jnp.sqrt(1.0 / n_in)
            params.append((w, jnp.zeros(n_out)))
        return params

    @staticmethod
    def apply(params: list, obs: jax.Array) -> jax.Array:
        x = obs
        for w, b in params[:-1]:
            x = jnp.tanh(x @ w + b)
        w, b = params[-1]
        return jnp.tanh(x @ w + b)


class DiffRollout:
    """Rollouts of the deterministic ``MLPPolicy`` with truncation and per-step clipping (the APG expert trainer's)."""

    def __init__(self, env: Any, horizon: int, truncation: int | None, step_grad_clip: float | None):
        _check_rollout_args(horizon, truncation, step_grad_clip)
        self.env, self.horizon = env, horizon
        self.truncation, self.step_grad_clip = truncation, step_grad_clip

    def __call__(self, params: list, state: Any) -> tuple[jax.Array, jax.Array]:
        """One env from ``state``: observations ``(T+1, d)`` (the first is ``state.obs``) and rewards ``(T,)``.

        Rewards after the first termination (``done``) are zeroed: the physics keeps running, but
        the episode's return stops there (Ant falling over ends its episode).
        """

        def body(s, i):
            if self.step_grad_clip is not None:
                s = clip_gradient(s, self.step_grad_clip)
            action = MLPPolicy.apply(params, s.obs)
            ns = self.env.step(s, action)
            if self.truncation is not None:
                cut = (i + 1) % self.truncation == 0
                ns = jax.tree_util.tree_map(
                    lambda x: jnp.where(cut, jax.lax.stop_gradient(x), x)
                    if _is_float_array(x) else x, ns)
            return ns, (ns.obs, ns.reward, ns.done)

        _, (obs, rew, done) = jax.lax.scan(body, state, jnp.arange(self.horizon))
        return jnp.concatenate([state.obs[None], obs]), rew * _alive(done)


@dataclass
class ILDConfig:
    """ILD hyperparameters; the defaults are the reference's (``train_on_policy.py``) unless noted."""

    lr: float = 1e-3
    """Adam learning rate at the start (reference ``--lr 1e-3``)"""
    lr_end: float | None = 1e-5
    """the learning rate decays linearly to this over the run (reference: 1e-5); null keeps ``lr``"""
    truncation: int | None = 10
    """stop the gradient through the physics every this many steps (reference ``--trunc_len 10``)"""
    step_grad_clip: float | None = 1.0
    """rescale the cotangent of each step's next state to at most this norm (reference: 1.0)"""
    max_grad_norm: float = 0.3
    """global-norm clip of the parameter gradient before Adam (reference ``--max_grad_norm 0.3``)"""
    hidden: tuple[int, ...] = (512, 256)
    """policy MLP hidden sizes (reference: 512, 256)"""
    activation: str = "swish"
    """policy MLP activation: swish (reference), tanh or relu"""
    stochastic: bool = True
    """roll out sampled actions (reference); false: the policy's mode"""
    match: str = "state"
    """what the Chamfer loss compares: simulator ``state`` (reference) or ``obs`` (observations)"""
    normalize: bool = True
    """normalise the matched vectors by running mean/std of the agent's rollouts (reference)"""
    tanh_loss: bool = True
    """optimise ``tanh(Chamfer)`` (reference) instead of the Chamfer distance"""
    bc_warmstart: int = 1000
    """behaviour-cloning iterations before the first ILD update (reference ``--il 1``: 1000); 0: none"""
    horizon: int | None = None
    """rollout length (default: the demos' length)"""
    n_demos: int | None = None
    """use the first n demos (default: the training split)"""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):  # YAML gives lists
            self.hidden = tuple(self.hidden)
        check_fields(self, [
            ("lr", is_num(self.lr) and self.lr > 0, "a number > 0"),
            ("lr_end", self.lr_end is None or (is_num(self.lr_end) and self.lr_end > 0), "a number > 0, or null"),
            ("truncation", self.truncation is None or (is_int(self.truncation) and self.truncation >= 1),
             "an integer >= 1, or null for none"),
            ("step_grad_clip", self.step_grad_clip is None or (is_num(self.step_grad_clip) and self.step_grad_clip > 0),
             "a number > 0, or null for none"),
            ("max_grad_norm", is_num(self.max_grad_norm) and self.max_grad_norm > 0, "a number > 0"),
            ("hidden", isinstance(self.hidden, tuple) and all(is_int(h) and h >= 1 for h in self.hidden),
             "a list of integers >= 1"),
            ("activation", self.activation in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
            ("stochastic", isinstance(self.stochastic, bool), "true or false"),
            ("match", self.match in MATCH_SPACES, f"one of {', '.join(MATCH_SPACES)}"),
            ("normalize", isinstance(self.normalize, bool), "true or false"),
            ("tanh_loss", isinstance(self.tanh_loss, bool), "true or false"),
            ("bc_warmstart", is_int(self.bc_warmstart) and self.bc_warmstart >= 0, "an integer >= 0"),
            ("horizon", self.horizon is None or (is_int(self.horizon) and self.horizon >= 1),
             "an integer >= 1, or null for the demos' length"),
            ("n_demos", self.n_demos is None or (is_int(self.n_demos) and self.n_demos >= 1),
             "an integer >= 1, or null for the training split"),
        ])
        self.hidden = tuple(int(h) for h in self.hidden)


class ILD:
    """The ILD learner. The first ``update()`` runs the BC warm start (``bc_warmstart`` iterations),
    every ``update()`` one jitted gradient step on the Chamfer loss over all training demos."""

    def __init__(self, demos: Demos, config: ILDConfig | None = None, *, seed: int = 0):
        self.cfg = cfg = config or ILDConfig()
        n = demos.n_train if cfg.n_demos is None else cfg.n_demos
        if not 1 <= n <= demos.obs.shape[0]:
            raise InvalidArgument(f"n_demos must be in [1, {demos.obs.shape[0]}], got {n}")
        horizon = cfg.horizon or demos.horizon
        if not 1 <= horizon <= demos.horizon:
            raise InvalidArgument(f"horizon must be in [1, {demos.horizon}] (the demos' length), got {horizon}")
        self.demos, self.horizon, self.n = demos, horizon, n
        self.env = make_brax_env(demos.env, demos.backend)
        self.policy = NormalTanhPolicy(int(self.env.observation_size), int(self.env.action_size), cfg.hidden,
                                       cfg.activation)
        keys = jnp.asarray(demos.keys[:n], jnp.uint32)
        self.init_states = jax.jit(jax.vmap(self.env.reset))(keys)
        # Brax physics is deterministic: the reset keys and actions reproduce the demos' trajectories.
        replay_obs, replay_states = replay_demos(self.env, keys, jnp.asarray(demos.actions[:n, :horizon]))
        gap = float(np.abs(np.asarray(replay_obs[:, 0]) - demos.obs[:n, 0]).max())
        if gap > 1e-3:
            raise ConfigError(f"demos do not match env {demos.env!r}/{demos.backend}: initial obs differ by {gap:.3g}")
        self.replay_gap = float(np.abs(np.asarray(replay_obs) - demos.obs[:n, : horizon + 1]).max())
        self.expert_obs = jnp.asarray(demos.obs[:n, : horizon + 1], jnp.float32)
        self.expert_states = replay_states
        self.expert_match = self.expert_states if cfg.match == "state" else self.expert_obs
        # Evaluation compares in one fixed space: the expert's own statistics normalise both sides.
        self.eval_stats = norm_update(norm_init(self.expert_match.shape[-1]), self.expert_match)
        # The learning rate is optimizer state, not a compile-time constant: one compiled update serves any lr.
        self.optimizer = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                                     optax.inject_hyperparams(optax.adam)(learning_rate=cfg.lr))
        self._train = PolicyRollout(self.env, self.policy, horizon, cfg.truncation, cfg.step_grad_clip)
        self._plain = PolicyRollout(self.env, self.policy, horizon)
        self._update = jax.jit(self._update_fn)
        self._evaluate = jax.jit(self._evaluate_fn)
        self._fit = None
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Start over from a fresh policy for ``seed`` (statistics, optimizer, warm start), keeping the
        compiled functions: several seeds in one process compile once."""
        self.key, init_key = jax.random.split(jax.random.PRNGKey(seed))
        self.actor = self.policy.init_actor(init_key)
        self.match_stats = norm_init(self.expert_match.shape[-1])
        self.opt_state = self.optimizer.init(self.actor.params)
        self.warm_started = self.cfg.bc_warmstart == 0

    @property
    def params(self) -> list:
        return self.actor.params

    def warm_start(self) -> dict[str, float]:
        """The reference's ``--il`` bootstrap: ``bc_warmstart`` full-batch BC iterations (sampled-action
        MSE, Adam at ``lr`` with its own optimizer state, gradient clipped to ``max_grad_norm``)."""
        cfg = self.cfg
        if self._fit is None:
            opt = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr))
            self._fit = jax.jit(lambda actor, obs, acts, k: bc_fit(self.policy, actor, obs, acts,
                                                                   steps=cfg.bc_warmstart, optimizer=opt, key=k))
        self.key, sub = jax.random.split(self.key)
        self.actor, losses = self._fit(self.actor, self.expert_obs[:, :-1], jnp.asarray(
            self.demos.actions[: self.n, : self.horizon], jnp.float32), sub)
        self.warm_started = True
        return {"losses/bc_first": float(losses[0]), "losses/bc_last": float(losses[-1])}

    def _loss(self, params, actor, match_stats, key):
        keys = jax.random.split(key, self.n)
        rollout = jax.vmap(self._train, in_axes=(None, 0, 0))
        obs, states, _ = rollout(Actor(params, actor.obs_stats), self.init_states,
                                 keys if self.cfg.stochastic else None)
        x = states if self.cfg.match == "state" else obs
        # As the reference: the statistics take this batch first (no gradient through them), then normalise both.
        match_stats = norm_update(match_stats, jax.lax.stop_gradient(x))
        expert = self.expert_match
        if self.cfg.normalize:
            x, expert = norm_apply(match_stats, x), norm_apply(match_stats, expert)
        chamfer = jax.vmap(chamfer_distance)(x, expert).mean()
        loss = jnp.tanh(chamfer) if self.cfg.tanh_loss else chamfer
        obs_stats = norm_update(actor.obs_stats, jax.lax.stop_gradient(obs[:, :-1]))
        return loss, (chamfer, obs_stats, match_stats)

    def _update_fn(self, actor, match_stats, opt_state, key):
        (loss, (chamfer, obs_stats, match_stats)), grads = jax.value_and_grad(self._loss, has_aux=True)(
            actor.params, actor, match_stats, key)
        grads = jax.tree_util.tree_map(jnp.nan_to_num, grads)
        updates, opt_state = self.optimizer.update(grads, opt_state, actor.params)
        actor = Actor(optax.apply_updates(actor.params, updates), obs_stats)
        return actor, match_stats, opt_state, loss, chamfer, optax.global_norm(grads)

    def _evaluate_fn(self, actor):
        obs, states, rew = jax.vmap(self._plain, in_axes=(None, 0, None))(actor, self.init_states, None)
        x = states if self.cfg.match == "state" else obs
        x, expert = norm_apply(self.eval_stats, x), norm_apply(self.eval_stats, self.expert_match)
        chamfer = jax.vmap(chamfer_distance)(x, expert).mean()
        err = jnp.sqrt(jnp.square(x - expert).mean(axis=-1)).mean()
        return chamfer, err, rew.sum(axis=1).mean()

    def set_progress(self, progress: float) -> float:
        """Set the learning rate for a run ``progress`` ∈ [0, 1] done (linear decay to ``lr_end``); returns it."""
        cfg = self.cfg
        lr = cfg.lr if cfg.lr_end is None else cfg.lr + (cfg.lr_end - cfg.lr) * min(max(progress, 0.0), 1.0)
        self.opt_state[1].hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
        return lr

    def update(self, progress: float | None = None) -> dict[str, float]:
        """One gradient step (after the warm start, on the first call); ``progress`` sets the decayed lr.

        Returns ``losses/loss`` (what is optimised, tanh-squashed by default), ``losses/chamfer``
        (before the step), ``losses/grad_norm`` (before clipping) and ``losses/lr``.
        """
        out = {} if self.warm_started else self.warm_start()
        lr = self.set_progress(progress) if progress is not None else float(
            self.opt_state[1].hyperparams["learning_rate"])
        self.key, sub = jax.random.split(self.key)
        self.actor, self.match_stats, self.opt_state, loss, chamfer, gnorm = self._update(
            self.actor, self.match_stats, self.opt_state, sub)
        out.update({"losses/loss": float(loss), "losses/chamfer": float(chamfer), "losses/grad_norm": float(gnorm),
                    "losses/lr": lr})
        return out

    def evaluate(self) -> dict[str, float]:
        """On the demos' initial states, the policy's mode: Chamfer distance and time-aligned RMS error in the
        matched space normalised by the expert's statistics, and the return (and the expert's)."""
        chamfer, err, ret = self._evaluate(self.actor)
        return {"ild/chamfer": float(chamfer), "ild/trajectory_error": float(err), "ild/return": float(ret),
                "ild/expert_return": float(self.demos.returns[: self.n].mean())}

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(_mode_jit(self.policy, self.actor, jnp.asarray(obs, jnp.float32)))

    @property
    def steps_per_update(self) -> int:
        return self.n * self.horizon


_MODE_FNS: dict = {}


def _mode_jit(policy: NormalTanhPolicy, actor: Actor, obs: jax.Array) -> jax.Array:
    key = (policy.sizes, policy.activation)
    if key not in _MODE_FNS:
        _MODE_FNS[key] = jax.jit(lambda a, o: policy.act(a, o))
    return _MODE_FNS[key](actor, obs)


def train_expert_apg(env_name: str, backend: str, *, horizon: int, iterations: int, batch: int = 32,
                     lr: float = 3e-3, truncation: int | None = 10, step_grad_clip: float | None = 0.3,
                     max_grad_norm: float = 1.0, hidden: tuple[int, ...] = (64, 64), seed: int = 0,
                     log_every: int = 50, log=print) -> tuple[list, MLPPolicy]:
    """Train an expert by analytic policy gradient: maximise the summed task reward through the physics.

    Each iteration samples ``batch`` fresh initial states. Returns ``(params, policy)``.
    """
    env = make_brax_env(env_name, backend)
    policy = MLPPolicy(int(env.observation_size), int(env.action_size), hidden)
    key, init_key = jax.random.split(jax.random.PRNGKey(seed))
    params = policy.init(init_key)
    rollout = DiffRollout(env, horizon, truncation, step_grad_clip)
    opt = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr))
    opt_state = opt.init(params)
    reset = jax.vmap(env.reset)

    def loss(p, states):
        _, rew = jax.vmap(rollout, in_axes=(None, 0))(p, states)
        return -rew.sum(axis=1).mean()

    @jax.jit
    def update(p, o, k):
        states = reset(jax.random.split(k, batch))
        val, g = jax.value_and_grad(loss)(p, states)
        upd, o = opt.update(g, o, p)
        return optax.apply_updates(p, upd), o, -val

    for it in range(iterations):
        key, sub = jax.random.split(key)
        params, opt_state, ret = update(params, opt_state, sub)
        if log is not None and (it % log_every == 0 or it == iterations - 1):
            log(f"apg iter {it:5d}  mean return {float(ret):9.3f}")
    return params, policy


def reacher_pd_expert(kp: float = 0.5, kd: float = 0.1):
    """A scripted Reacher expert: Jacobian-transpose PD control of the fingertip towards the target.

    Reads only the observation (cos/sin of the joint angles, joint velocities and the
    fingertip−target vector of Brax ``reacher``); link lengths are those of the Brax model.
    """
    l1, l2 = 0.1, 0.11

    def act(obs: jax.Array) -> jax.Array:
        c1, c2, s1, s2 = obs[0], obs[1], obs[2], obs[3]
        c12, s12 = c1 * c2 - s1 * s2, s1 * c2 + c1 * s2
        jac = jnp.array([[-l1 * s1 - l2 * s12, -l2 * s12], [l1 * c1 + l2 * c12, l2 * c12]])
        err = -obs[8:10]  # target − fingertip
        torque = kp * (jac.T @ err) / (l1 * l1) - kd * obs[6:8]
        return jnp.clip(torque, -1.0, 1.0)

    return act


def collect_demos(env_name: str, backend: str, policy: Any, *, horizon: int, n: int, seed: int,
                  n_train: int | None = None) -> Demos:
    """Roll out a deterministic ``policy(obs) -> action`` from ``n`` seeded reset keys and record it.

    Returns are summed up to the first termination; the first ``n_train`` (default all) are training demos.
    """
    env = make_brax_env(env_name, backend)
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    states = jax.vmap(env.reset)(keys)

    def one(s):
        def body(st, _):
            a = policy(st.obs)
            ns = env.step(st, a)
            return ns, (ns.obs, a, ns.reward, ns.done)

        _, (obs, acts, rew, done) = jax.lax.scan(body, s, None, length=horizon)
        return jnp.concatenate([s.obs[None], obs]), acts, (rew * _alive(done)).sum()

    obs, acts, rets = jax.jit(jax.vmap(one))(states)
    return Demos(env_name, backend, np.asarray(obs), np.asarray(acts), np.asarray(keys), np.asarray(rets),
                 n_train=n_train)


# -- the runner's agent ------------------------------------------------------------------
class ILDAgent:
    """The ``ild`` agent: ``learn`` runs ILD gradient steps; ``num_timesteps`` counts simulated env steps.

    The learning rate decays over ``learn``'s ``total_steps``. The runner's vector env is used only
    to check the observation size and for evaluation (through ``act``, the policy's mode); ILD
    simulates its own rollouts from the demos' initial states.
    """

    def __init__(self, ild: ILD, eval_every: int = 10):
        self.ild, self.eval_every = ild, eval_every
        self.num_timesteps, self.updates = 0, 0

    def learn(self, total_steps: int, callback: Any) -> None:
        while self.num_timesteps < total_steps:
            metrics = self.ild.update(progress=self.num_timesteps / max(total_steps, 1))
            self.updates += 1
            self.num_timesteps += self.ild.steps_per_update
            if self.updates % self.eval_every == 0 or self.num_timesteps >= total_steps:
                metrics.update(self.ild.evaluate())
            if callback is not None and callback.on_iteration(self.num_timesteps, metrics) is False:
                return

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        return self.ild.act(obs)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        to_np = lambda t: jax.tree_util.tree_map(np.asarray, t)  # noqa: E731
        state = {"actor": to_np(self.ild.actor), "match_stats": to_np(self.ild.match_stats),
                 "opt_state": to_np(self.ild.opt_state), "key": np.asarray(self.ild.key),
                 "warm_started": self.ild.warm_started, "num_timesteps": self.num_timesteps,
                 "updates": self.updates, "config": asdict(self.ild.cfg)}
        (path / "ild.pkl").write_bytes(pickle.dumps(state))

    def load(self, path: Path) -> None:
        state = pickle.loads((Path(path) / "ild.pkl").read_bytes())
        to_jnp = lambda t: jax.tree_util.tree_map(jnp.asarray, t)  # noqa: E731
        self.ild.actor = Actor(to_jnp(state["actor"][0]), RunningNorm(*to_jnp(tuple(state["actor"][1]))))
        self.ild.match_stats = RunningNorm(*to_jnp(tuple(state["match_stats"])))
        self.ild.opt_state = to_jnp(state["opt_state"])
        self.ild.key = jnp.asarray(state["key"])
        self.ild.warm_started = bool(state["warm_started"])
        self.num_timesteps, self.updates = int(state["num_timesteps"]), int(state["updates"])


@dataclass
class ILDAgentParams(ILDConfig):
    """The ``ild`` agent's ``agent.params``: ``ILDConfig``'s fields plus the demos and the
    evaluation interval (``rewardlab check`` validates them through ``validate_agent_params``)."""

    demos: str = "reacher"
    """a shipped demo name (``reacher``, ``ant``) or an ``.npz`` path"""
    eval_every: int = 10
    """ILD updates between demo-start evaluations"""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, [
            ("demos", isinstance(self.demos, str) and bool(self.demos), "a shipped demo name or an .npz path"),
            ("eval_every", is_int(self.eval_every) and self.eval_every >= 1, "an integer >= 1"),
        ])

    def ild_config(self) -> ILDConfig:
        """The ``ILDConfig`` part."""
        return ILDConfig(**{f.name: getattr(self, f.name) for f in fields(ILDConfig)})


def make_ild(venv: Any, *, gamma: float, seed: int, params: dict[str, Any]) -> ILDAgent:
    """The ``ild`` agent factory. ``params``: ``ILDAgentParams`` fields (``demos``,
    ``eval_every`` and ``ILDConfig``'s).

    >>> make_ild(None, gamma=0.99, seed=0, params={"learning_rate": 1e-3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.learning_rate: unknown parameter for agent 'ild'. Valid: lr, ...
    """
    p = params_from_dict(ILDAgentParams, params, agent="ild")
    demos = Demos.load(p.demos)
    eval_every, cfg = p.eval_every, p.ild_config()
    if venv is not None:
        shape = venv.single_observation_space.shape
        if shape != (demos.obs.shape[-1],):
            raise ConfigError(f"env observation shape {shape} does not match the demos' ({demos.obs.shape[-1]},) "
                              f"for {demos.env!r}; use env.id brax/{demos.env}")
    try:
        return ILDAgent(ILD(demos, cfg, seed=seed), eval_every=eval_every)
    except InvalidArgument as e:
        raise ConfigError(f"invalid ILD parameters: {e}") from e
