"""Potential-based shaping keeps the optimal policy (Ng, Harada & Russell 1999), checked by
value iteration on random finite MDPs whose shaped rewards come from the real
``PotentialShaping`` term; plus the truncation and Φ-caching rules, unit by unit.
"""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.core import RewardStack, Transition, build_stack
from rewardlab.errors import ConfigError, InvalidArgument, TermOutputError, UnknownNameError
from rewardlab.shaping.potential import PotentialShaping, resolve_potential

GAMMA = 0.9
N_MDPS = 60
N_STATES, N_ACTIONS = 8, 4
TIE_TOL = 1e-4  # shaped rewards are float32: Q values agree to ~1e-5


def random_mdp(rng: np.random.Generator):
    """P[s, a, s'], R[s, a, s'] and the terminal (absorbing, episode-ending) states."""
    P = rng.dirichlet(np.full(N_STATES, 0.3), size=(N_STATES, N_ACTIONS))
    R = rng.uniform(-1.0, 1.0, size=(N_STATES, N_ACTIONS, N_STATES))
    terminal = np.zeros(N_STATES, bool)
    terminal[rng.choice(N_STATES, size=rng.integers(1, 3), replace=False)] = True
    return P, R, terminal


def q_values(P, R, terminal, gamma=GAMMA, iters=2000):
    """Episodic value iteration: entering a terminal state ends the episode (no future value)."""
    Q = np.zeros((N_STATES, N_ACTIONS))
    cont = (~terminal).astype(float)
    for _ in range(iters):
        V = Q.max(axis=1) * cont
        Q_new = (P * (R + gamma * V[None, None, :])).sum(axis=2)
        if np.abs(Q_new - Q).max() < 1e-12:
            return Q_new
        Q = Q_new
    return Q


def shaped_through_term(table: np.ndarray, terminal: np.ndarray, gamma=GAMMA) -> np.ndarray:
    """F[s, a, s'] computed by the real term, one env row per (s, a, s'), as a wrapper calls it."""
    s, a, s2 = (g.reshape(-1) for g in np.meshgrid(
        np.arange(N_STATES), np.arange(N_ACTIONS), np.arange(N_STATES), indexing="ij"))
    n = len(s)

    def phi(obs, info):  # Φ looks states up in a table; obs are state indices
        return table[np.asarray(obs)]

    term = PotentialShaping(phi, gamma=gamma)
    stack = RewardStack([term])
    ids = np.arange(n)
    stack.bind(n)
    stack.reset(ids)
    stack.observe_reset(s, {}, ids)  # every row starts its episode in state s
    t = Transition(s, a, s2, np.zeros(n), terminated=terminal[s2], truncated=np.zeros(n, bool), env_ids=ids)
    total, parts = stack(t)
    assert total.dtype == np.float32
    return total.astype(np.float64).reshape(N_STATES, N_ACTIONS, N_STATES)


def optimal_sets(Q: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(q >= q.max() - TIE_TOL)) for q in Q]


def policy_kept(Q: np.ndarray, Q_shaped: np.ndarray, terminal: np.ndarray) -> bool:
    """Every non-terminal state's greedy shaped action is optimal for the original MDP, and back."""
    orig, shaped = optimal_sets(Q), optimal_sets(Q_shaped)
    return all(int(np.argmax(Q_shaped[s])) in orig[s] and int(np.argmax(Q[s])) in shaped[s]
               for s in np.flatnonzero(~terminal))


def test_random_potentials_keep_the_optimal_policy_and_a_plain_bonus_does_not():
    rng = np.random.default_rng(2024)
    kept_potential = kept_bonus = 0
    for _ in range(N_MDPS):
        P, R, terminal = random_mdp(rng)
        Q = q_values(P, R, terminal)

        table = rng.uniform(-10.0, 10.0, N_STATES)  # terminal states get a Φ too: the term must zero it
        F = shaped_through_term(table, terminal)
        Q_pot = q_values(P, R + F, terminal)
        kept_potential += policy_kept(Q, Q_pot, terminal)
        # The theory, exactly: Q'(s, a) = Q(s, a) - Φ(s) on every non-terminal state.
        live = ~terminal
        np.testing.assert_allclose(Q_pot[live], Q[live] - table[live, None], atol=1e-4)

        bonus = rng.uniform(-10.0, 10.0, N_STATES)  # same scale, but b(s') is not γΦ(s') − Φ(s)
        Q_bonus = q_values(P, R + bonus[None, None, :], terminal)
        kept_bonus += policy_kept(Q, Q_bonus, terminal)

    assert kept_potential == N_MDPS
    # The comparison can fail: a non-potential bonus of the same size changes most optimal policies.
    assert kept_bonus <= N_MDPS // 4


def test_potential_that_ignores_the_terminal_rule_would_be_caught():
    """Control: Φ(terminal) ≠ 0 (what a term without the terminal rule computes) breaks invariance."""
    rng = np.random.default_rng(7)
    broken = 0
    for _ in range(N_MDPS):
        P, R, terminal = random_mdp(rng)
        table = rng.uniform(-10.0, 10.0, N_STATES)
        F_wrong = GAMMA * table[None, None, :] - table[:, None, None]
        broken += not policy_kept(q_values(P, R, terminal), q_values(P, R + F_wrong, terminal), terminal)
    assert broken >= N_MDPS // 2


# -- the rules, one transition at a time -------------------------------------------------------


def phi_table(table):
    def phi(obs, info):
        return np.asarray(table, np.float32)[np.asarray(obs)]
    return phi


def step(term, obs, next_obs, terminated, truncated):
    n = len(obs)
    return term(Transition(np.asarray(obs), np.zeros(n, np.int64), np.asarray(next_obs), np.zeros(n),
                           np.asarray(terminated), np.asarray(truncated)))


def test_truncation_keeps_gamma_phi_next_and_termination_uses_zero():
    table = [2.0, 5.0, 10.0]
    term = PotentialShaping(phi_table(table), gamma=0.5)
    term.bind(4)
    term.observe_reset(np.array([0, 0, 0, 0]), {}, np.arange(4))
    #            running          truncated        terminated       both flags (terminal wins)
    out = step(term, [0, 0, 0, 0], [1, 2, 1, 2], [False, False, True, True], [False, True, False, True])
    np.testing.assert_allclose(out, [0.5 * 5 - 2, 0.5 * 10 - 2, -2.0, -2.0])
    assert out.dtype == np.float32


def test_scale_multiplies_the_potential():
    term = PotentialShaping(phi_table([1.0, 3.0]), gamma=1.0, scale=2.0)
    np.testing.assert_allclose(step(term, [0], [1], [False], [False]), [2.0 * 3 - 2.0 * 1])


def test_phi_of_s_is_the_value_cached_on_entry():
    table = np.array([1.0, 2.0, 4.0], np.float32)
    calls = []

    def phi(obs, info):
        calls.append(np.asarray(obs).copy())
        return table[np.asarray(obs)].copy()

    term = PotentialShaping(phi, gamma=1.0)
    stack = RewardStack([term])
    stack.bind(1)
    stack.observe_reset(np.array([0]), {}, np.arange(1))   # enters s=0 with Φ(0) = 1
    table[:] = [100.0, 200.0, 400.0]                          # the potential changes (e.g. learned)
    r1 = step(term, [0], [1], [False], [False])
    np.testing.assert_allclose(r1, [200.0 - 1.0])             # Φ(s) from entry, Φ(s') now
    table[:] = [-1.0, -2.0, -4.0]
    r2 = step(term, [1], [2], [False], [False])
    np.testing.assert_allclose(r2, [-4.0 - 200.0])            # Φ(1) cached when entered at step 1
    # Φ was evaluated once per entered state, never re-evaluated for s.
    assert [int(c[0]) for c in calls] == [0, 1, 2]
    # Telescoping: with γ = 1 the episode's shaping sums to Φ_last(s_T) − Φ_first(s_0).
    assert float(r1[0] + r2[0]) == -4.0 - 1.0


def test_reset_forgets_the_cache_and_direct_use_computes_phi_of_s():
    term = PotentialShaping(phi_table([1.0, 2.0, 4.0]), gamma=1.0)
    term.bind(2)
    term.observe_reset(np.array([0, 0]), {}, np.arange(2))
    step(term, [0, 0], [2, 1], [False, False], [False, False])     # caches Φ(2)=4, Φ(1)=2
    term.reset(np.array([1]))                                      # env 1 starts over, no reset obs seen
    out = step(term, [2, 0], [1, 1], [False, False], [False, False])
    np.testing.assert_allclose(out, [2.0 - 4.0, 2.0 - 1.0])        # env 1: Φ(s) from its obs (0)


def test_observe_reset_only_touches_the_given_envs():
    term = PotentialShaping(phi_table([1.0, 2.0, 4.0]), gamma=1.0)
    term.bind(2)
    term.observe_reset(np.array([0, 0]), {}, np.arange(2))
    step(term, [0, 0], [1, 1], [False, False], [False, False])
    term.observe_reset(np.array([9, 2]), {}, np.array([1]))        # row 0's obs is ignored
    out = step(term, [1, 2], [0, 0], [False, False], [False, False])
    np.testing.assert_allclose(out, [1.0 - 2.0, 1.0 - 4.0])


# -- argument checks and potential resolution ------------------------------------------------


@pytest.mark.parametrize("gamma", [-0.1, 1.5])
def test_gamma_outside_unit_interval(gamma):
    with pytest.raises(InvalidArgument, match=rf"potential gamma must be in \[0, 1\], got {gamma}"):
        PotentialShaping(phi_table([0.0]), gamma=gamma)


def test_non_finite_scale():
    with pytest.raises(InvalidArgument, match="potential scale must be finite, got inf"):
        PotentialShaping(phi_table([0.0]), scale=float("inf"))


@pytest.mark.parametrize("bad", [lambda obs, info: np.zeros(3), lambda obs, info: np.full(2, np.nan)])
def test_bad_potential_output(bad):
    term = PotentialShaping(bad)
    with pytest.raises(TermOutputError, match="potential '<lambda>' must return (2 values|finite values)"):
        term.observe_reset(np.zeros(2), {}, np.arange(2))


def test_potential_resolution_errors():
    with pytest.raises(UnknownNameError, match=r"unknown potential 'minihack/stairs_distanc'\. "
                                               r"Did you mean 'minihack/stairs_distance'\?"):
        PotentialShaping("minihack/stairs_distanc")
    with pytest.raises(ConfigError, match=r"is a plain function and takes no params, got \['cap'\]"):
        resolve_potential(phi_table([0.0]), {"cap": 3})
    with pytest.raises(ConfigError, match=r"potential 'minihack/stairs_distance': .*unexpected keyword argument 'kap'"):
        build_stack([{"name": "potential", "params": {"potential": "minihack/stairs_distance", "params": {"kap": 2}}}])
    with pytest.raises(ConfigError, match="reward term 'potential': potential gamma must be in"):
        build_stack([{"name": "potential", "params": {"potential": "minihack/stairs_distance", "gamma": 2.0}}])


def test_potential_from_import_path_factory():
    phi = resolve_potential("rewardlab.envs.minihack_potentials:stairs_distance", {"cap": 4.0})
    chars = np.full((1, 3, 5), ord("."), np.uint8)
    chars[0, 2, 4] = ord(">")
    np.testing.assert_allclose(phi(None, {"chars": chars, "agent_pos": np.array([[0, 0]])}), [-1.0])  # capped at 4
    np.testing.assert_allclose(phi(None, {"chars": chars, "agent_pos": np.array([[3, 1]])}), [-0.25])


def test_cache_follows_env_ids_in_any_order():
    """Rows in another order than 0..n-1 must read and write each env's own Φ(s)."""
    term = PotentialShaping(lambda obs, info: np.asarray(obs, np.float32), gamma=1.0)
    term.bind(4)
    term.observe_reset(np.array([10.0, 20.0, 30.0, 40.0]), {}, np.arange(4))
    ids = np.array([0, 2, 1, 3])
    next_obs = np.array([11.0, 33.0, 22.0, 44.0])  # rows follow ids: env 2 moves to 33
    none = np.zeros(4, bool)
    out = term(Transition(None, None, next_obs, np.zeros(4), none, none, env_ids=ids))
    np.testing.assert_allclose(out, [1.0, 3.0, 2.0, 4.0])  # Φ(s') − Φ(s) of each env
    out = term(Transition(None, None, next_obs + 1, np.zeros(4), none, none, env_ids=ids))
    np.testing.assert_allclose(out, [1.0, 1.0, 1.0, 1.0])
