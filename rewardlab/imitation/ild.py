"""ILD: imitation learning through differentiable physics (Chen et al., 2022) on Brax.

A deterministic MLP policy is rolled out through the Brax physics from the expert
demonstrations' initial states; the loss is the two-way Chamfer distance between the agent's
and the expert's observation trajectories, and its gradient flows back through the simulator.
Three tricks from the paper keep that gradient usable:

- truncation: the gradient is stopped every ``truncation`` steps (paper: 10);
- per-step clipping: the gradient reaching each step's physics state is rescaled to a global
  norm of at most ``step_grad_clip`` (paper: 0.3) by an identity with a custom backward pass;
- the parameter gradient is clipped to ``max_grad_norm`` before Adam.

Contents:

- ``chamfer_distance``: two-way Chamfer distance between two state sequences;
- ``clip_gradient``: identity whose backward pass clips the cotangent's global norm;
- ``Demos``: expert demonstrations (observations, actions, reset keys), saved as ``.npz``;
- ``MLPPolicy``: the deterministic tanh MLP policy (plain JAX arrays);
- ``DiffRollout``: rollouts through a Brax env with truncation and per-step clipping;
- ``ILD`` / ``ILDConfig``: the learner; ``train_expert_apg``: the expert trainer (analytic
  policy gradient on the task reward, same rollout machinery) used to produce the demos;
- ``ILDAgent`` / ``make_ild``: the ``ild`` agent the experiment runner drives.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab.agents.params import check_fields, is_int, is_num, params_from_dict
from rewardlab.envs.brax import make_brax_env
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = [
    "chamfer_distance", "clip_gradient", "Demos", "MLPPolicy", "DiffRollout", "ILDConfig", "ILD",
    "train_expert_apg", "reacher_pd_expert", "collect_demos", "ILDAgent", "ILDAgentParams", "make_ild", "DATA_DIR",
]

DATA_DIR = Path(__file__).parent / "data"


def chamfer_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """Two-way Chamfer distance: mean distance of each ``a`` row to its nearest ``b`` row, plus the reverse.

    >>> a = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    >>> b = jnp.array([[0.0, 0.0], [3.0, 0.0]])
    >>> round(float(chamfer_distance(a, b)), 4)  # a→b: (0 + 1)/2; b→a: (0 + 2)/2
    1.5
    """
    d = jnp.sqrt(jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1) + 1e-12)
    return d.min(axis=1).mean() + d.min(axis=0).mean()


def _global_norm(leaves: list[jax.Array]) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves) + 1e-12)


@jax.custom_vjp
def _clip_floats(max_norm: jax.Array, leaves: tuple) -> tuple:
    return leaves


def _clip_fwd(max_norm, leaves):
    return leaves, max_norm


def _clip_bwd(max_norm, g):
    scale = jnp.minimum(1.0, max_norm / _global_norm(list(g)))
    return jnp.zeros_like(max_norm), tuple(x * scale for x in g)


_clip_floats.defvjp(_clip_fwd, _clip_bwd)


def clip_gradient(tree: Any, max_norm: float) -> Any:
    """Identity on ``tree``; on the way back, its cotangent is rescaled to global norm ≤ ``max_norm``.

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
    """Deterministic ``tanh`` MLP: ``obs -> action in [-1, 1]``; parameters are a list of ``(W, b)``."""

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


def _is_float_array(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _alive(done: jax.Array) -> jax.Array:
    """1 for the steps up to and including the first ``done``, 0 after it (``done`` has shape ``(T,)``)."""
    return jnp.concatenate([jnp.ones(1, done.dtype), jnp.cumprod(1.0 - done)[:-1]])


class DiffRollout:
    """Differentiable rollouts of ``MLPPolicy`` through a Brax env with truncation and per-step clipping."""

    def __init__(self, env: Any, horizon: int, truncation: int | None, step_grad_clip: float | None):
        if horizon < 1:
            raise InvalidArgument(f"horizon must be >= 1, got {horizon}")
        if truncation is not None and truncation < 1:
            raise InvalidArgument(f"truncation must be >= 1 (or null for none), got {truncation}")
        if step_grad_clip is not None and step_grad_clip <= 0:
            raise InvalidArgument(f"step_grad_clip must be > 0 (or null for none), got {step_grad_clip}")
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
    """ILD hyperparameters (defaults follow the paper where it gives them)."""

    lr: float = 1e-2
    """Adam learning rate"""
    truncation: int | None = 10
    """stop the gradient through the physics every this many steps (paper: 10)"""
    step_grad_clip: float | None = 0.3
    """per-step clip of the gradient reaching each physics state (paper: 0.3)"""
    max_grad_norm: float = 0.3
    """global-norm clip of the parameter gradient before Adam"""
    hidden: tuple[int, ...] = (64, 64)
    """policy MLP hidden sizes"""
    horizon: int | None = None
    """rollout length (default: the demos' length)"""
    n_demos: int | None = None
    """use the first n demos (default: all)"""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):  # YAML gives lists
            self.hidden = tuple(self.hidden)
        check_fields(self, [
            ("lr", is_num(self.lr) and self.lr > 0, "a number > 0"),
            ("truncation", self.truncation is None or (is_int(self.truncation) and self.truncation >= 1),
             "an integer >= 1, or null for none"),
            ("step_grad_clip", self.step_grad_clip is None or (is_num(self.step_grad_clip) and self.step_grad_clip > 0),
             "a number > 0, or null for none"),
            ("max_grad_norm", is_num(self.max_grad_norm) and self.max_grad_norm > 0, "a number > 0"),
            ("hidden", isinstance(self.hidden, tuple) and all(is_int(h) and h >= 1 for h in self.hidden),
             "a list of integers >= 1"),
            ("horizon", self.horizon is None or (is_int(self.horizon) and self.horizon >= 1),
             "an integer >= 1, or null for the demos' length"),
            ("n_demos", self.n_demos is None or (is_int(self.n_demos) and self.n_demos >= 1),
             "an integer >= 1, or null for all"),
        ])
        self.hidden = tuple(int(h) for h in self.hidden)


class ILD:
    """The ILD learner: ``update()`` is one jitted gradient step on the Chamfer loss over all demos."""

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
        self.policy = MLPPolicy(int(self.env.observation_size), int(self.env.action_size), cfg.hidden)
        self.init_states = jax.jit(jax.vmap(self.env.reset))(jnp.asarray(demos.keys[:n], jnp.uint32))
        # Brax physics is deterministic: the reset keys reproduce the demos' initial states.
        gap = float(np.abs(np.asarray(self.init_states.obs) - demos.obs[:n, 0]).max())
        if gap > 1e-3:
            raise ConfigError(f"demos do not match env {demos.env!r}/{demos.backend}: initial obs differ by {gap:.3g}")
        self.expert_obs = jnp.asarray(demos.obs[:n, : horizon + 1])
        self.params = self.policy.init(jax.random.PRNGKey(seed))
        # The learning rate is optimizer state, not a compile-time constant: one compiled update serves any lr.
        self.optimizer = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                                     optax.inject_hyperparams(optax.adam)(learning_rate=cfg.lr))
        self.opt_state = self.optimizer.init(self.params)
        self._train = DiffRollout(self.env, horizon, cfg.truncation, cfg.step_grad_clip)
        self._plain = DiffRollout(self.env, horizon, None, None)
        self._update = jax.jit(self._update_fn)
        self._evaluate = jax.jit(self._evaluate_fn)

    def _loss(self, params, states, expert):
        obs, _ = jax.vmap(self._train, in_axes=(None, 0))(params, states)
        return jax.vmap(chamfer_distance)(obs, expert).mean()

    def _update_fn(self, params, opt_state):
        loss, grads = jax.value_and_grad(self._loss)(params, self.init_states, self.expert_obs)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, optax.global_norm(grads)

    def _evaluate_fn(self, params):
        obs, rew = jax.vmap(self._plain, in_axes=(None, 0))(params, self.init_states)
        chamfer = jax.vmap(chamfer_distance)(obs, self.expert_obs).mean()
        err = jnp.linalg.norm(obs - self.expert_obs, axis=-1).mean()
        return chamfer, err, rew.sum(axis=1).mean()

    def update(self) -> dict[str, float]:
        """One gradient step; returns ``losses/chamfer`` (before the step) and ``losses/grad_norm``."""
        self.params, self.opt_state, loss, gnorm = self._update(self.params, self.opt_state)
        return {"losses/chamfer": float(loss), "losses/grad_norm": float(gnorm)}

    def evaluate(self) -> dict[str, float]:
        """On the demos' initial states: Chamfer loss, time-aligned trajectory error, return (and the expert's)."""
        chamfer, err, ret = self._evaluate(self.params)
        return {"ild/chamfer": float(chamfer), "ild/trajectory_error": float(err), "ild/return": float(ret),
                "ild/expert_return": float(self.demos.returns[: self.n].mean())}

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(_apply_jit(self.params, jnp.asarray(obs, jnp.float32)))

    @property
    def steps_per_update(self) -> int:
        return self.n * self.horizon


_apply_jit = jax.jit(MLPPolicy.apply)


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

    The runner's vector env is used only to check the observation size and for evaluation
    (through ``act``); ILD simulates its own rollouts from the demos' initial states.
    """

    def __init__(self, ild: ILD, eval_every: int = 10):
        self.ild, self.eval_every = ild, eval_every
        self.num_timesteps, self.updates = 0, 0

    def learn(self, total_steps: int, callback: Any) -> None:
        while self.num_timesteps < total_steps:
            metrics = self.ild.update()
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
        state = {"params": jax.tree_util.tree_map(np.asarray, self.ild.params),
                 "opt_state": jax.tree_util.tree_map(np.asarray, self.ild.opt_state),
                 "num_timesteps": self.num_timesteps, "updates": self.updates, "config": asdict(self.ild.cfg)}
        (path / "ild.pkl").write_bytes(pickle.dumps(state))

    def load(self, path: Path) -> None:
        state = pickle.loads((Path(path) / "ild.pkl").read_bytes())
        self.ild.params = jax.tree_util.tree_map(jnp.asarray, state["params"])
        self.ild.opt_state = jax.tree_util.tree_map(jnp.asarray, state["opt_state"])
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
