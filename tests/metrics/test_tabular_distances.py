"""Exact tabular reward distances: invariance to potential shaping and positive scaling,
symmetry, the triangle inequality, regret, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.errors import InvalidArgument
from rewardlab.metrics import (
    dard_canon,
    dard_distance,
    direct_distance,
    epic_canon,
    epic_distance,
    minimal_canon,
    normalized_regret,
    optimal_policy,
    pearson_distance,
    policy_values,
    shape_reward,
    starc_distance,
)

GAMMA = 0.9
N_MDPS = 20
NS, NA = 6, 3
TOL = 1e-6  # Pearson distances are sqrt((1 − ρ)/2): a 1e-16 round-off in ρ shows as ~1e-8


def random_mdp(rng: np.random.Generator):
    """Transition tensor, a reward, state/action distributions and a coverage, all random."""
    T = rng.dirichlet(np.full(NS, 0.5), size=(NS, NA))
    r = rng.normal(size=(NS, NA, NS))
    d_s = rng.dirichlet(np.ones(NS))
    d_a = rng.dirichlet(np.ones(NA))
    cov = rng.dirichlet(np.ones(NS * NA * NS)).reshape(NS, NA, NS)
    return T, r, d_s, d_a, cov


def all_distances(r1, r2, T, d_s=None, d_a=None, cov=None) -> dict[str, float]:
    out = {
        "epic": epic_distance(r1, r2, GAMMA, state_dist=d_s, action_dist=d_a, coverage=cov),
        "dard": dard_distance(r1, r2, T, GAMMA, action_dist=d_a, coverage=cov),
    }
    for canon in ("epic", "dard", "minimal"):
        for norm in (1, 2, np.inf):
            for dist in (1, 2, np.inf):
                out[f"starc-{canon}-{norm}-{dist}"] = starc_distance(
                    r1, r2, GAMMA, canon=canon, norm=norm, dist=dist, transitions=T, state_dist=d_s,
                    action_dist=d_a, coverage=cov)
    return out


@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "random-distributions"])
def test_zero_under_potential_shaping_and_positive_scaling(weighted):
    rng = np.random.default_rng(0)
    for _ in range(N_MDPS):
        T, r, d_s, d_a, cov = random_mdp(rng)
        if not weighted:
            d_s = d_a = cov = None
        phi = rng.normal(scale=3.0, size=NS)
        scale = float(rng.uniform(0.05, 20.0))
        equivalent = scale * shape_reward(r, phi, GAMMA)
        for name, d in all_distances(r, equivalent, T, d_s, d_a, cov).items():
            assert d < TOL, (name, d)


def test_canonicalisations_remove_shaping_exactly():
    rng = np.random.default_rng(1)
    T, r, d_s, d_a, cov = random_mdp(rng)
    shaped = shape_reward(r, rng.normal(size=NS), GAMMA)
    np.testing.assert_allclose(epic_canon(shaped, GAMMA, d_s, d_a), epic_canon(r, GAMMA, d_s, d_a), atol=1e-12)
    np.testing.assert_allclose(dard_canon(shaped, T, GAMMA, d_a), dard_canon(r, T, GAMMA, d_a), atol=1e-12)
    np.testing.assert_allclose(minimal_canon(shaped, GAMMA, cov), minimal_canon(r, GAMMA, cov), atol=1e-9)


def test_dard_canon_matches_the_definition_by_brute_force():
    # E[R(S', A, S'')] with S' ~ T(s, A), S'' ~ T(s', A), summed term by term.
    rng = np.random.default_rng(2)
    T, r, _, d_a, _ = random_mdp(rng)
    expected = np.empty_like(r)
    for s in range(NS):
        for a in range(NA):
            for s2 in range(NS):
                m_s = sum(d_a[b] * T[s, b, x] * r[s, b, x] for b in range(NA) for x in range(NS))
                m_s2 = sum(d_a[b] * T[s2, b, x] * r[s2, b, x] for b in range(NA) for x in range(NS))
                cross = sum(d_a[b] * T[s, b, x] * T[s2, b, y] * r[x, b, y]
                            for b in range(NA) for x in range(NS) for y in range(NS))
                expected[s, a, s2] = r[s, a, s2] + GAMMA * m_s2 - m_s - GAMMA * cross
    np.testing.assert_allclose(dard_canon(r, T, GAMMA, d_a), expected, atol=1e-12)


def test_minimal_canon_is_the_least_norm_shaping():
    # Any other potential gives a larger coverage-weighted L2 norm than the minimiser.
    rng = np.random.default_rng(3)
    _, r, _, _, cov = random_mdp(rng)
    best = minimal_canon(r, GAMMA, cov)
    norm = lambda x: np.sum(cov * x * x)  # noqa: E731
    for _ in range(50):
        other = shape_reward(best, rng.normal(scale=0.1, size=NS), GAMMA)
        assert norm(other) >= norm(best) - 1e-12


def test_not_invariant_to_what_changes_incentives():
    rng = np.random.default_rng(4)
    T, r, *_ = random_mdp(rng)
    assert epic_distance(r, -r, GAMMA) == pytest.approx(1.0)
    assert dard_distance(r, -r, T, GAMMA) == pytest.approx(1.0)
    assert starc_distance(r, -r, GAMMA, canon="minimal") == pytest.approx(2.0)
    other = rng.normal(size=r.shape)
    assert min(all_distances(r, other, T).values()) > 0.1
    # The raw L2 distance sees shaping as a difference; the canonicalised ones do not.
    assert direct_distance(r, shape_reward(r, np.full(NS, 5.0), GAMMA)) > 0.1


def test_symmetry_and_triangle_inequality():
    rng = np.random.default_rng(5)
    for _ in range(N_MDPS):
        T, r1, d_s, d_a, cov = random_mdp(rng)
        r2 = r1 + rng.normal(scale=rng.uniform(0.1, 2.0), size=r1.shape)
        r3 = rng.normal(size=r1.shape)
        d12, d21 = all_distances(r1, r2, T, d_s, d_a, cov), all_distances(r2, r1, T, d_s, d_a, cov)
        d13, d23 = all_distances(r1, r3, T, d_s, d_a, cov), all_distances(r2, r3, T, d_s, d_a, cov)
        for name in d12:
            assert d12[name] == pytest.approx(d21[name], abs=1e-12), name
            assert d13[name] <= d12[name] + d23[name] + 1e-12, name


def test_reward_without_preferences_is_handled():
    # Pure shaping canonicalises to zero: STARC keeps it at zero (distance 1 to any unit reward
    # with L2/L2); Pearson is undefined and says so.
    rng = np.random.default_rng(6)
    T, r, *_ = random_mdp(rng)
    pure = shape_reward(np.zeros_like(r), rng.normal(size=NS), GAMMA)
    assert starc_distance(pure, r, GAMMA) == pytest.approx(1.0)
    assert starc_distance(pure, 2 * pure, GAMMA) == 0.0
    with pytest.warns(RuntimeWarning, match="r1 is constant after canonicalisation"):
        assert np.isnan(epic_distance(pure, r, GAMMA))


def test_regret_of_equivalent_and_opposite_rewards():
    rng = np.random.default_rng(7)
    for _ in range(N_MDPS):
        T, r, *_ = random_mdp(rng)
        assert normalized_regret(r, 3.0 * shape_reward(r, rng.normal(size=NS), GAMMA), T, GAMMA) == pytest.approx(0.0)
        assert normalized_regret(r, -r, T, GAMMA) == pytest.approx(1.0)
        assert 0.0 <= normalized_regret(r, rng.normal(size=r.shape), T, GAMMA) <= 1.0


def test_optimal_policy_beats_every_deterministic_policy():
    rng = np.random.default_rng(8)
    T, r, *_ = random_mdp(rng)
    ns, na = 4, 2
    T, r = T[:ns, :na, :ns] / T[:ns, :na, :ns].sum(axis=2, keepdims=True), r[:ns, :na, :ns]
    best = policy_values(r, T, GAMMA, optimal_policy(r, T, GAMMA))
    worst = policy_values(r, T, GAMMA, optimal_policy(r, T, GAMMA, maximize=False))
    for code in range(na**ns):
        pi = np.array([(code // na**k) % na for k in range(ns)])
        v = policy_values(r, T, GAMMA, pi)
        assert (v <= best + 1e-9).all() and (v >= worst - 1e-9).all()


@pytest.mark.parametrize("call, match", [
    (lambda r, T: epic_distance(r, r[:, :, :3], GAMMA), "shape"),
    (lambda r, T: epic_distance(r[0], r[0], GAMMA), r"shape \(S, A, S\)"),
    (lambda r, T: epic_distance(r, r, 1.5), r"gamma must be in \[0, 1\], got 1.5"),
    (lambda r, T: epic_distance(r, r, GAMMA, state_dist=np.ones(NS)), "state_dist must sum to 1"),
    (lambda r, T: epic_distance(r, r, GAMMA, action_dist=np.ones(2) / 2), r"action_dist must have shape \(3,\)"),
    (lambda r, T: dard_distance(r, r, None, GAMMA), "transitions .* are needed"),
    (lambda r, T: dard_distance(r, r, T * 2, GAMMA), r"T\[0, 0, :\] sums to"),
    (lambda r, T: starc_distance(r, r, GAMMA, canon="epik"), "canon must be one of 'epic', 'dard', 'minimal'"),
    (lambda r, T: starc_distance(r, r, GAMMA, norm=3), "norm must be one of 1, 2, inf"),
    (lambda r, T: epic_distance(np.full((NS, NA, NS), np.nan), r, GAMMA), "r1 must be finite"),
    (lambda r, T: normalized_regret(r, r, T, 1.0), r"gamma must be in \[0, 1\)"),
    (lambda r, T: normalized_regret(np.ones_like(r), r, T, GAMMA), "every policy the same return"),
])
def test_bad_input_names_the_argument(call, match):
    T, r, *_ = random_mdp(np.random.default_rng(9))
    with pytest.raises(InvalidArgument, match=match):
        call(r, T)


def test_pearson_distance_bounds():
    assert pearson_distance([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0
    assert pearson_distance([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(1.0)
    assert pearson_distance([1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]) == pytest.approx(np.sqrt(0.5))
