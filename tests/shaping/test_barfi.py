"""BARFI: the implicit hypergradient against finite differences, the term's mechanics, the
PPO discount/agent hooks it relies on, and (slow) that it repairs a harmful auxiliary reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rewardlab
from rewardlab.agents.ppo import compute_gae, make_ppo
from rewardlab.core.terms import Term, build_stack, build_term
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.experiment.evaluate import evaluate
from rewardlab.shaping.barfi import BARFIReward, neumann_hypergradient


class Recorder:
    def __init__(self):
        self.metrics: list[dict[str, float]] = []

    def on_iteration(self, step, metrics):
        self.metrics.append(metrics)
        return True


# -- the hypergradient ----------------------------------------------------------------------


def _quadratic_problem(seed: int):
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    a = torch.tensor(q @ np.diag([0.5, 0.8, 1.2, 2.0]) @ q.T)
    b = torch.tensor(rng.normal(size=(4, 2)))
    c, d = torch.tensor(rng.normal(size=4)), torch.tensor(rng.normal(size=4))

    def theta_star(phi):  # argmin of ℓ(θ, φ) = ½ θᵀAθ − θᵀBφ
        return torch.linalg.solve(a, b @ phi)

    def outer(theta):
        return c @ theta - 0.5 * (theta - d).pow(2).sum()

    def inner(theta, phi):
        return 0.5 * theta @ a @ theta - theta @ (b @ phi)

    return theta_star, outer, inner


@pytest.mark.parametrize("seed", [0, 1])
def test_neumann_hypergradient_matches_finite_differences_on_a_quadratic(seed):
    theta_star, outer, inner = _quadratic_problem(seed)
    phi = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    eps = 1e-6
    fd = np.array([(float(outer(theta_star(phi.detach() + eps * e))) - float(outer(theta_star(phi.detach() - eps * e))))
                   / (2 * eps) for e in torch.eye(2, dtype=torch.float64)])

    theta = theta_star(phi.detach()).clone().requires_grad_(True)
    g_out = torch.autograd.grad(outer(theta), [theta])
    g_in = torch.autograd.grad(inner(theta, phi), [theta], create_graph=True)
    exact = neumann_hypergradient(g_in, [theta], g_out, [phi], alpha=0.5, n_terms=80)[0].numpy()
    np.testing.assert_allclose(exact, fd, rtol=1e-5, atol=1e-7)
    # The first-order variant (one term) is a different, cruder estimate: the test can tell.
    first = neumann_hypergradient(g_in, [theta], g_out, [phi], alpha=0.5, n_terms=1)[0].numpy()
    assert np.abs(first - fd).max() > 1e-2
    # ... and 5 terms (the default) are closer than 1 term.
    five = neumann_hypergradient(g_in, [theta], g_out, [phi], alpha=0.5, n_terms=5)[0].numpy()
    assert np.abs(five - fd).max() < np.abs(first - fd).max()


def test_neumann_growth_tells_a_contracting_series_from_a_diverging_one():
    theta_star, outer, inner = _quadratic_problem(0)   # Hessian eigenvalues 0.5 ... 2.0
    phi = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    theta = theta_star(phi.detach()).clone().requires_grad_(True)
    g_out = torch.autograd.grad(outer(theta), [theta])
    g_in = torch.autograd.grad(inner(theta, phi), [theta], create_graph=True)
    growth = {}
    for alpha in (0.5, 1.5):                            # 2/λ_max = 1: 1.5 is outside the convergence region
        stats: dict[str, float] = {}
        neumann_hypergradient(g_in, [theta], g_out, [phi], alpha=alpha, n_terms=5, stats=stats)
        growth[alpha] = stats["neumann_growth"]
    assert growth[0.5] < 1 < growth[1.5]


def test_hypergradient_of_a_softmax_policy_matches_finite_differences():
    """A one-state bandit: π_θ = softmax(θ) maximises E_π[r_φ] + τ·H(π), r_φ = r_p + φ·r_aux.
    Its optimum is softmax(r_φ/τ), so J(φ) = E_{π*(φ)}[r_p] has an exact finite difference."""
    tau = 0.5
    r_p = torch.tensor([1.0, 0.0, 0.2], dtype=torch.float64)
    r_aux = torch.tensor([-1.0, 2.0, 0.5], dtype=torch.float64)
    phi = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)

    def j_of(phi_value: float) -> float:
        return float((torch.softmax((r_p + phi_value * r_aux) / tau, 0) * r_p).sum())

    fd = (j_of(0.4 + 1e-6) - j_of(0.4 - 1e-6)) / 2e-6
    theta = ((r_p + phi.detach() * r_aux) / tau).clone().requires_grad_(True)   # θ*(φ)
    pi = torch.softmax(theta, 0)
    g_out = torch.autograd.grad((pi * r_p).sum(), [theta])
    pi = torch.softmax(theta, 0)
    inner_loss = -(pi * (r_p + phi * r_aux)).sum() + tau * (pi * pi.log()).sum()
    g_in = torch.autograd.grad(inner_loss, [theta], create_graph=True)
    hyper = neumann_hypergradient(g_in, [theta], g_out, [phi], alpha=2.0, n_terms=200)[0]
    assert float(hyper) == pytest.approx(fd, rel=1e-4)
    assert abs(fd) > 0.05  # a gradient worth matching


def test_neumann_hypergradient_rejects_zero_terms():
    x = torch.zeros(1, requires_grad=True)
    with pytest.raises(InvalidArgument, match="n_terms"):
        neumann_hypergradient([x * 2], [x], [torch.ones(1)], [x], alpha=0.1, n_terms=0)


# -- the term ---------------------------------------------------------------------------------


def _transition(n: int = 2) -> Transition:
    obs = np.zeros((n, 4), np.float32)
    nxt = np.tile(np.array([0.0, -1.0, 0.0, 0.0], np.float32), (n, 1))
    return Transition(obs, np.zeros(n), nxt, np.ones(n), np.zeros(n, bool), np.zeros(n, bool))


def test_barfi_starts_as_the_naive_sum_and_uses_any_registered_aux_term():
    term = build_term("barfi", {"aux": {"name": "cartpole_velocity", "params": {"direction": "left", "scale": 2.0},
                                        }, "aux_weight_init": 0.5})
    np.testing.assert_allclose(term(_transition()), [1.0 + 0.5 * 2.0] * 2)
    assert term.discount == pytest.approx(0.99)
    fixed = build_term("barfi", {"aux": "cartpole_upright", "learn_discount": False})
    assert fixed.discount is None


@pytest.mark.parametrize(("params", "match"), [
    ({"aux": "env", "method": "newton"}, "method must be one of implicit, first_order"),
    ({"aux": "env", "discount_init": 1.0}, "discount_init"),
    ({"aux": "env", "neumann_terms": 0}, "neumann_terms"),
    ({"aux": {"params": {}}}, "aux must be a term name"),
    ({"aux": "barfi"}, "cannot be another barfi"),
])
def test_barfi_bad_params_name_the_problem(params, match):
    with pytest.raises(ConfigError, match=match):
        build_term("barfi", params)


def test_barfi_unknown_aux_term_lists_the_names():
    with pytest.raises(Exception, match="no_such_term"):
        build_term("barfi", {"aux": "no_such_term"})


def test_barfi_update_moves_phi_and_the_discount_on_a_real_ppo_rollout():
    stack = build_stack([{"name": "barfi", "params": {"aux": {"name": "cartpole_velocity"}, "update_every": 1}}])
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=stack)
    agent = make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 32, "n_minibatches": 2})
    rec = Recorder()
    agent.learn(128, rec)
    keys = [k for k in rec.metrics[-1] if k.startswith("reward_terms/barfi/")]
    assert {"reward_terms/barfi/aux_weight", "reward_terms/barfi/discount", "reward_terms/barfi/hypergrad_norm",
            "reward_terms/barfi/outer_objective", "reward_terms/barfi/neumann_growth"} <= set(keys)
    term = stack.terms[0]
    w = term.phi_net[-1].bias.detach().numpy()
    assert not np.allclose(w, [1.0, 0.0])                       # φ moved
    assert term.discount != pytest.approx(0.99, abs=1e-7)        # γ_φ moved ...
    assert all(np.isfinite(v) for m in rec.metrics for v in m.values() if v == v)


def test_barfi_state_resumes_with_the_ppo_checkpoint(tmp_path):
    def make():
        stack = build_stack([{"name": "barfi", "params": {"aux": "cartpole_upright", "update_every": 1}}])
        venv = rewardlab.make_vec("CartPole-v1", 2, reward=stack)
        return stack.terms[0], make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 16, "n_minibatches": 1})

    term_a, agent_a = make()
    agent_a.learn(64)
    agent_a.save(tmp_path)
    term_b, agent_b = make()
    agent_b.load(tmp_path)
    assert term_b.discount == term_a.discount
    x = torch.randn(5, 4)
    torch.testing.assert_close(term_b.phi_net(x), term_a.phi_net(x))


def test_barfi_without_an_agent_says_what_it_needs():
    term = BARFIReward(aux="cartpole_upright", update_every=1)
    for _ in range(4):
        term(_transition())

    class FakeRollout:
        rewards = np.zeros((4, 2))
        terminated = truncated = np.zeros((4, 2), bool)

    with pytest.raises(InvalidArgument, match="bind_agent"):
        term.update(FakeRollout())


# -- the core hook: a term's discount is the learner's -------------------------------------


class FixedDiscount(Term):
    """Env reward, with a discount the agent must use, and a record of the rollouts."""

    discount = None  # declared on the class: the term uses the discount hook (set per instance below)

    def __init__(self, discount):
        self.discount = discount
        self.rollouts = []

    def __call__(self, t):
        return np.asarray(t.env_reward, np.float32)

    def update(self, rollout):
        self.rollouts.append(rollout)
        return {}


def test_ppo_uses_a_terms_discount_for_gae():
    term = FixedDiscount(0.5)
    venv = rewardlab.make_vec("CartPole-v1", 2, reward=rewardlab.RewardStack([term]))
    agent = make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 8, "n_minibatches": 1, "norm_adv": False})
    assert agent.discount == 0.5
    agent.learn(16)
    r = term.rollouts[-1]
    assert r.gamma == 0.5
    t = lambda x: torch.as_tensor(np.array(x), dtype=torch.float32)  # noqa: E731
    for gamma, same in ((0.5, True), (0.99, False)):
        adv, _ = compute_gae(t(r.rewards), t(r.values), t(r.terminated), t(r.truncated), t(r.final_values),
                             t(r.last_values), gamma, agent.cfg.gae_lambda)
        assert np.allclose(adv.numpy(), r.advantages, atol=1e-5) is same
    term.discount = None
    assert agent.discount == 0.99


def test_ppo_rejects_disagreeing_or_invalid_term_discounts():
    a, b = FixedDiscount(0.5), FixedDiscount(0.9)
    b.name = "other"
    venv = rewardlab.make_vec("CartPole-v1", 1, reward=rewardlab.RewardStack([a, b]))
    agent = make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 8, "n_minibatches": 1})
    with pytest.raises(InvalidArgument, match="different discounts"):
        agent.learn(8)
    b.discount = None
    a.discount = 1.5
    with pytest.raises(InvalidArgument, match=r"allowed: a number in \(0, 1\]"):
        agent.learn(100)


# -- the toy env and aux terms ------------------------------------------------------------------


def test_gridworld_goal_ends_the_episode_and_distractor_pays_only_the_aux_term():
    env = rewardlab.make("toy/GridWorld-v0", reward=["env", {"name": "grid_cell", "params": {"cell": [0, 1]}}],
                         size=3, goal=(0, 2), distractor=(0, 1))
    env.reset(seed=0)
    _, r, term, _, info = env.step(1)
    assert (r, term, info["reward_env"]) == (pytest.approx(0.2), False, 0.0)
    _, r, term, _, info = env.step(1)
    assert (r, term, info["reward_env"]) == (1.0, True, 1.0)
    with pytest.raises(InvalidArgument, match="inside the 3x3 grid"):
        rewardlab.make("toy/GridWorld-v0", size=3, goal=(3, 0))


# -- learning (slow) -----------------------------------------------------------------------------


def _gridworld_return(reward, steps: int, seed: int = 0) -> tuple[float, Recorder]:
    """The setup of experiments/barfi_gridworld.yaml: 6x6, distractor cell (0, 5), sampled-action evaluation."""
    kwargs = {"size": 6, "distractor": [0, 5], "max_episode_steps": 50}
    venv = rewardlab.make_vec("toy/GridWorld-v0", 8, reward=reward, gamma=0.99, **kwargs)
    agent = make_ppo(venv, gamma=0.99, seed=seed, params={"n_steps": 128, "n_epochs": 4, "n_minibatches": 4})
    rec = Recorder()
    agent.learn(steps, rec)
    result = evaluate(agent.act, rewardlab.make_vec("toy/GridWorld-v0", 4, **kwargs), 20, seed=1, deterministic=False)
    return result.mean_return, rec


@pytest.mark.slow
def test_barfi_repairs_a_misleading_aux_reward_on_gridworld():
    distractor = {"name": "grid_cell", "params": {"cell": [0, 5], "bonus": 0.2}}
    naive, _ = _gridworld_return(["env", distractor], 60_000)
    barfi, rec = _gridworld_return([{"name": "barfi", "params": {"aux": distractor, "value_hidden": []}}], 60_000)
    weights = [m["reward_terms/barfi/aux_weight"] for m in rec.metrics]
    assert naive < 0.2                # the naive sum camps on the distractor
    assert barfi > naive + 0.4        # BARFI reaches the goal anyway
    assert min(weights) < 0.7         # ... after turning the aux weight down


# -- experiment files and MountainCar aux rewards -------------------------------------------


@pytest.mark.parametrize("name", ["barfi_mountaincar", "barfi_mountaincar_helpful", "barfi_gridworld_pg",
                                  "barfi_gridworld_helpful_pg"])
def test_experiment_files_build_their_env_stack_and_agent(name):
    from pathlib import Path

    from rewardlab.agents import AGENTS
    from rewardlab.config import load_config

    cfg, _ = load_config(Path(__file__).parents[2] / "experiments" / f"{name}.yaml")
    stack = cfg.reward.build_stack(cfg.agent.gamma)
    venv = rewardlab.make_vec(cfg.env.id, cfg.env.n_envs, reward=stack, **cfg.env.kwargs)
    agent = AGENTS.get(cfg.agent.name)(venv, gamma=cfg.agent.gamma, seed=0, params=dict(cfg.agent.params))
    assert stack.terms[0]._agent is agent          # bind_agent ran: BARFI can differentiate through it
    agent.learn(2 * agent.batch_size, Recorder())  # two updates: one outer step
    assert stack.terms[0]._n_updates == 2


def test_mountaincar_energy_shaping_pays_for_gaining_energy_and_valley_bonus_for_staying_low():
    from rewardlab.shaping.auxiliary import MOUNTAINCAR_BOTTOM

    energy = build_term("potential", {"potential": "rewardlab.shaping.auxiliary:mountaincar_energy",
                                      "scale": 30.0}, gamma=0.99)
    valley = build_term("state_bonus", {"potential": "rewardlab.shaping.auxiliary:mountaincar_valley"})
    low = np.array([[MOUNTAINCAR_BOTTOM, 0.0], [MOUNTAINCAR_BOTTOM, 0.0]])
    high = np.array([[MOUNTAINCAR_BOTTOM, 0.04], [-1.1, 0.0]])  # faster / higher up the left hill
    energy.bind(2)
    energy.observe_reset(low, {}, np.arange(2))
    t = Transition(low, np.zeros(2), high, -np.ones(2), np.zeros(2, bool), np.zeros(2, bool))
    assert (energy(t) > 0).all()
    np.testing.assert_allclose(valley(t), [1.0, 0.0], atol=0.05)
    with pytest.raises(Exception, match=r"\(n, 2\) observations"):
        valley(Transition(None, None, np.zeros((2, 4)), np.zeros(2), np.zeros(2, bool), np.zeros(2, bool)))


@pytest.mark.parametrize("skip", [False, True])
def test_skip_without_signal_leaves_phi_alone_when_no_episode_can_reach_the_goal(skip):
    from rewardlab.agents.pg import make_pg

    # 10x10 grid, 5-step episodes from the corner: the goal is out of reach, r_p is always 0.
    stack = build_stack([{"name": "barfi", "params": {"aux": {"name": "grid_cell", "params": {"cell": [0, 1]}},
                                                      "update_every": 1, "skip_without_signal": skip}}])
    venv = rewardlab.make_vec("toy/GridWorld-v0", 2, reward=stack, size=10, max_episode_steps=5)
    agent = make_pg(venv, gamma=0.99, seed=0, params={"n_steps": 32})
    rec = Recorder()
    agent.learn(128, rec)
    moved = not np.allclose(stack.terms[0].phi_net[-1].bias.detach().numpy(), [1.0, 0.0])
    assert moved is not skip      # without the option, noise alone moves φ
    if skip:
        assert all(m["reward_terms/barfi/outer_skipped"] == 1.0 for m in rec.metrics)
