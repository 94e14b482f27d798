"""Reward distances between two reward *stacks* on a real env, from rollouts.

Contents:

- ``collect_rollouts``: run a registered env with uniformly random actions and record every
  transition and every state (observation and info) the wrappers see, through a recording
  term inside a ``ShapedVectorEnv`` (so autoreset, final observations and final infos are
  handled exactly as in training);
- ``RolloutData``: the transitions as state ids into a state table, plus the empirical model
  (state keys, successors per ``(state, action)``, an env-reward model);
- ``StackRewards``: evaluates reward stacks on any ``(s, a, s')`` of state ids, ``dones = 0``;
- ``compare_rewards``: EPIC / DARD / STARC / raw distances between two stacks on the same
  transitions, each with a bootstrap confidence interval (``scipy.stats.bootstrap``).

Why the stacks are re-evaluated instead of read from ``info["reward_terms"]``: EPIC and DARD
need rewards of transitions that did not happen (``R(s, A, S')`` with ``S'`` drawn independently
of ``s``), and, like the reference code, they treat the MDP as never ending (``dones = 0``), so
a potential term gives ``γ·Φ(s') − Φ(s)`` there, not its terminal ``−Φ(s)``.

The env's own reward is only known on transitions that happened. For the others an
**env-reward model** is used: the mean env reward observed for the same
``(key(s), a, key(s'))`` if that triple was seen, else the mean env reward observed on arriving
in ``key(s')`` (``key``: the observation's bytes). Both stacks see the same model, so any part
of the distance that comes from it is shared; ``details["env_model_fallback"]`` counts how
often the arrival fallback was used.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import Term, build_stack
from rewardlab.core.transition import Transition, batch_index, select_info
from rewardlab.errors import InvalidArgument
from rewardlab.metrics._checks import check_gamma, check_positive_int
from rewardlab.metrics.sampled import Metric, dard_canon_sampled, distance_from_canon, parse_metric

__all__ = ["RolloutData", "collect_rollouts", "StackRewards", "DistanceResult", "compare_rewards", "ROLLOUT_POLICY"]

ROLLOUT_POLICY = "uniform random actions"
_SKIP_INFO = ("final_obs", "final_info", "episode_stats", "reward_terms", "reward_env")

StackSpec = Sequence[Any] | Callable[[], RewardStack]


# ----------------------------------------------------------------------------------------------
# Recording rollouts


class _Recorder(Term):
    """A term that records the transitions and states the wrapper shows it, and pays 0."""

    name = "distance_recorder"

    def __init__(self) -> None:
        self.obs: list[Any] = []  # one entry per state: the observation row
        self.info: list[dict[str, Any]] = []  # one entry per state: its info, one row
        self.s: list[int] = []
        self.a: list[Any] = []
        self.s2: list[int] = []
        self.env_r: list[float] = []
        self.terminated: list[bool] = []
        self.truncated: list[bool] = []
        self.current = np.zeros(0, np.int64)

    def bind(self, num_envs: int) -> None:
        self.current = np.full(num_envs, -1, np.int64)

    def _add_state(self, obs: Any, info: dict | None, row: int) -> int:
        self.obs.append(batch_index(obs, np.asarray([row])))
        self.info.append(_info_row(info or {}, row))
        return len(self.obs) - 1

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        for i in np.asarray(env_ids):
            self.current[i] = self._add_state(obs, info, int(i))

    def __call__(self, t: Transition) -> np.ndarray:
        for row, env in enumerate(np.asarray(t.env_ids)):
            s2 = self._add_state(t.next_obs, t.info, row)
            self.s.append(int(self.current[env]))
            self.a.append(np.asarray(t.action)[row])
            self.s2.append(s2)
            self.env_r.append(float(t.env_reward[row]))
            self.terminated.append(bool(t.terminated[row]))
            self.truncated.append(bool(t.truncated[row]))
            self.current[env] = s2  # replaced by observe_reset if the episode ended
        return np.zeros(t.num_envs, np.float32)


def _info_row(info: dict[str, Any], row: int) -> dict[str, Any]:
    """One row of a vector-form info dict (entries whose ``_key`` mask is off are left out)."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        if k.startswith("_") or k in _SKIP_INFO:
            continue
        mask = info.get("_" + k)
        if mask is not None and not bool(np.asarray(mask)[row]):
            continue
        if isinstance(v, dict):
            out[k] = _info_row(v, row)
        elif isinstance(v, np.ndarray) and v.ndim >= 1:
            out[k] = v[row]
    return out


def _stack_info(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-state info dicts → one vector-form info dict (missing entries masked off)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out: dict[str, Any] = {}
    for k in keys:
        present = np.array([k in r for r in rows])
        vals = [r.get(k) for r in rows]
        if any(isinstance(v, dict) for v in vals if v is not None):
            out[k] = _stack_info([v if isinstance(v, dict) else {} for v in vals])
        else:
            proto = next(v for v in vals if v is not None)
            proto = np.asarray(proto)
            same = all(v is None or np.shape(v) == proto.shape for v in vals) and proto.dtype != object
            if same:
                filler = np.zeros(proto.shape, proto.dtype)
                out[k] = np.stack([filler if v is None else np.asarray(v, proto.dtype) for v in vals])
            else:
                arr = np.empty(len(vals), dtype=object)
                for i, v in enumerate(vals):
                    arr[i] = v
                out[k] = arr
        out["_" + k] = present
    return out


def _concat_obs(rows: list[Any]) -> Any:
    if isinstance(rows[0], dict):
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    return np.concatenate(rows)


def _state_digest(obs: Any, info: dict[str, Any]) -> bytes:
    """A digest of one state's observation row and info row (equal digests: equal inputs to terms)."""
    h = hashlib.blake2b(digest_size=16)

    def feed(x: Any) -> None:
        if isinstance(x, dict):
            for k in sorted(x):
                h.update(str(k).encode())
                feed(x[k])
        else:
            arr = np.asarray(x)
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(repr(arr.tolist()).encode() if arr.dtype == object else np.ascontiguousarray(arr).tobytes())

    feed(obs)
    feed(info)
    return h.digest()


def _row_keys(x: Any, n: int) -> np.ndarray:
    """Integer ids of equal rows (by their bytes) of a batched array or dict of arrays."""
    if isinstance(x, dict):
        parts = [np.ascontiguousarray(np.asarray(x[k])).reshape(n, -1).view(np.uint8).reshape(n, -1) for k in sorted(x)]
        flat = np.concatenate(parts, axis=1)
    else:
        flat = np.ascontiguousarray(np.asarray(x)).reshape(n, -1).view(np.uint8).reshape(n, -1)
    if flat.shape[1] == 0:
        return np.zeros(n, np.int64)
    _, ids = np.unique(flat, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


@dataclass
class RolloutData:
    """Transitions ``(s, a, s')`` as ids into a state table, with the empirical model.

    ``obs``/``info``: the state table (batched observation and vector-form info, one row per
    recorded state); ``key``: equal observations share a key; ``env_reward``, ``terminated``,
    ``truncated``: per transition, as the env returned them.
    """

    env_id: str
    obs: Any
    info: dict[str, Any]
    s: np.ndarray
    a: np.ndarray
    s2: np.ndarray
    env_reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    key: np.ndarray
    n_actions: int | None
    action_key: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.action_key = _row_keys(self.a, len(self.a)) if self.n_actions is None else self.a.astype(np.int64)
        self._build_env_model()
        if self.n_actions is not None:
            self._build_successors()

    @property
    def n(self) -> int:
        return len(self.s)

    @property
    def n_states(self) -> int:
        return len(self.key)

    # -- env-reward model ---------------------------------------------------------------------
    def _build_env_model(self) -> None:
        nk = int(self.key.max()) + 1
        na = int(self.action_key.max()) + 1
        self._nk, self._na = nk, na
        codes = (self.key[self.s] * na + self.action_key) * nk + self.key[self.s2]
        self._codes, inv = np.unique(codes, return_inverse=True)
        self._code_mean = np.bincount(inv, self.env_reward) / np.bincount(inv)
        ks2 = self.key[self.s2]
        counts = np.bincount(ks2, minlength=nk)
        self._arrival = np.bincount(ks2, self.env_reward, minlength=nk) / np.maximum(counts, 1)
        self._arrived = counts > 0
        self.env_model_queries = 0
        self.env_model_fallback = 0

    def env_reward_of(self, s: np.ndarray, action_key: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """The env-reward model at ``(s, a, s')`` (state ids, action keys); see the module doc."""
        ks2 = self.key[s2]
        codes = (self.key[s] * self._na + action_key) * self._nk + ks2
        pos = np.minimum(np.searchsorted(self._codes, codes), len(self._codes) - 1)
        seen = self._codes[pos] == codes
        out = np.where(seen, self._code_mean[pos], self._arrival[ks2])
        self.env_model_queries += len(s)
        self.env_model_fallback += int((~seen).sum())
        if not self._arrived[ks2].all():
            # Every S' the estimators use is an observed next state, so this is a bug, not bad input.
            raise RuntimeError("env-reward model queried at a state never arrived in")
        return out

    # -- empirical transition model (discrete actions) -----------------------------------------
    def _build_successors(self) -> None:
        ks = self.key[self.s]
        na = self.n_actions
        codes = ks * na + self.a
        order = np.argsort(codes, kind="stable")
        self._succ_codes = codes[order]
        self._succ_states = self.s2[order]
        self._tried = np.zeros((self._nk, na), bool)
        self._tried[ks, self.a] = True
        # A key never left (episode ends, or too rare) is treated as absorbing: every action stays.
        self._absorbing = ~self._tried.any(axis=1)

    def successors(self, s: np.ndarray, acts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One observed successor of each ``(s, a)`` (uniform over the recorded ones); ``s``
        itself for absorbing keys. Callers only ask for tried actions."""
        ks = self.key[s]
        codes = ks * self.n_actions + acts
        lo = np.searchsorted(self._succ_codes, codes, side="left")
        hi = np.searchsorted(self._succ_codes, codes, side="right")
        pick = lo + (rng.random(len(s)) * (hi - lo)).astype(np.int64)
        out = self._succ_states[np.minimum(pick, len(self._succ_states) - 1)]
        return np.where(self._absorbing[ks] | (hi == lo), s, out)

    def dard_sampler(self) -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """DARD's ``(A, S', S'')`` from the empirical model: ``A`` uniform over the actions
        tried in both ``s`` and ``s'`` (absorbing keys allow all). If none is common, ``A`` comes
        from ``s`` and ``S'' = s'`` (counted in ``self.dard_fallback``)."""
        self.dard_fallback = 0

        def sampler(s: np.ndarray, s2: np.ndarray, k: int, rng: np.random.Generator):
            ks, ks2 = self.key[s], self.key[s2]
            ok_s = self._tried[ks] | self._absorbing[ks][:, None]
            ok_s2 = self._tried[ks2] | self._absorbing[ks2][:, None]
            common = ok_s & ok_s2
            none = ~common.any(axis=1)
            allowed = np.where(none[:, None], ok_s, common)
            self.dard_fallback += int(none.sum()) * k
            # Uniform choice among allowed actions: argmax of uniform noise, −inf where not allowed.
            noise = rng.random((len(s), k, self.n_actions))
            acts = np.where(allowed[:, None, :], noise, -np.inf).argmax(axis=-1)
            flat_s, flat_s2, flat_a = np.repeat(s, k), np.repeat(s2, k), acts.reshape(-1)
            succ1 = self.successors(flat_s, flat_a, rng).reshape(len(s), k)
            succ2 = self.successors(flat_s2, flat_a, rng).reshape(len(s), k)
            succ2 = np.where(none[:, None], s2[:, None], succ2)
            return acts, succ1, succ2

        return sampler


def collect_rollouts(env_id: str, samples: int = 2000, *, seed: int = 0, num_envs: int = 8,
                     env_kwargs: dict[str, Any] | None = None) -> RolloutData:
    """``samples`` transitions of ``env_id`` under uniformly random actions.

    >>> data = collect_rollouts("toy/GridWorld-v0", 64, seed=0, num_envs=2, env_kwargs={"size": 3})
    >>> data.n, data.n_actions, int(data.key.max()) + 1 <= 9
    (64, 4, True)
    """
    from rewardlab.envs import make_vec

    n = check_positive_int(samples, "samples", 2)
    k = check_positive_int(num_envs, "num_envs")
    recorder = _Recorder()
    venv = make_vec(env_id, num_envs=k, reward=RewardStack([recorder]), **(env_kwargs or {}))
    try:
        space = venv.single_action_space
        import gymnasium as gym

        n_actions = int(space.n) if isinstance(space, gym.spaces.Discrete) else None
        venv.action_space.seed(seed)
        venv.reset(seed=seed)
        while len(recorder.s) < n:
            venv.step(venv.action_space.sample())
    finally:
        venv.close()
    # Keep the states of the first n transitions, one row per distinct (observation, info):
    # terms are functions of these, so equal rows are one state (fewer reward evaluations).
    s, s2 = np.asarray(recorder.s[:n]), np.asarray(recorder.s2[:n])
    used = np.unique(np.concatenate([s, s2]))
    first: dict[bytes, int] = {}
    rows: list[int] = []
    remap = np.empty(int(used.max()) + 1, np.int64)
    for i in used:
        digest = _state_digest(recorder.obs[i], recorder.info[i])
        if digest not in first:
            first[digest] = len(rows)
            rows.append(int(i))
        remap[i] = first[digest]
    obs = _concat_obs([recorder.obs[i] for i in rows])
    key = _row_keys(obs, len(rows))
    s, s2 = remap[s], remap[s2]
    return RolloutData(
        env_id=env_id, obs=obs, info=_stack_info([recorder.info[i] for i in rows]), s=s,
        a=np.asarray(recorder.a[:n]), s2=s2,
        env_reward=np.asarray(recorder.env_r[:n], np.float64), terminated=np.asarray(recorder.terminated[:n]),
        truncated=np.asarray(recorder.truncated[:n]), key=key, n_actions=n_actions,
    )


# ----------------------------------------------------------------------------------------------
# Evaluating stacks on arbitrary transitions


def _as_factory(spec: StackSpec, gamma: float | None, name: str) -> Callable[[], RewardStack]:
    if callable(spec) and not isinstance(spec, (list, tuple)):
        return spec
    if isinstance(spec, (list, tuple)):
        specs = list(spec)
        return lambda: build_stack(specs, gamma=gamma)
    raise InvalidArgument(f"{name} must be a list of term specs or a callable returning a RewardStack, "
                          f"got {type(spec).__name__}")


class StackRewards:
    """``reward_fn(s, a, s')`` over state ids of ``data`` for several stacks at once: returns
    ``(len(stacks), n)``. Each call re-binds and resets the stacks and shows them ``s`` as an
    episode start (so potentials read Φ(s) from ``s``'s own observation and info), then one step
    with ``terminated = truncated = False``.

    Terms must be functions of the transition: terms with episode memory see every call as
    the first step of an episode; a term with memory across episodes is detected by
    ``check_markov`` and refused.
    """

    def __init__(self, data: RolloutData, stacks: Sequence[RewardStack]):
        self.data = data
        self.stacks = list(stacks)
        self.calls = 0
        self._action_table: dict[bytes, int] | None = None

    def __call__(self, s: np.ndarray, a: np.ndarray, s2: np.ndarray) -> np.ndarray:
        d = self.data
        s, s2 = np.asarray(s, np.int64), np.asarray(s2, np.int64)
        a = np.asarray(a)
        n = len(s)
        ids = np.arange(n)
        obs, nobs = batch_index(d.obs, s), batch_index(d.obs, s2)
        info, ninfo = select_info(d.info, s), select_info(d.info, s2)
        akey = a.astype(np.int64) if d.n_actions is not None else self._action_keys(a)
        env_r = d.env_reward_of(s, akey, s2)
        zeros = np.zeros(n, bool)
        out = np.empty((len(self.stacks), n), np.float64)
        for i, stack in enumerate(self.stacks):
            stack.bind(n)
            stack.reset(ids)
            stack.observe_reset(obs, info, ids)
            t = Transition(obs, a, nobs, env_r, zeros, zeros, ninfo, ids)
            out[i] = stack(t)[0]
        self.calls += n
        return out

    def _action_keys(self, a: np.ndarray) -> np.ndarray:
        # Continuous actions: the key of an identical recorded action, else a fresh one (never seen).
        if self._action_table is None:
            self._action_table = {np.asarray(x).tobytes(): int(k)
                                  for x, k in zip(self.data.a, self.data.action_key, strict=True)}
        fresh = int(self.data.action_key.max()) + 1
        return np.array([self._action_table.get(np.asarray(x).tobytes(), fresh) for x in a], np.int64)

    def check_markov(self, names: Sequence[str]) -> None:
        """Evaluate the recorded transitions twice; a stack whose values change between the two
        passes keeps memory across episodes (e.g. ``novelty`` with ``scope: global``)."""
        d = self.data
        first = self(d.s, d.a, d.s2)
        second = self(d.s, d.a, d.s2)
        for i, name in enumerate(names):
            if not np.allclose(first[i], second[i], rtol=1e-6, atol=1e-7):
                terms = ", ".join(self.stacks[i].names)
                raise InvalidArgument(f"reward {name} ({terms}) gives different values for the same transitions on a "
                                      "second pass: a term keeps memory across episodes (e.g. novelty with "
                                      "scope: global), so it is not a function of (s, a, s') and has no distance")


# ----------------------------------------------------------------------------------------------
# Distances with confidence intervals


@dataclass
class DistanceResult:
    """One distance estimate with its bootstrap confidence interval."""

    metric: str
    value: float
    ci_low: float
    ci_high: float
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if np.isnan(self.value):
            return f"{self.metric}: undefined ({self.details.get('note', 'nan')})"
        if np.isnan(self.ci_low):
            return f"{self.metric}: {self.value:.4g}  [no CI: {self.details.get('note', 'nan')}]"
        return (f"{self.metric}: {self.value:.4g}  [{self.confidence:.0%} CI {self.ci_low:.4g}, {self.ci_high:.4g}]")


@dataclass
class _EpicMesh:
    """R at every (distinct state × sampled pair) for both rewards; canonicalises any resample."""

    raw: np.ndarray  # (2, N)
    mesh: np.ndarray  # (2, U, M)
    inv_s: np.ndarray
    inv_s2: np.ndarray
    inv_y: np.ndarray

    def canon(self, gamma: float, ti: np.ndarray, pj: np.ndarray) -> np.ndarray:
        counts = np.bincount(pj, minlength=self.mesh.shape[-1]) / len(pj)  # resampled pairs as weights
        m = self.mesh @ counts  # (2, U): mean over the resampled pairs
        total = m[:, self.inv_y[pj]].mean(axis=-1, keepdims=True)
        return self.raw[:, ti] + gamma * m[:, self.inv_s2[ti]] - m[:, self.inv_s[ti]] - gamma * total


def _epic_mesh(fn: StackRewards, data: RolloutData, pairs: np.ndarray) -> _EpicMesh:
    from rewardlab.metrics.sampled import _eval_chunked

    s, a, s2 = data.s, data.a, data.s2
    ma, my = a[pairs], s2[pairs]
    uniq, inv = np.unique(np.concatenate([s, s2, my]), return_inverse=True)
    m = len(pairs)
    mesh_a = np.tile(ma, (len(uniq),) + (1,) * (ma.ndim - 1))
    mesh = _eval_chunked(fn, np.repeat(uniq, m), mesh_a, np.tile(my, len(uniq)))
    n = len(s)
    return _EpicMesh(raw=_eval_chunked(fn, s, a, s2), mesh=mesh.reshape(2, len(uniq), m),
                     inv_s=inv[:n], inv_s2=inv[n:2 * n], inv_y=inv[2 * n:])


def _bootstrap(statistic: Callable[..., float], data: tuple[np.ndarray, ...], *, paired: bool, n_resamples: int,
               confidence: float, seed: int) -> tuple[float, float, int]:
    """Percentile interval from ``scipy.stats.bootstrap``; also the number of resamples whose
    statistic is undefined (nan), in which case the interval is nan too."""
    import warnings

    from scipy.stats import bootstrap

    with warnings.catch_warnings():
        # A nan resample makes SciPy warn about BCa even for the percentile method; it is
        # reported by the caller instead (the count is returned).
        warnings.simplefilter("ignore")
        res = bootstrap(data, statistic, paired=paired, vectorized=False, n_resamples=n_resamples,
                        confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    undefined = int(np.isnan(res.bootstrap_distribution).sum())
    return float(res.confidence_interval.low), float(res.confidence_interval.high), undefined


def _full_canon(m: Metric, cache: dict[str, Any], gamma: float, data: RolloutData) -> tuple[np.ndarray, np.ndarray]:
    """(canonicalised values, raw values) of both rewards on the whole sample, from the cache."""
    if m.canon == "epic":
        mesh = cache["epic"]
        ti, pj = np.arange(data.n), np.arange(mesh.mesh.shape[-1])
        return mesh.canon(gamma, ti, pj), mesh.raw
    return cache["dard"], cache["dard_raw"]


def compare_rewards(env_id: str, reward_a: StackSpec, reward_b: StackSpec, *, metrics: Sequence[str] = ("epic",),
                    gamma: float = 0.99, samples: int = 2000, seed: int = 0, num_envs: int = 8,
                    env_kwargs: dict[str, Any] | None = None, mean_samples: int = 256, dard_samples: int = 32,
                    n_resamples: int = 1000, confidence: float = 0.95, data: RolloutData | None = None,
                    names: tuple[str, str] = ("A", "B")) -> list[DistanceResult]:
    """Distances between two reward stacks on the same ``samples`` transitions of ``env_id``
    (uniformly random actions), one ``DistanceResult`` per metric name.

    ``reward_a``/``reward_b``: term specs (``["env", {"name": "potential", ...}]``, built with
    ``gamma``) or zero-argument callables returning a fresh ``RewardStack``. ``mean_samples``:
    EPIC's ``(a, s')`` pairs (drawn from the rollouts); ``dard_samples``: DARD's draws per
    transition. The CI resamples the transitions (and, for EPIC, the pairs) with
    ``scipy.stats.bootstrap`` (percentile method); ``data``: reuse recorded rollouts.

    >>> phi = {"name": "potential", "params": {"potential": "rewardlab.envs.gridworld:goal_distance",
    ...                                        "params": {"goal": [2, 2], "size": 3}}}
    >>> [res] = compare_rewards("toy/GridWorld-v0", ["env"], ["env", phi], gamma=0.9, samples=200,
    ...                         env_kwargs={"size": 3, "goal": (2, 2)}, n_resamples=200)
    >>> res.value < 1e-6
    True
    """
    g = check_gamma(gamma)
    check_positive_int(mean_samples, "mean_samples")
    check_positive_int(dard_samples, "dard_samples")
    check_positive_int(n_resamples, "n_resamples", 2)
    if not 0.0 < confidence < 1.0:
        raise InvalidArgument(f"confidence must be in (0, 1), got {confidence!r}")
    parsed: list[Metric] = [parse_metric(m) for m in metrics]
    if not parsed:
        raise InvalidArgument("metrics must name at least one metric")
    for m in parsed:
        if m.canon == "minimal":
            # The minimal canonicalisation solves for Φ over all states: tabular only.
            raise InvalidArgument(f"metric {m.name!r}: the minimal canonicalisation needs the whole tabular reward "
                                  "(rewardlab.metrics.starc_distance); on rollouts use starc-epic-* or starc-dard-*")
    factories = [_as_factory(reward_a, g, "reward_a"), _as_factory(reward_b, g, "reward_b")]
    t0 = time.perf_counter()
    if data is None:
        data = collect_rollouts(env_id, samples, seed=seed, num_envs=num_envs, env_kwargs=env_kwargs)
    t_collect = time.perf_counter() - t0
    fn = StackRewards(data, [f() for f in factories])
    fn.check_markov(names)
    rng = np.random.default_rng(seed)
    base = {"env": env_id, "transitions": data.n, "states": data.n_states, "distinct_obs": int(data.key.max()) + 1,
            "env_reward_nonzero": int(np.count_nonzero(data.env_reward)),
            "episodes_ended": int((data.terminated | data.truncated).sum()), "policy": ROLLOUT_POLICY,
            "gamma": g, "collect_s": round(t_collect, 2)}
    cache: dict[str, Any] = {}
    results = []
    for m in parsed:
        t1 = time.perf_counter()
        details = dict(base)
        if m.kind == "raw" or m.canon == "none":
            raw = cache.get("raw")
            if raw is None:
                raw = cache["raw"] = fn(data.s, data.a, data.s2)

            def stat(ti, raw=raw, m=m):
                return distance_from_canon(raw[0, ti], raw[1, ti], m, raw=(raw[0, ti], raw[1, ti]))

            sample: tuple[np.ndarray, ...] = (np.arange(data.n),)
            paired = True
        elif m.canon == "epic":
            mesh = cache.get("epic")
            if mesh is None:
                pairs = rng.choice(data.n, size=min(mean_samples, data.n), replace=False)
                mesh = cache["epic"] = _epic_mesh(fn, data, pairs)
            m_pairs = mesh.mesh.shape[-1]

            def stat(ti, pj, mesh=mesh, m=m):
                c = mesh.canon(g, ti, pj)
                return distance_from_canon(c[0], c[1], m, raw=(mesh.raw[0, ti], mesh.raw[1, ti]))

            sample = (np.arange(data.n), np.arange(m_pairs))
            paired = False  # transitions and pairs are independent samples: resample each
            details["mean_samples"] = m_pairs
        else:  # dard
            if data.n_actions is None:
                raise InvalidArgument(f"metric {m.name!r} needs a discrete action space (DARD draws every action's "
                                      f"successor from the empirical model); {env_id} has continuous actions")
            canon = cache.get("dard")
            if canon is None:
                sampler = data.dard_sampler()
                canon = cache["dard"] = dard_canon_sampled(fn, data.s, data.a, data.s2, sampler, g, dard_samples, rng)
                cache["dard_fallback"] = data.dard_fallback
                cache["dard_raw"] = fn(data.s, data.a, data.s2)
            raw = cache["dard_raw"]

            def stat(ti, canon=canon, raw=raw, m=m):
                return distance_from_canon(canon[0, ti], canon[1, ti], m, raw=(raw[0, ti], raw[1, ti]))

            sample = (np.arange(data.n),)
            paired = True
            details["dard_samples"] = dard_samples
            details["dard_fallback_draws"] = cache["dard_fallback"]
        value = stat(*sample)
        if np.isnan(value):
            lo = hi = float("nan")
            flat = [name for name, c, r in zip(names, *_full_canon(m, cache, g, data), strict=True)
                    if np.isnan(distance_from_canon(c, c, Metric("pearson", "epic"), raw=(r, r)))]
            details["note"] = (f"reward {' and '.join(flat) or '?'} is constant after canonicalisation (no preference "
                               "between transitions under dones = 0): the Pearson distance is undefined")
        else:
            lo, hi, undefined = _bootstrap(stat, sample, paired=paired, n_resamples=n_resamples,
                                           confidence=confidence, seed=seed)
            if undefined:
                lo = hi = float("nan")
                details["note"] = (f"{undefined} of {n_resamples} bootstrap resamples have a constant canonicalised "
                                   "reward (too few informative transitions): no interval; collect more samples")
        details["env_model_queries"] = data.env_model_queries
        details["env_model_fallback"] = data.env_model_fallback
        details["seconds"] = round(time.perf_counter() - t1, 2)
        results.append(DistanceResult(m.name, float(value), lo, hi, confidence, details))
    return results
