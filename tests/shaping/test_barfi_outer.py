"""BARFI's outer step as the term computes it, against finite differences.

The first-order hypergradient (one Neumann term) with ``∇_θ J`` taken at ``θ' = θ − α∇_θℓ(θ, φ)``
is exactly ``d/dφ J(θ'(φ))``: the outer objective composed with one inner step. The test builds
``J``, the inner loss on older rollouts (GAE of ``r_φ`` with γ_φ, a potential aux term
re-discounted with γ_φ) and the L2 penalties from a real PPO run, and checks every reward
parameter (φ network and ψ) against central differences in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rewardlab
from rewardlab.agents.ppo import make_ppo
from rewardlab.core.terms import build_stack, build_term
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError

GOAL = {"name": "potential", "params": {"potential": "rewardlab.envs.gridworld:goal_distance",
                                        "params": {"goal": [3, 3], "size": 4}, "scale": 2.0}}


def _trained_term(**params):
    spec = {"aux": GOAL, "value_hidden": [], "update_every": 1000, "hessian_rollouts": 2, **params}
    stack = build_stack([{"name": "barfi", "params": spec}])
    venv = rewardlab.make_vec("toy/GridWorld-v0", 2, reward=stack, size=4, max_episode_steps=12)
    agent = make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 16, "n_minibatches": 1})
    agent.learn(3 * 32)  # three rollouts: the last one is the outer batch, the two before it the inner
    return stack.terms[0], agent


def _double(batch):
    return {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()}


def test_first_order_outer_step_is_the_exact_derivative_through_one_inner_step():
    term, agent = _trained_term(hidden=[3], reward_l2=0.05, gamma_l2=0.3, method="first_order")
    torch.manual_seed(0)
    with torch.no_grad():  # move φ and ψ off their initial values (a zero output layer is a special point)
        for p in term.phi_net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    term.phi_net.double()
    term.psi = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    batches = [_double(term.with_inputs(b)) for b in term._history]
    outer, inner = batches[-1], batches[:-1]
    assert len(inner) == 1 and "phi_parts" in outer   # potential aux: Φ(s), Φ(s') kept for γ_φ
    params, policy = agent.functional()
    params = {k: v.detach().double().requires_grad_(True) for k, v in params.items()}
    alpha = 0.5

    def theta_prime(create_graph: bool):
        loss = term.inner_loss(params, policy, inner)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph, allow_unused=True)
        return {k: p - alpha * g if g is not None else p for (k, p), g in zip(params.items(), grads, strict=True)}

    def objective() -> float:  # J(θ'(φ)) − penalty(φ)
        with torch.enable_grad():
            tp = {k: v.detach() for k, v in theta_prime(False).items()}
        with torch.no_grad():
            return float(term.outer_objective(tp, policy, outer) - term.penalty())

    term.neumann_alpha = alpha
    at = {k: v.detach().requires_grad_(True) for k, v in theta_prime(False).items()}
    analytic = torch.cat([g.reshape(-1) for g in term.hypergradient(params, policy, outer, inner,
                                                                     outer_params=at)]).numpy()
    flat = term.reward_params()
    n = sum(p.numel() for p in flat)
    assert len(analytic) == n

    def shift(v: np.ndarray) -> None:
        offsets = np.cumsum([0] + [p.numel() for p in flat])
        with torch.no_grad():
            for p, a, b in zip(flat, offsets[:-1], offsets[1:], strict=True):
                p.add_(torch.from_numpy(v[a:b]).reshape(p.shape))

    # Directional derivatives: the ψ axis, the aux-weight bias axis, and random directions.
    rng = np.random.default_rng(0)
    directions = [np.eye(n)[-1], np.eye(n)[n - 3]] + [rng.normal(size=n) for _ in range(3)]
    eps = 1e-6
    for v in directions:
        shift(eps * v)
        up = objective()
        shift(-2 * eps * v)
        down = objective()
        shift(eps * v)
        fd = (up - down) / (2 * eps)
        assert abs(fd) > 1e-4                                   # a derivative worth matching
        assert float(analytic @ v) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_potential_aux_discounts_with_the_learned_gamma():
    term = build_term("barfi", {"aux": GOAL}, gamma=0.99)
    term.psi.data.fill_(0.0)                                   # γ_φ = 0.5
    term.bind(2)
    pos0, pos1 = np.array([[0, 0], [1, 1]]), np.array([[0, 1], [2, 2]])
    term.observe_reset(np.zeros((2, 16)), {"pos": pos0}, np.arange(2))
    t = Transition(np.zeros((2, 16)), np.zeros(2), np.zeros((2, 16)), np.zeros(2), np.array([False, True]),
                   np.zeros(2, bool), {"pos": pos1})
    phi = lambda pos: -2.0 * np.abs(pos - 3).sum(1) / 4          # noqa: E731  Φ of GOAL
    expected = 0.5 * np.where([False, True], 0.0, phi(pos1)) - phi(pos0)
    np.testing.assert_allclose(term(t), expected, rtol=1e-6)   # r_p = 0, φ = (1, 0): r_φ = r_aux
    assert term.aux.gamma == term.discount == 0.5


def test_aux_terms_that_cannot_follow_the_learned_gamma_are_refused():
    program = {"name": "derl_program", "params": {"program": "add(env, goal)",
                                                  "primitives": {"env": {"name": "env"}, "goal": GOAL}}}
    with pytest.raises(ConfigError, match="learn_discount: false"):
        build_term("barfi", {"aux": program}, gamma=0.99)
    build_term("barfi", {"aux": program, "learn_discount": False}, gamma=0.99)   # the agent's γ: consistent
    plain = {"name": "derl_program", "params": {"program": "env", "primitives": {"env": {"name": "env"}}}}
    build_term("barfi", {"aux": plain}, gamma=0.99)                              # no discount inside: fine


@pytest.mark.parametrize(("params", "match"), [
    ({"reward_l2": -1.0}, "reward_l2"),
    ({"gamma_l2": float("nan")}, "gamma_l2"),
    ({"hessian_rollouts": -1}, "hessian_rollouts"),
])
def test_bad_penalties_and_hessian_batch_are_refused(params, match):
    with pytest.raises(ConfigError, match=match):
        build_term("barfi", {"aux": "env", **params})


@pytest.mark.parametrize("hessian_rollouts", [0, 2])
def test_the_hessian_batch_is_the_older_rollouts(hessian_rollouts):
    stack = build_stack([{"name": "barfi", "params": {"aux": "cartpole_upright", "update_every": 1,
                                                      "hessian_rollouts": hessian_rollouts}}])
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=stack)
    agent = make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 16, "n_minibatches": 1})
    steps = []
    agent.learn(4 * 32, type("R", (), {"on_iteration": lambda self, s, m: steps.append(
        m["reward_terms/barfi/hessian_steps"]) or True})())
    expected = [32] * 4 if hessian_rollouts == 0 else [32, 32, 64, 64]   # the latest one only until one exists
    assert steps == expected
