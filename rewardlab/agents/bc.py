"""``bc`` and ``ra_bc``: behaviour cloning from generated demonstrations, as runner agents.

Both train a deterministic tanh MLP policy offline on ``(obs, action)`` pairs of the
demonstrations ``rewardlab.imitation.sarm_demos.generate_demos(mix, seed=demo_seed)`` makes for
``manipulation/ReachSequence-v0`` (the run's env is used only for evaluation):

- ``bc``: plain BC, mean squared action error, uniform over the pairs of the chosen demos;
- ``ra_bc``: RA-BC (SARM, Chen et al. 2025): a SARM progress model is trained on the mix's
  *successful* annotated demos, predicts progress φ for every frame of every demo, and each
  pair is weighted by ``rabc_weights(φ(t + chunk) − φ(t))`` in ``weighted_bc_loss``.

``num_timesteps`` counts BC gradient steps (nothing is simulated while training); the runner's
``train.total_steps`` is the number of Adam steps. Method page: ``docs/methods/sarm.md``.

>>> import rewardlab
>>> venv = rewardlab.make_vec("manipulation/ReachSequence-v0", 1)
>>> agent = make_bc(venv, gamma=0.99, seed=0, params={"demos": {"clean": 1}, "batch_size": 8, "log_every": 5})
>>> agent.learn(10, callback=None)
>>> agent.num_timesteps, agent.act(np.zeros((1, 10), np.float32)).shape
(10, (1, 2))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rewardlab.agents.params import check_fields, is_int, is_num, params_from_dict
from rewardlab.errors import ConfigError, InvalidArgument

__all__ = ["BCParams", "RABCParams", "BCAgent", "make_bc", "make_ra_bc"]

_DEFAULT_MIX = {"clean": 10, "slow": 10, "noisy": 10, "detour": 10, "fail": 20}


@dataclass
class BCParams:
    """``agent.params`` of ``bc``."""

    demos: dict[str, int] = field(default_factory=lambda: dict(_DEFAULT_MIX))
    """demos per style (clean, slow, noisy, detour, fail) generated for training"""
    demo_seed: int = 0
    """the demo set's seed (fixed across run seeds, so every seed sees the same data)"""
    styles: list[str] | None = None
    """train only on these styles of the set (e.g. [clean]); all if unset"""
    batch_size: int = 128
    lr: float = 1e-3
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    log_every: int = 500
    """gradient steps between the runner's callbacks"""

    def __post_init__(self) -> None:
        check_fields(self, [
            ("demos", isinstance(self.demos, dict) and bool(self.demos), "a mapping style -> count"),
            ("demo_seed", is_int(self.demo_seed) and self.demo_seed >= 0, "an integer >= 0"),
            ("styles", self.styles is None or (isinstance(self.styles, list) and bool(self.styles)),
             "a non-empty list of styles or null"),
            ("batch_size", is_int(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("lr", is_num(self.lr) and self.lr > 0, "a number > 0"),
            ("hidden", isinstance(self.hidden, list | tuple) and all(is_int(h) and h >= 1 for h in self.hidden),
             "a list of integers >= 1"),
            ("log_every", is_int(self.log_every) and self.log_every >= 1, "an integer >= 1"),
        ])


@dataclass
class RABCParams(BCParams):
    """``agent.params`` of ``ra_bc``: ``bc``'s plus the SARM model and the RA-BC weights."""

    chunk: int = 8
    """Δ: the progress change is measured over this many steps (capped at the episode end)"""
    kappa: float = 0.01
    """κ: progress changes above it get weight 1"""
    sarm_steps: int = 1000
    """Adam steps training the SARM model"""
    sarm_checkpoint: str | None = None
    """a saved SARM model to use instead of training one"""
    sarm_styles: list[str] | None = None
    """the styles whose successful demos are annotated and train SARM (all successful demos if unset)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, [
            ("chunk", is_int(self.chunk) and self.chunk >= 1, "an integer >= 1"),
            ("kappa", is_num(self.kappa) and self.kappa >= 0, "a number >= 0"),
            ("sarm_steps", is_int(self.sarm_steps) and self.sarm_steps >= 1, "an integer >= 1"),
        ])


class BCAgent:
    """Offline (RA-)BC with the runner's interface; ``act`` is the deterministic policy."""

    label: ClassVar[str] = "bc"

    def __init__(self, obs: np.ndarray, actions: np.ndarray, weights: np.ndarray | None, p: BCParams, seed: int):
        from rewardlab.imitation.sarm import BCConfig

        self.obs, self.actions, self.weights, self.seed = obs, actions, weights, seed
        self.cfg = BCConfig(batch_size=p.batch_size, lr=p.lr, hidden=tuple(p.hidden))
        self.log_every = p.log_every
        self.policy: Any = None
        self.opt: Any = None
        self.num_timesteps = 0

    def learn(self, total_steps: int, callback: Any) -> None:
        from rewardlab.imitation.sarm import train_bc

        while self.num_timesteps < total_steps:
            n = min(self.log_every, total_steps - self.num_timesteps)
            self.policy, self.opt, losses = train_bc(self.obs, self.actions, self.weights, self.cfg,
                                                     seed=self.seed + self.num_timesteps, policy=self.policy,
                                                     opt=self.opt, steps=n)
            self.num_timesteps += n
            metrics = {"losses/bc_loss": losses[-1]}
            if self.weights is not None:
                metrics["losses/rabc_mean_weight"] = float(self.weights.mean())
            if callback is not None and callback.on_iteration(self.num_timesteps, metrics) is False:
                return

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        import torch

        if self.policy is None:
            raise InvalidArgument("the BC policy is not trained yet: call learn() first")
        with torch.no_grad():
            return self.policy(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy()

    def save(self, path: Path) -> None:
        import torch

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save({"policy": self.policy.state_dict(), "opt": self.opt.state_dict(),
                    "num_timesteps": self.num_timesteps}, path / "bc.pt")

    def load(self, path: Path) -> None:
        import torch

        from rewardlab.imitation.sarm import make_policy

        state = torch.load(Path(path) / "bc.pt", weights_only=False)
        if self.policy is None:
            self.policy = make_policy(self.obs.shape[1], self.actions.shape[1], self.cfg.hidden)
            self.opt = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr)
        self.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["opt"])
        self.num_timesteps = int(state["num_timesteps"])


def _demos(venv: Any, p: BCParams, agent: str):
    from rewardlab.imitation.sarm_demos import generate_demos

    try:
        ds = generate_demos(p.demos, seed=p.demo_seed)
        chosen = ds.select(p.styles)
    except InvalidArgument as e:
        raise ConfigError(f"agent.params of {agent!r}: {e}") from e
    if not len(chosen):
        raise ConfigError(f"agent.params.styles: no demos of styles {p.styles} in the mix {p.demos}")
    if venv is not None and venv.single_observation_space.shape != (ds.demos[0].obs.shape[1],):
        raise ConfigError(f"{agent}: the env's observations {venv.single_observation_space.shape} are not the "
                          f"demos' ({ds.demos[0].obs.shape[1]},); use env.id manipulation/ReachSequence-v0")
    return ds, chosen


def _pairs(demos: list) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([d.obs[:-1] for d in demos]).astype(np.float32),
            np.concatenate([d.actions for d in demos]).astype(np.float32))


def make_bc(venv: Any, *, gamma: float, seed: int, params: dict[str, Any]) -> BCAgent:
    """The ``bc`` agent factory (``params``: ``BCParams`` fields)."""
    p = params_from_dict(BCParams, params, agent="bc")
    _, chosen = _demos(venv, p, "bc")
    obs, acts = _pairs(chosen.demos)
    return BCAgent(obs, acts, None, p, seed)


def make_ra_bc(venv: Any, *, gamma: float, seed: int, params: dict[str, Any]) -> BCAgent:
    """The ``ra_bc`` agent factory (``params``: ``RABCParams`` fields)."""
    from rewardlab.imitation.sarm import SARMConfig, SARMModel, progress_deltas, rabc_weights, train_sarm

    p = params_from_dict(RABCParams, params, agent="ra_bc")
    ds, chosen = _demos(venv, p, "ra_bc")
    if p.sarm_checkpoint is not None:
        try:
            model = SARMModel.load(p.sarm_checkpoint)
        except InvalidArgument as e:
            raise ConfigError(f"agent.params.sarm_checkpoint: {e}") from e
    else:
        annotated = ds.select(p.sarm_styles, success_only=True)
        if not len(annotated):
            raise ConfigError("ra_bc: the demo mix has no successful (annotated) demo to train SARM on")
        model = train_sarm(annotated.demos, ds.names, SARMConfig(steps=p.sarm_steps), seed=seed)
    # r_i = φ(t + Δ) − φ(t) for the frames that have an action; μ, σ over the whole chosen set.
    deltas = progress_deltas([model.episode_progress(d.obs) for d in chosen.demos], p.chunk)
    r = np.concatenate([dl[:-1] for dl in deltas])
    weights = rabc_weights(r, kappa=p.kappa)
    obs, acts = _pairs(chosen.demos)
    agent = BCAgent(obs, acts, weights, p, seed)
    agent.label = "ra_bc"
    agent.sarm = model
    return agent
