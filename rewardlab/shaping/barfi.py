"""BARFI: Behavior Alignment via Reward Function Optimization (Gupta et al., NeurIPS 2023).

Docs: ``docs/methods/barfi.md``. Contents:

- ``neumann_hypergradient``: ``dJ(θ*(φ))/dφ`` by the implicit-function theorem, with a
  truncated Neumann series for the inverse Hessian (1 term = the first-order variant);
- ``BARFIReward`` (term ``barfi``): the learned reward
  ``r_φ(s, a) = r_p + φ₁(s)·r_aux(s, a) + φ₂(s)`` and learned discount ``γ_φ = sigmoid(ψ)``,
  updated in an outer loop to maximise the primary (env) return of the policy trained on them,
  minus the reference's penalties ``reward_l2·Σ‖φ‖`` and ``gamma_l2·γ_φ``.

Reference code: github.com/Dhawgupta/gupta2023behavior, ``barfi-*/src/algorithms/BarfiNeumann.py``
(``outer_Neumann``): the outer policy gradient comes from the latest episodes, the inner loss
whose Hessian and mixed derivative enter the implicit gradient from a larger batch of older
episodes (``sample_wo_last(hess_mul * batch_size, delta)``), here ``hessian_rollouts`` older
rollouts.

How it plugs into the agent (any variant of the PPO core: ``ppo``, ``pg``, ``text_ppo``; the
config check refuses agents that do not honour its hooks): the term is the whole reward of the
stack (its output is ``r_φ`` with the current φ); it records ``r_p``, ``r_aux`` and the state
features of every step, and uses the ``Term`` hooks ``discount`` (the agent's GAE uses
``γ_φ``), ``bind_agent`` (it keeps the agent), ``update(rollout)`` (it differentiates through
the agent's policy-gradient step with ``agent.functional()``) and ``state_dict`` (φ, ψ and the
primary critic resume with the agent's checkpoint).
"""

from __future__ import annotations

import inspect
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardlab.core.returns import compute_gae
from rewardlab.core.terms import Term, build_term
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument, TermOutputError
from rewardlab.shaping.potential import PotentialShaping

__all__ = ["neumann_hypergradient", "BARFIReward", "METHODS", "REWARD_L2", "GAMMA_L2"]

METHODS = ("implicit", "first_order")

REWARD_L2 = 0.0
"""default ``reward_l2`` (see ``BARFIReward``)"""
GAMMA_L2 = 0.0
"""default ``gamma_l2`` (see ``BARFIReward``)"""


def neumann_hypergradient(
    inner_grads: Sequence[torch.Tensor],
    params: Sequence[torch.Tensor],
    outer_grads: Sequence[torch.Tensor],
    reward_params: Sequence[torch.Tensor],
    alpha: float,
    n_terms: int,
    stats: dict[str, float] | None = None,
) -> list[torch.Tensor]:
    """``dJ/dφ`` of an outer objective ``J(θ*(φ))`` whose θ minimises an inner loss ``ℓ(θ, φ)``.

    The implicit-function theorem at ``∇_θ ℓ(θ*, φ) = 0`` gives
    ``dJ/dφ = −(∂_φ ∇_θ ℓ)ᵀ H⁻¹ ∇_θ J`` with ``H = ∇²_θ ℓ``; ``H⁻¹ g`` is approximated by the
    Neumann series ``α Σ_{k<K} (I − αH)^k g`` (converges when ``0 < α < 2/λ_max(H)``).
    With ``n_terms = 1`` this is exactly the first-order variant: only the last gradient step
    ``θ' = θ − α ∇_θ ℓ(θ, φ)`` depends on φ.

    ``inner_grads`` must be ``∇_θ ℓ`` built with ``create_graph=True`` (so it depends on θ
    and φ); ``outer_grads`` is ``∇_θ J`` (no graph needed). If ``stats`` is a dict, it gets
    ``neumann_growth = ‖(I − αH)^{K−1} g‖ / ‖g‖``: below 1 when the series contracts, above 1
    when α is too large for the curvature (the series then grows term by term).

    >>> theta = torch.tensor([0.0], requires_grad=True); phi = torch.tensor([2.0], requires_grad=True)
    >>> loss = 0.5 * 4.0 * theta.pow(2).sum() - (theta * phi).sum()     # θ* = φ / 4
    >>> g_in = torch.autograd.grad(loss, [theta], create_graph=True)
    >>> dj = neumann_hypergradient(g_in, [theta], [torch.tensor([1.0])], [phi], alpha=0.2, n_terms=60)
    >>> round(float(dj[0]), 4)  # J = θ  ->  dJ/dφ = 1/4
    0.25
    """
    if n_terms < 1:
        raise InvalidArgument(f"n_terms must be >= 1, got {n_terms}")
    outer = [g.detach() for g in outer_grads]
    term, acc = outer, list(outer)
    for _ in range(n_terms - 1):
        hvp = torch.autograd.grad(inner_grads, params, grad_outputs=term, retain_graph=True, allow_unused=True)
        term = [p - alpha * (h if h is not None else torch.zeros_like(p)) for p, h in zip(term, hvp, strict=True)]
        acc = [a + p for a, p in zip(acc, term, strict=True)]
    if stats is not None:
        first = float(torch.sqrt(sum(g.pow(2).sum() for g in outer)))
        last = float(torch.sqrt(sum(t.detach().pow(2).sum() for t in term)))
        stats["neumann_growth"] = last / first if first > 0 else float("nan")
    v = [alpha * a.detach() for a in acc]
    dot = sum((gi * vi).sum() for gi, vi in zip(inner_grads, v, strict=True))
    grads = torch.autograd.grad(dot, reward_params, retain_graph=True, allow_unused=True)
    return [-(g if g is not None else torch.zeros_like(p)) for g, p in zip(grads, reward_params, strict=True)]


def _flat_features(obs: Any, n: int) -> np.ndarray:
    """Batched observations (array or dict of arrays) → ``(n, d)`` float32."""
    if isinstance(obs, dict):
        return np.concatenate([_flat_features(obs[k], n) for k in sorted(obs)], 1)
    return np.asarray(obs, np.float32).reshape(n, -1)


def _mlp(sizes: Sequence[int], out: int, gen: torch.Generator) -> nn.Sequential:
    """Tanh MLP, every weight drawn from ``gen`` (the global RNG is neither used nor advanced)."""
    layers: list[nn.Module] = []
    dims = [*sizes, out]
    with torch.random.fork_rng(devices=[]):  # nn.Linear() draws a throw-away init globally
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            lin = nn.Linear(a, b)
            last = i == len(dims) - 2
            nn.init.orthogonal_(lin.weight, 1.0 if last else math.sqrt(2), generator=gen)
            nn.init.zeros_(lin.bias)
            layers += [lin] if last else [lin, nn.Tanh()]
    return nn.Sequential(*layers)


def _uses_learner_gamma(term: Any) -> bool:
    """Whether ``term`` discounts with the learner's γ: a potential term, a composite term (``terms``)
    holding one, or a term that takes ``gamma`` and holds no sub-terms we could inspect."""
    if isinstance(term, PotentialShaping):
        return True
    subs = getattr(term, "terms", None)
    if isinstance(subs, dict | list | tuple):
        return any(_uses_learner_gamma(t) for t in (subs.values() if isinstance(subs, dict) else subs))
    return "gamma" in inspect.signature(type(term)).parameters


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / (x.std() + 1e-8)


class BARFIReward(Term):
    """``r_φ = r_p + φ₁(s)·r_aux + φ₂(s)`` with learned φ (and discount ``γ_φ = sigmoid(ψ)``).

    Args:
        aux: the designer's auxiliary reward, any registered term spec (``"cartpole_upright"``
            or ``{"name": "potential", "params": {...}}``); ``r_p`` is the env reward. A
            ``potential`` aux term discounts with the learned γ_φ (the discount the agent uses),
            so it stays ``γ_φ·Φ(s') − Φ(s)`` as γ_φ moves; other aux terms that take the
            learner's γ are refused with ``learn_discount: true``.
        method: ``implicit`` (Neumann series with ``neumann_terms`` terms) or ``first_order``.
        update_every: policy updates (rollouts) per reward update.
        lr: Adam step size of φ and ψ.
        hidden: hidden layer widths of the φ network over the flattened observation (``[]``:
            linear, i.e. a table for one-hot observations). The output layer starts at zero,
            with bias ``(aux_weight_init, 0)``: BARFI starts from ``r_p + aux_weight_init·r_aux``.
        learn_discount / discount_init: learn γ_φ, starting at ``discount_init``; otherwise the
            agent's γ is used.
        reward_l2 / gamma_l2: the reference's ``reward_L2`` / ``gamma_L2``: the outer step
            maximises ``J − reward_l2·Σ‖W‖₂ − gamma_l2·γ_φ`` (un-squared norms over the φ
            network's tensors, as its ``L2_reg``), pulling ``r_φ`` towards ``r_p`` and γ_φ down.
        hessian_rollouts: the inner loss (Hessian and mixed derivative) is taken over this many
            rollouts *before* the latest one, as the reference does with older episodes (fewer
            while fewer exist); ``0``: the latest rollout only. ∇J uses the latest one.
        primary_gamma / gae_lambda / value_hidden / value_lr / value_epochs: the outer objective
            is the primary return with discount ``primary_gamma``; its policy gradient uses
            GAE(``gae_lambda``) with a critic of ``r_p`` owned by this term.
        neumann_alpha: step size α of the Neumann series (and scale of the first-order step).
        skip_without_signal: skip the outer step on a rollout without primary signal: every
            ``r_p`` equal and no episode terminated, so every episode's primary return is fixed
            by the time limit and ``∇_θ J`` is pure noise (which Adam would still turn into
            full-size steps of φ). Logged as ``outer_skipped``.
        gamma: the learner's γ, passed to the aux term (potential shaping needs it).

    The output is ``r_φ`` evaluated with the current φ; gradients come from ``update``:

    >>> term = BARFIReward(aux={"name": "step_penalty", "params": {"value": 0.5}}, aux_weight_init=1.0)
    >>> t = Transition(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 3)), np.array([1.0, 0.0]),
    ...                np.zeros(2, bool), np.zeros(2, bool))
    >>> term(t)  # r_p + 1.0 * (-0.5) + 0
    array([ 0.5, -0.5], dtype=float32)
    >>> term.discount
    0.99
    """

    name = "barfi"

    def __init__(
        self,
        aux: str | dict[str, Any],
        method: str = "implicit",
        update_every: int = 2,
        lr: float = 0.05,
        hidden: Sequence[int] = (),
        aux_weight_init: float = 1.0,
        learn_discount: bool = True,
        discount_init: float = 0.99,
        reward_l2: float = REWARD_L2,
        gamma_l2: float = GAMMA_L2,
        hessian_rollouts: int = 5,
        primary_gamma: float = 0.99,
        gae_lambda: float = 0.95,
        value_hidden: Sequence[int] = (64,),
        value_lr: float = 1e-3,
        value_epochs: int = 10,
        neumann_terms: int = 5,
        neumann_alpha: float = 0.1,
        skip_without_signal: bool = False,
        seed: int = 0,
        gamma: float | None = None,
    ):
        if method not in METHODS:
            raise InvalidArgument(f"barfi method must be one of {', '.join(METHODS)}, got {method!r}")
        checks = [
            ("update_every", isinstance(update_every, int) and update_every >= 1, "an integer >= 1"),
            ("lr", lr > 0, "a number > 0"),
            ("discount_init", 0 < discount_init < 1, "a number in (0, 1)"),  # sigmoid never reaches 0 or 1
            # Negative penalties would reward large φ / a γ_φ pushed to 1 without bound.
            ("reward_l2", math.isfinite(reward_l2) and reward_l2 >= 0, "a finite number >= 0"),
            ("gamma_l2", math.isfinite(gamma_l2) and gamma_l2 >= 0, "a finite number >= 0"),
            ("hessian_rollouts", isinstance(hessian_rollouts, int) and hessian_rollouts >= 0, "an integer >= 0"),
            ("primary_gamma", 0 < primary_gamma <= 1, "a number in (0, 1]"),
            ("gae_lambda", 0 <= gae_lambda <= 1, "a number in [0, 1]"),
            ("value_lr", value_lr > 0, "a number > 0"),
            ("value_epochs", isinstance(value_epochs, int) and value_epochs >= 0, "an integer >= 0"),
            ("neumann_terms", isinstance(neumann_terms, int) and neumann_terms >= 1, "an integer >= 1"),
            ("neumann_alpha", neumann_alpha > 0, "a number > 0"),
            ("aux_weight_init", math.isfinite(aux_weight_init), "a finite number"),
            ("skip_without_signal", isinstance(skip_without_signal, bool), "true or false"),
        ]
        for field, ok, allowed in checks:
            if not ok:
                raise InvalidArgument(f"barfi {field} = {locals()[field]!r} is invalid; allowed: {allowed}")
        spec = {"name": aux} if isinstance(aux, str) else dict(aux)
        if "name" not in spec or set(spec) - {"name", "params"}:
            raise InvalidArgument(f"barfi aux must be a term name or {{name, params}}, got {aux!r}")
        if spec["name"] == "barfi":
            raise InvalidArgument("barfi aux cannot be another barfi term")
        self.aux = build_term(spec["name"], spec.get("params"), gamma=gamma)
        self.learn_discount = bool(learn_discount)
        # A potential aux term is re-discounted with γ_φ (see _aux_call). Any other term that
        # takes the learner's γ would keep it while the agent discounts with γ_φ: refused.
        self._potential_aux = isinstance(self.aux, PotentialShaping)
        if self.learn_discount and not self._potential_aux and _uses_learner_gamma(self.aux):
            raise InvalidArgument(
                f"barfi aux term {spec['name']!r} uses the learner's discount, but with learn_discount: true the "
                "agent discounts with the learned γ_φ, which this term cannot follow; use learn_discount: false, "
                "or a 'potential' aux term (re-discounted with γ_φ)")
        self.method, self.update_every, self.lr = method, update_every, float(lr)
        self.hidden, self.aux_weight_init = tuple(hidden), float(aux_weight_init)
        self.reward_l2, self.gamma_l2 = float(reward_l2), float(gamma_l2)
        self.hessian_rollouts = hessian_rollouts
        self.primary_gamma, self.gae_lambda = float(primary_gamma), float(gae_lambda)
        self.value_hidden, self.value_lr, self.value_epochs = tuple(value_hidden), float(value_lr), value_epochs
        self.n_terms = 1 if method == "first_order" else neumann_terms
        self.neumann_alpha = float(neumann_alpha)
        self.skip_without_signal = skip_without_signal
        self.gen = torch.Generator().manual_seed(int(seed))
        self.psi = torch.tensor(math.log(discount_init / (1 - discount_init)), requires_grad=self.learn_discount)
        self.phi_net: nn.Sequential | None = None  # built on the first step (feature size)
        self.value_net: nn.Sequential | None = None
        self._agent: Any = None
        self._steps: list[tuple[np.ndarray, ...]] = []
        # Older rollouts for the inner loss (not checkpointed: refilled after a resume).
        self._history: deque[dict[str, Any]] = deque(maxlen=max(hessian_rollouts, 1))
        self._n_updates = 0

    # -- term hooks ------------------------------------------------------------------------
    @property
    def discount(self) -> float | None:
        """γ_φ for the agent's advantages (None: the agent keeps its own γ)."""
        return round(float(torch.sigmoid(self.psi.detach())), 6) if self.learn_discount else None

    def bind(self, num_envs: int) -> None:
        if hasattr(self.aux, "bind"):
            self.aux.bind(num_envs)

    def reset(self, env_ids: np.ndarray) -> None:
        self.aux.reset(env_ids)

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        if hasattr(self.aux, "observe_reset"):
            self.aux.observe_reset(obs, info, env_ids)

    def bind_agent(self, agent: Any) -> None:
        """Called once by the agent (a PPO-core variant); BARFI differentiates through its policy update."""
        for attr in ("functional", "preprocess_obs", "cfg"):
            if not hasattr(agent, attr):
                raise InvalidArgument(
                    f"barfi needs an agent with {attr!r} (rewardlab's ppo, pg or text_ppo); got {type(agent).__name__}"
                )
        self._agent = agent

    def _build(self, d: int) -> None:
        # The first step may run inside the agent's inference_mode: parameters made there
        # could never take part in autograd.
        with torch.inference_mode(False):
            self._build_nets(d)

    def _build_nets(self, d: int) -> None:
        self.phi_net = _mlp([d, *self.hidden], 2, self.gen)
        nn.init.zeros_(self.phi_net[-1].weight)
        with torch.no_grad():
            self.phi_net[-1].bias.copy_(torch.tensor([self.aux_weight_init, 0.0]))
        self.value_net = _mlp([d, *self.value_hidden], 1, self.gen)
        self.opt = torch.optim.Adam(self.reward_params(), lr=self.lr)
        self.value_opt = torch.optim.Adam(self.value_net.parameters(), lr=self.value_lr)

    def reward_params(self) -> list[torch.Tensor]:
        """The outer loop's parameters: the φ network's, then ψ if γ_φ is learned."""
        return list(self.phi_net.parameters()) + ([self.psi] if self.learn_discount else [])

    def _phi(self, feats: torch.Tensor) -> torch.Tensor:
        return self.phi_net(feats)

    def _aux_call(self, t: Transition) -> tuple[np.ndarray, np.ndarray | None]:
        """``r_aux`` of a step and, for a potential aux term, ``(Φ(s), Φ(s') masked at terminals)``
        so that ``r_aux = γ_φ·Φ(s') − Φ(s)`` can be recomputed with any γ_φ."""
        if not (self._potential_aux and self.learn_discount):
            return self.aux(t), None
        g = self.discount
        self.aux.gamma = g  # the env-side reward discounts with the γ_φ the agent uses now
        r_aux = self.aux(t)
        # Φ(s') through the term's public potential and scale (Φ(terminal) = 0, as the term does);
        # Φ(s) then follows from the term's own output, with no second call (it caches Φ(s')).
        nxt = np.asarray(self.aux.phi(t.next_obs, t.info), np.float32).reshape(-1) * np.float32(self.aux.scale)
        nxt = np.where(np.asarray(t.terminated, bool), np.float32(0.0), nxt)
        if isinstance(r_aux, np.ndarray) and nxt.shape == r_aux.shape:
            return r_aux, np.stack([np.float32(g) * nxt - r_aux, nxt])
        return r_aux, None  # the shape check in __call__ names the problem

    def __call__(self, t: Transition) -> np.ndarray:
        n = t.num_envs
        r_aux, parts = self._aux_call(t)
        if not isinstance(r_aux, np.ndarray) or r_aux.shape != (n,):
            raise TermOutputError(f"barfi aux term {self.aux.name!r} returned shape "
                                  f"{getattr(r_aux, 'shape', type(r_aux).__name__)}; expected ({n},)")
        feats = _flat_features(t.obs, n)
        if self.phi_net is None:
            self._build(feats.shape[1])
        r_p = np.asarray(t.env_reward, np.float32)
        with torch.no_grad():
            w = self._phi(torch.from_numpy(feats)).numpy()
        step = (feats, _flat_features(t.next_obs, n), r_p, r_aux.astype(np.float32))
        self._steps.append(step if parts is None else (*step, parts.astype(np.float32)))
        if len(self._steps) > 100_000:  # no agent is calling update(): do not grow without bound
            del self._steps[:50_000]
        return (r_p + w[:, 0] * r_aux + w[:, 1]).astype(np.float32)

    # -- learning --------------------------------------------------------------------------
    def reward(self, feats: torch.Tensor, r_p: torch.Tensor, r_aux: torch.Tensor) -> torch.Tensor:
        """Differentiable ``r_φ`` of stored steps (leading dims kept)."""
        w = self._phi(feats)
        return r_p + w[..., 0] * r_aux + w[..., 1]

    def _gamma_phi(self) -> torch.Tensor | float:
        return torch.sigmoid(self.psi) if self.learn_discount else float(self._agent.gamma)

    def aux_reward(self, batch: dict[str, Any]) -> torch.Tensor:
        """``r_aux`` of a stored batch; for a potential aux term ``γ_φ·Φ(s') − Φ(s)``, differentiable in ψ."""
        if "phi_parts" in batch:
            phi_s, phi_next = batch["phi_parts"].unbind(-3)
            return self._gamma_phi() * phi_next - phi_s
        return batch["r_aux"]

    def outer_objective(self, params: dict[str, torch.Tensor], policy: Callable[..., Any],
                        batch: dict[str, Any]) -> torch.Tensor:
        """``J``: the primary return's importance-weighted policy-gradient surrogate on ``batch``
        (normalised GAE advantages of ``r_p`` from this term's critic), as a function of θ."""
        logp, _ = policy(params, batch["x"], batch["actions"])
        ratio = (logp - batch["old_logp"]).exp()
        return (ratio * _normalize(batch["adv_p"].reshape(-1))).mean()

    def inner_loss(self, params: dict[str, torch.Tensor], policy: Callable[..., Any],
                   batches: Sequence[dict[str, Any]]) -> torch.Tensor:
        """``ℓ(θ, φ)``: PPO's policy-gradient loss ``−mean(ratio·Â_φ)`` (GAE of ``r_φ`` with γ_φ and the
        rollouts' critic values), averaged over ``batches``; differentiable in θ, φ and ψ."""
        losses = []
        for b in batches:
            logp, _ = policy(params, b["x"], b["actions"])
            ratio = (logp - b["old_logp"]).exp()
            r_phi = self.reward(b["feats"], b["r_p"], self.aux_reward(b))
            adv, _ = compute_gae(r_phi, b["values"], b["term"], b["trunc"], b["final_values"], b["last_values"],
                                 self._gamma_phi(), self._agent.cfg.gae_lambda)
            adv = adv.reshape(-1)
            if self._agent.cfg.norm_adv:
                adv = _normalize(adv)
            losses.append(-(ratio * adv).mean())
        return torch.stack(losses).mean()

    def penalty(self) -> torch.Tensor:
        """The reference's ``reward_L2·Σ‖W‖ + gamma_L2·γ_φ`` (subtracted from ``J``)."""
        pen = self.reward_l2 * sum(torch.linalg.vector_norm(p) for p in self.phi_net.parameters())
        if self.learn_discount:
            pen = pen + self.gamma_l2 * torch.sigmoid(self.psi)
        return pen

    def hypergradient(self, params: dict[str, torch.Tensor], policy: Callable[..., Any], outer: dict[str, Any],
                      inner: Sequence[dict[str, Any]], stats: dict[str, float] | None = None,
                      outer_params: dict[str, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``d(J − penalty)/d(φ, ψ)`` (``reward_params()`` order): ``J`` on ``outer``, the inner loss
        (Hessian and mixed term) on ``inner``, at the policy parameters ``params``.

        ``∇_θ J`` is taken at ``outer_params`` (default ``params``). With ``n_terms = 1`` and
        ``outer_params = θ − α∇_θℓ(θ, φ)`` the result is exactly ``d/dφ [J(θ − α∇_θℓ(θ, φ)) − penalty]``,
        the outer objective composed with one inner step (tests/shaping/test_barfi_outer.py).
        """
        at = params if outer_params is None else outer_params
        j = self.outer_objective(at, policy, outer)
        # Only the parameters the policy's log-probabilities use (not the critic's) matter.
        grads = torch.autograd.grad(j, list(at.values()), allow_unused=True)
        used = [k for k, g in zip(at, grads, strict=True) if g is not None]
        plist = [params[k] for k in used]
        outer_grads = [g for g in grads if g is not None]
        inner_grads = torch.autograd.grad(self.inner_loss(params, policy, inner), plist, create_graph=True)
        reward_params = self.reward_params()
        dj = neumann_hypergradient(inner_grads, plist, outer_grads, reward_params, self.neumann_alpha,
                                   self.n_terms, stats)
        if self.reward_l2 > 0 or (self.gamma_l2 > 0 and self.learn_discount):
            dpen = torch.autograd.grad(self.penalty(), reward_params, allow_unused=True)
            dj = [g - (d if d is not None else torch.zeros_like(g)) for g, d in zip(dj, dpen, strict=True)]
        if stats is not None:
            stats["outer_objective"] = float(j.detach())
        return dj

    def update(self, rollout: Any) -> dict[str, float]:
        T, N = rollout.rewards.shape
        if len(self._steps) < T:
            raise InvalidArgument(f"barfi saw {len(self._steps)} steps since its last update but the rollout has "
                                  f"{T}; it must be the whole reward of a SAME_STEP vector env")
        if self._agent is None:
            raise InvalidArgument("barfi needs an agent that calls bind_agent (rewardlab's ppo, pg or text_ppo)")
        steps, self._steps = self._steps[-T:], []
        cols = list(zip(*steps, strict=True))
        feats, next_feats, r_p, r_aux = (torch.from_numpy(np.stack(x)) for x in cols[:4])
        term = torch.as_tensor(rollout.terminated, dtype=torch.float32)
        trunc = torch.as_tensor(rollout.truncated, dtype=torch.float32)

        # Critic of the primary reward, and the primary advantages (the outer objective's).
        with torch.no_grad():
            v, v_next = self.value_net(feats).squeeze(-1), self.value_net(next_feats).squeeze(-1)
            adv_p, ret_p = compute_gae(r_p, v, term, trunc, v_next * trunc, v_next[-1], self.primary_gamma,
                                       self.gae_lambda)
        value_loss = 0.0
        for _ in range(self.value_epochs):
            loss = 0.5 * (self.value_net(feats).squeeze(-1) - ret_p).pow(2).mean()
            self.value_opt.zero_grad()
            loss.backward()
            self.value_opt.step()
            value_loss = float(loss.detach())

        batch = self._store(rollout, feats, r_p, r_aux, term, trunc, adv_p,
                            torch.from_numpy(np.stack(cols[4], 1)) if len(cols) > 4 else None)
        older = list(self._history)[-self.hessian_rollouts:] if self.hessian_rollouts else []
        self._n_updates += 1
        metrics = {"primary_value_loss": value_loss}
        if self._n_updates % self.update_every == 0:
            no_signal = bool(r_p.max() - r_p.min() < 1e-8) and not bool(term.any())
            if self.skip_without_signal:
                metrics["outer_skipped"] = float(no_signal)
            if not (self.skip_without_signal and no_signal):
                metrics.update(self._outer_step(batch, older or [batch]))
        if self.hessian_rollouts:
            self._history.append(batch)
        with torch.no_grad():
            w = self._phi(feats.reshape(T * N, -1))
        metrics.update({"aux_weight": float(w[:, 0].mean()), "bias": float(w[:, 1].mean()),
                        "discount": float(torch.sigmoid(self.psi.detach()))})
        return metrics

    def _store(self, rollout: Any, feats: torch.Tensor, r_p: torch.Tensor, r_aux: torch.Tensor, term: torch.Tensor,
               trunc: torch.Tensor, adv_p: torch.Tensor, phi_parts: torch.Tensor | None) -> dict[str, Any]:
        """The rollout's tensors, copied (the agent reuses its buffers)."""
        T, N = rollout.rewards.shape
        obs = rollout.obs
        flat = ({k: np.array(v).reshape(T * N, *v.shape[2:]) for k, v in obs.items()} if isinstance(obs, dict)
                else np.array(obs).reshape(T * N, *obs.shape[2:]))
        batch = {
            "obs": flat,
            "actions": torch.from_numpy(np.array(rollout.actions)).reshape(T * N, *rollout.actions.shape[2:]),
            "old_logp": torch.from_numpy(np.array(rollout.logprobs)).reshape(-1),
            "feats": feats, "r_p": r_p, "r_aux": r_aux, "term": term, "trunc": trunc, "adv_p": adv_p,
            "values": torch.from_numpy(np.array(rollout.values)),
            "final_values": torch.from_numpy(np.array(rollout.final_values)),
            "last_values": torch.from_numpy(np.array(rollout.last_values)),
        }
        if phi_parts is not None:
            batch["phi_parts"] = phi_parts  # (2, T, N): Φ(s), Φ(s') masked at terminals
        return batch

    def with_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` plus ``x``: its observations as the agent's network takes them now."""
        return {**batch, "x": self._agent.preprocess_obs(batch["obs"])}

    def _outer_step(self, batch: dict[str, Any], inner: Sequence[dict[str, Any]]) -> dict[str, float]:
        params, policy = self._agent.functional()
        stats: dict[str, float] = {}
        outer = self.with_inputs(batch)
        inner = [outer if b is batch else self.with_inputs(b) for b in inner]
        dj = self.hypergradient(params, policy, outer, inner, stats)
        self.opt.zero_grad()
        for p, g in zip(self.reward_params(), dj, strict=True):
            p.grad = -g.detach()  # Adam minimises: step along +d(J − penalty)/dφ
        self.opt.step()
        norm = torch.sqrt(sum(g.pow(2).sum() for g in dj))
        return {"hypergrad_norm": float(norm), "hessian_steps": float(sum(b["r_p"].numel() for b in inner)), **stats}

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """φ, ψ, the primary critic and both optimisers (PPO saves it with its checkpoint)."""
        if self.phi_net is None:
            return {"psi": self.psi.detach().clone(), "n_updates": self._n_updates}
        return {"psi": self.psi.detach().clone(), "n_updates": self._n_updates, "phi": self.phi_net.state_dict(),
                "value": self.value_net.state_dict(), "opt": self.opt.state_dict(),
                "value_opt": self.value_opt.state_dict(), "in_features": self.phi_net[0].in_features}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.psi.copy_(state["psi"])
        self._n_updates = int(state["n_updates"])
        if "phi" in state:
            self._build(int(state["in_features"]))
            self.phi_net.load_state_dict(state["phi"])
            self.value_net.load_state_dict(state["value"])
            self.opt.load_state_dict(state["opt"])
            self.value_opt.load_state_dict(state["value_opt"])
