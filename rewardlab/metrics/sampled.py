"""Sample-based reward distances: canonicalise a batch of transitions from samples.

Contents:

- ``Metric`` and ``parse_metric``: metric names (``epic``, ``dard``, ``starc-epic-l2``,
  ``starc-dard-l1-linf``, ``raw-l2`` ...) as data;
- ``epic_canon_sampled``: EPIC's canonicalisation with the expectations estimated from
  sampled ``(a, s')`` pairs, as the reference code does (``epic_sample.py``);
- ``dard_canon_sampled``: DARD's, with ``A ~ D_A``, ``S' ~ T(s, A)``, ``S'' ~ T(s', A)`` drawn by a
  sampler (from a transition tensor: ``tabular_sampler``; from rollouts: ``rewardlab.metrics.rollout``);
- ``distance_from_canon``: the distance of two canonicalised batches (Pearson or STARC norms),
  vectorised over bootstrap resamples.

States are opaque integer ids: a reward function ``reward_fn(states, actions, next_states)``
maps arrays of ids and actions to rewards of shape ``(..., n)`` (several rewards at once are
allowed: a leading axis). Both rewards of a comparison must be evaluated on the same samples,
which is what makes the estimate of each canonicalisation remove shaping *exactly*, not just
in expectation (the same ``S'`` samples appear with ``+γ`` and ``−γ``).

>>> rng = np.random.default_rng(0)
>>> r = rng.normal(size=(3, 2, 3)); phi = rng.normal(size=3)
>>> both = lambda s, a, s2: np.stack([r[s, a, s2], 2.0 * (r[s, a, s2] + 0.9 * phi[s2] - phi[s])])
>>> s, a, s2 = rng.integers(0, 3, 50), rng.integers(0, 2, 50), rng.integers(0, 3, 50)
>>> c = epic_canon_sampled(both, s, a, s2, rng.integers(0, 2, 20), rng.integers(0, 3, 20), gamma=0.9)
>>> round(distance_from_canon(c[0], c[1], parse_metric("epic")), 12)
0.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.errors import InvalidArgument
from rewardlab.metrics._checks import check_choice, check_gamma, check_norm, check_positive_int, norm_label
from rewardlab.metrics.tabular import CANONS

__all__ = [
    "Metric", "parse_metric", "METRIC_HELP", "RewardFn", "epic_canon_sampled", "dard_canon_sampled",
    "tabular_sampler", "distance_from_canon",
]

RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# Mesh evaluations per reward_fn call: bounds memory when a reward reads large observations.
CHUNK = 32768
# Canonicalised values from float32 reward terms keep round-off of ~1e-7 relative to the raw
# reward; below this fraction of the raw reward's norm a canonicalised reward counts as zero.
SAMPLED_ZERO_RTOL = 1e-5

METRIC_HELP = ("epic | dard (Pearson distance of the canonicalised rewards) | starc-CANON-N[-D] with CANON in "
               "epic, dard, minimal, none and N, D in l1, l2, linf (normalise by L_N, distance L_D; D defaults "
               "to N) | raw-P (L_P distance of the raw rewards)")


@dataclass(frozen=True)
class Metric:
    """A reward distance by parts: ``kind`` is ``pearson`` (EPIC/DARD), ``starc`` or ``raw``."""

    kind: str
    canon: str = "none"
    norm: float = 2.0
    dist: float = 2.0

    @property
    def name(self) -> str:
        if self.kind == "pearson":
            return self.canon
        if self.kind == "raw":
            return f"raw-{norm_label(self.dist)}"
        tail = "" if self.dist == self.norm else f"-{norm_label(self.dist)}"
        return f"starc-{self.canon}-{norm_label(self.norm)}{tail}"


def parse_metric(name: str) -> Metric:
    """``"epic"``, ``"dard"``, ``"starc-epic-l2"``, ``"starc-minimal-l2-linf"``, ``"raw-l2"`` → ``Metric``.

    >>> parse_metric("starc-dard-l1"), parse_metric("epic").name
    (Metric(kind='starc', canon='dard', norm=1.0, dist=1.0), 'epic')
    """
    if not isinstance(name, str):
        raise InvalidArgument(f"metric must be a string ({METRIC_HELP}), got {name!r}")
    parts = name.lower().split("-")
    if parts in (["epic"], ["dard"]):
        return Metric("pearson", parts[0])
    if parts[0] == "raw" and len(parts) == 2:
        p = _norm_part(parts[1], name)
        return Metric("raw", "none", p, p)
    if parts[0] == "starc" and len(parts) in (3, 4) and parts[1] in CANONS:
        n = _norm_part(parts[2], name)
        d = _norm_part(parts[3], name) if len(parts) == 4 else n
        return Metric("starc", parts[1], n, d)
    raise InvalidArgument(f"unknown metric {name!r}; allowed: {METRIC_HELP}")


def _norm_part(text: str, name: str) -> float:
    try:
        return check_norm(text)
    except InvalidArgument:
        raise InvalidArgument(f"metric {name!r}: norm {text!r} must be l1, l2 or linf") from None


def _eval_chunked(reward_fn: RewardFn, s: np.ndarray, a: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """``reward_fn`` over long flat batches, ``CHUNK`` rows at a time; float64 ``(..., n)``."""
    out = [np.asarray(reward_fn(s[i:i + CHUNK], a[i:i + CHUNK], s2[i:i + CHUNK]), np.float64)
           for i in range(0, len(s), CHUNK)]
    return np.concatenate(out, axis=-1)


def epic_canon_sampled(reward_fn: RewardFn, states: Any, actions: Any, next_states: Any, mean_actions: Any,
                       mean_next_states: Any, gamma: float) -> np.ndarray:
    """EPIC canonical rewards of the batch ``(states, actions, next_states)``:
    ``R(s,a,s') + γ·m(s') − m(s) − γ·mean_j m(y_j)`` with ``m(x) = mean_j R(x, a_j, y_j)`` over the
    ``M`` sampled pairs ``(a_j, y_j) = (mean_actions[j], mean_next_states[j])`` (``y_j ~ D_S``,
    ``a_j ~ D_A``). Costs ``(#distinct states + M) × M`` reward evaluations.
    """
    g = check_gamma(gamma)
    s, a, s2 = _batch(states, actions, next_states)
    ma, my = np.asarray(mean_actions), np.asarray(mean_next_states).reshape(-1)
    m = len(my)
    if m < 1 or len(ma) != m:
        raise InvalidArgument(f"mean_actions and mean_next_states must be the same non-zero length, got {len(ma)} "
                              f"and {m}")
    n = len(s)
    raw = _eval_chunked(reward_fn, s, a, s2)
    uniq, inv = np.unique(np.concatenate([s, s2, my]), return_inverse=True)
    # Mesh: every distinct state × every sampled (a, s') pair.
    mesh_s = np.repeat(uniq, m)
    mesh_a = np.tile(ma, (len(uniq),) + (1,) * (ma.ndim - 1))
    mesh_y = np.tile(my, len(uniq))
    means = _eval_chunked(reward_fn, mesh_s, mesh_a, mesh_y)
    means = means.reshape(means.shape[:-1] + (len(uniq), m)).mean(axis=-1)
    m_s, m_s2, m_y = means[..., inv[:n]], means[..., inv[n:2 * n]], means[..., inv[2 * n:]]
    # The total mean uses the same y_j as the means themselves, so shaping cancels exactly.
    total = m_y.mean(axis=-1, keepdims=True)
    return raw + g * m_s2 - m_s - g * total


def dard_canon_sampled(reward_fn: RewardFn, states: Any, actions: Any, next_states: Any,
                       sampler: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]], gamma: float,
                       n_samples: int = 32, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """DARD canonical rewards of the batch:
    ``R(s,a,s') + γ·mean_j R(s', A_j, S''_j) − mean_j R(s, A_j, S'_j) − γ·mean_j R(S'_j, A_j, S''_j)``
    where ``sampler(states, next_states, n_samples, rng) -> (A, S', S'')`` (each ``(n, n_samples)``)
    draws ``A ~ D_A``, ``S' ~ T(s, A)``, ``S'' ~ T(s', A)``. The same draws enter all three means,
    so shaping cancels exactly. Costs ``3·n·n_samples`` reward evaluations.
    """
    g = check_gamma(gamma)
    k = check_positive_int(n_samples, "n_samples")
    rng = np.random.default_rng(rng)
    s, a, s2 = _batch(states, actions, next_states)
    n = len(s)
    big_a, big_s1, big_s2 = (np.asarray(x) for x in sampler(s, s2, k, rng))
    if big_s1.shape != (n, k) or big_s2.shape != (n, k) or big_a.shape[:2] != (n, k):
        raise InvalidArgument(f"sampler must return (A, S', S'') of shape ({n}, {k}), got "
                              f"{big_a.shape}, {big_s1.shape}, {big_s2.shape}")
    raw = _eval_chunked(reward_fn, s, a, s2)
    flat_a = big_a.reshape((n * k,) + big_a.shape[2:])
    from_s = _eval_chunked(reward_fn, np.repeat(s, k), flat_a, big_s1.reshape(-1))
    from_s2 = _eval_chunked(reward_fn, np.repeat(s2, k), flat_a, big_s2.reshape(-1))
    cross = _eval_chunked(reward_fn, big_s1.reshape(-1), flat_a, big_s2.reshape(-1))

    def mean(x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[:-1] + (n, k)).mean(axis=-1)

    return raw + g * mean(from_s2) - mean(from_s) - g * mean(cross)


def tabular_sampler(transitions: Any, action_dist: Any = None):
    """A DARD ``sampler`` for a known tabular model ``T[s, a, s']`` (states are indices).

    >>> T = np.zeros((2, 1, 2)); T[:, 0, 1] = 1.0            # everything moves to state 1
    >>> a, s1, s2 = tabular_sampler(T)(np.array([0]), np.array([1]), 3, np.random.default_rng(0))
    >>> s1.tolist(), s2.tolist()
    ([[1, 1, 1]], [[1, 1, 1]])
    """
    t = np.asarray(transitions, np.float64)
    na = t.shape[1]
    d_a = np.full(na, 1.0 / na) if action_dist is None else np.asarray(action_dist, np.float64)
    cdf = np.cumsum(t, axis=2)
    cdf[..., -1] = 1.0  # guard against round-off in the last bin

    def draw(s: np.ndarray, acts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(acts.shape)
        return (cdf[s[:, None], acts] < u[..., None]).sum(axis=-1)

    def sampler(s: np.ndarray, s2: np.ndarray, k: int, rng: np.random.Generator):
        acts = rng.choice(na, size=(len(s), k), p=d_a)
        return acts, draw(np.asarray(s), acts, rng), draw(np.asarray(s2), acts, rng)

    return sampler


def _batch(states: Any, actions: Any, next_states: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s, a, s2 = np.asarray(states).reshape(-1), np.asarray(actions), np.asarray(next_states).reshape(-1)
    if not (len(s) == len(a) == len(s2)) or len(s) == 0:
        raise InvalidArgument(f"states, actions and next_states must be the same non-zero length, got {len(s)}, "
                              f"{len(a)}, {len(s2)}")
    return s, a, s2


def _lp(x: np.ndarray, p: float) -> np.ndarray:
    """Lp norms along the last axis under the uniform (empirical) distribution."""
    x = np.abs(x)
    if p == np.inf:
        return x.max(axis=-1)
    return np.mean(x**p, axis=-1) ** (1.0 / p)


def distance_from_canon(c1: Any, c2: Any, metric: Metric, *, raw: tuple[Any, Any] | None = None,
                        zero_rtol: float = SAMPLED_ZERO_RTOL) -> Any:
    """The ``metric`` distance of canonicalised batches ``c1``, ``c2`` (shape ``(..., n)``, the
    empirical distribution of the batch as the coverage; leading axes: e.g. bootstrap resamples).

    ``raw``: the raw rewards of the batch, which set the scale below which a canonicalised
    reward counts as zero (``zero_rtol`` × its norm); for ``metric.kind == "raw"`` they are the
    input. Pearson distances of a constant side are ``nan`` (undefined); STARC keeps it at zero.
    """
    if not isinstance(metric, Metric):
        raise InvalidArgument(f"metric must be a Metric (use parse_metric), got {type(metric).__name__}")
    check_choice(metric.kind, ("pearson", "starc", "raw"), "metric.kind")
    c1, c2 = np.asarray(c1, np.float64), np.asarray(c2, np.float64)
    if c1.shape != c2.shape:
        raise InvalidArgument(f"the two canonicalised batches must have the same shape, got {c1.shape} and {c2.shape}")
    if metric.kind == "raw":
        return _scalar(_lp(c1 - c2, metric.dist))
    if raw is None:
        ref1 = ref2 = 0.0
    else:
        ref1, ref2 = (float(_lp(np.asarray(x, np.float64).reshape(-1), 2.0)) for x in raw)
    if metric.kind == "pearson":
        x = c1 - c1.mean(axis=-1, keepdims=True)
        y = c2 - c2.mean(axis=-1, keepdims=True)
        vx, vy = (x * x).mean(axis=-1), (y * y).mean(axis=-1)
        flat = (vx <= (zero_rtol * ref1) ** 2) | (vy <= (zero_rtol * ref2) ** 2) | (vx == 0) | (vy == 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.clip((x * y).mean(axis=-1) / np.sqrt(vx * vy), -1.0, 1.0)
        return _scalar(np.where(flat, np.nan, np.sqrt(0.5 * (1.0 - rho))))
    n1, n2 = _lp(c1, metric.norm), _lp(c2, metric.norm)
    with np.errstate(invalid="ignore", divide="ignore"):
        u1 = np.where((n1 <= zero_rtol * ref1)[..., None] | (n1 == 0)[..., None], 0.0, c1 / n1[..., None])
        u2 = np.where((n2 <= zero_rtol * ref2)[..., None] | (n2 == 0)[..., None], 0.0, c2 / n2[..., None])
    return _scalar(_lp(u1 - u2, metric.dist))


def _scalar(x: np.ndarray) -> Any:
    return float(x) if np.ndim(x) == 0 else x
