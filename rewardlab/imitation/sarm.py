"""SARM: stage-aware reward modelling, and RA-BC (reward-aligned behaviour cloning).

Chen et al., "SARM: Stage-Aware Reward Modeling for Long Horizon Robot Manipulation" (2025);
reference code ``huggingface/lerobot`` (``src/lerobot/rewards/sarm/``). Method page:
``docs/methods/sarm.md``. Everything here runs on simulator *states* on a CPU: the two
networks are small MLPs over a causal window of observations, not the reference's
768-wide transformers over CLIP video features.

Contents:

- labels from subtask annotations: ``stage_tau`` (one frame, every boundary case of the
  reference's ``find_stage_and_tau``), ``frame_labels`` (a whole demo), ``frame_index_labels``
  (the τ = t/(T−1) baseline);
- stage priors: ``stage_priors`` (ᾱ_k = mean over demos of subtask length / demo length),
  ``breakpoints`` (their cumulative sums), ``normalized_progress`` (b_k + τ·(b_{k+1} − b_k));
- the model: ``SARMConfig``, ``SARMNet`` (a stage classifier and a stage-conditioned τ
  regressor), ``stage_conditioning`` (the 0.75 teacher-forcing switch), ``window_indices`` and
  ``rewind_indices`` (rewind augmentation), ``sarm_loss`` (CE + MSE), ``train_sarm``,
  ``SARMModel`` (normaliser + priors + nets; ``predict``, ``episode_progress``, save/load);
- RA-BC: ``progress_deltas``, ``rabc_weights`` (the paper's Eq. 8–9), ``weighted_bc_loss``,
  ``BCConfig``, ``MLPPolicy``, ``train_bc``;
- ``SARMReward``: the ``sarm`` reward term (learned progress as a potential, or dense).

Torch is imported lazily (``import rewardlab`` stays light).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition, batch_index
from rewardlab.errors import InvalidArgument, TermOutputError

__all__ = [
    "stage_tau", "frame_labels", "frame_index_labels", "stage_priors", "breakpoints", "normalized_progress",
    "SARMConfig", "stage_conditioning", "window_indices", "rewind_indices", "sarm_loss", "train_sarm", "SARMModel",
    "progress_deltas", "rabc_weights", "weighted_bc_loss", "BCConfig", "train_bc", "SARMReward",
]

Annotation = Sequence[tuple[str, int, int]]


# -- labels from subtask annotations ------------------------------------------------------------
def stage_tau(t: int, subtasks: Annotation, names: Sequence[str]) -> tuple[int, float]:
    """Stage index and within-stage progress τ of frame ``t`` from ``(name, start, end)`` spans.

    - in subtask k spanning [s_k, e_k]: (k, clip((t − s_k)/(e_k − s_k), 0, 1)); τ = 1 if e_k = s_k;
    - before the first subtask: (0, 0); after the last: (K − 1, 0.999);
    - in a gap between two subtasks: the previous subtask's stage with τ = 1;
    - no annotation at all: (0, 0). ``k`` is the subtask name's index in ``names``.

    >>> ann = [("a", 2, 6), ("b", 8, 8), ("c", 8, 12)]
    >>> [stage_tau(t, ann, "abc") for t in (0, 4, 7, 8, 10, 13)]
    [(0, 0.0), (0, 0.5), (0, 1.0), (1, 1.0), (2, 0.5), (2, 0.999)]
    """
    if not subtasks:
        return 0, 0.0
    k_last = len(names) - 1
    if t < subtasks[0][1]:
        return 0, 0.0
    if t > subtasks[-1][2]:
        return k_last, 0.999
    for name, start, end in subtasks:
        if start <= t <= end:
            return _index(name, names), (1.0 if end <= start else float(np.clip((t - start) / (end - start), 0.0, 1.0)))
    for (name, _, end), (_, nxt, _) in zip(subtasks[:-1], subtasks[1:], strict=True):
        if end < t < nxt:
            return _index(name, names), 1.0
    return 0, 0.0  # unreachable for ordered spans; kept total for unordered ones


def _index(name: str, names: Sequence[str]) -> int:
    if name not in names:
        raise InvalidArgument(f"subtask {name!r} is not one of the task's subtasks {list(names)}")
    return list(names).index(name)


def frame_labels(length: int, subtasks: Annotation, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``stage_tau`` for frames ``0 .. length − 1``: (stages int64, τ float32)."""
    pairs = [stage_tau(t, subtasks, names) for t in range(length)]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.float32)


def frame_index_labels(length: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline's labels: one stage, τ = t/(T − 1).

    >>> frame_index_labels(5)[1].tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return np.zeros(length, np.int64), (np.arange(length) / max(length - 1, 1)).astype(np.float32)


# -- stage priors ----------------------------------------------------------------------------------
def stage_priors(annotations: Sequence[tuple[int, Annotation]], names: Sequence[str]) -> np.ndarray:
    """ᾱ_k = mean over demos of (length of subtask k / demo length), renormalised to sum to 1.

    ``annotations`` is ``[(n_frames, spans), ...]``; a demo's length is its frame span
    ``n_frames − 1`` (the spans are frame indices); a subtask a demo lacks counts 0.

    >>> stage_priors([(11, [("a", 0, 4), ("b", 4, 10)]), (21, [("a", 0, 4), ("b", 4, 20)])], "ab").round(3).tolist()
    [0.3, 0.7]
    """
    if not annotations:
        raise InvalidArgument("stage priors need at least one annotated demo")
    props = np.zeros((len(annotations), len(names)))
    for i, (n_frames, spans) in enumerate(annotations):
        span = max(n_frames - 1, 1)
        for name, start, end in spans:
            props[i, _index(name, names)] += max(end - start, 0) / span
    alpha = props.mean(axis=0)
    if alpha.sum() <= 0:
        raise InvalidArgument("stage priors: every annotated subtask has zero length")
    return alpha / alpha.sum()


def breakpoints(priors: np.ndarray) -> np.ndarray:
    """Cumulative sums of the priors, from 0 to 1 (K + 1 values).

    >>> breakpoints(np.array([0.3, 0.7])).tolist()
    [0.0, 0.3, 1.0]
    """
    b = np.concatenate([[0.0], np.cumsum(priors)])
    b[-1] = 1.0
    return b


def normalized_progress(stage: np.ndarray, tau: np.ndarray, bps: np.ndarray) -> np.ndarray:
    """progress = b_k + τ·(b_{k+1} − b_k) ∈ [0, 1].

    >>> normalized_progress(np.array([0, 1]), np.array([0.5, 0.5]), np.array([0.0, 0.3, 1.0])).round(2).tolist()
    [0.15, 0.65]
    """
    stage = np.clip(np.asarray(stage, np.int64), 0, len(bps) - 2)
    return np.clip(bps[stage] + np.asarray(tau) * (bps[stage + 1] - bps[stage]), 0.0, 1.0)


# -- the model ---------------------------------------------------------------------------------------
@dataclass
class SARMConfig:
    """SARM hyperparameters (sized for a CPU; the reference's are for video)."""

    labels: str = "sarm"
    """``sarm`` (stage + τ from annotations) or ``frame_index`` (τ = t/(T−1), one stage: the baseline)"""
    window: int = 4
    """observations per input window (reference: 8, bidirectional; here causal, so it runs online)"""
    frame_gap: int = 3
    """steps between the window's frames (reference: 30 video frames)"""
    hidden: int = 64
    """width of both MLPs (two hidden layers each)"""
    gt_stage_ratio: float = 0.75
    """probability that a batch conditions the τ head on the true stage (else the predicted argmax)"""
    rewind_prob: float = 0.8
    """probability that a sample is rewound (its window's suffix played backwards)"""
    max_rewind: int = 4
    """most frames played backwards"""
    steps: int = 1000
    """Adam steps"""
    batch_size: int = 128
    lr: float = 1e-3

    def __post_init__(self) -> None:
        checks = [
            ("labels", self.labels in ("sarm", "frame_index"), "'sarm' or 'frame_index'"),
            ("window", isinstance(self.window, int) and self.window >= 1, "an integer >= 1"),
            ("frame_gap", isinstance(self.frame_gap, int) and self.frame_gap >= 1, "an integer >= 1"),
            ("hidden", isinstance(self.hidden, int) and self.hidden >= 1, "an integer >= 1"),
            ("gt_stage_ratio", 0.0 <= self.gt_stage_ratio <= 1.0, "a probability in [0, 1]"),
            ("rewind_prob", 0.0 <= self.rewind_prob <= 1.0, "a probability in [0, 1]"),
            ("max_rewind", isinstance(self.max_rewind, int) and self.max_rewind >= 0, "an integer >= 0"),
            ("steps", isinstance(self.steps, int) and self.steps >= 1, "an integer >= 1"),
            ("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "a number > 0"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise InvalidArgument(f"SARM {name}={getattr(self, name)!r} is invalid; allowed: {allowed}")


def window_indices(t: int, window: int, gap: int) -> list[int]:
    """Frame indices of the causal window ending at ``t``, clamped at the episode start.

    >>> window_indices(4, 4, 2)
    [0, 0, 2, 4]
    """
    return [max(t - gap * i, 0) for i in range(window - 1, -1, -1)]


def rewind_indices(t: int, n: int, window: int, gap: int) -> tuple[list[int], int]:
    """Rewind augmentation: play forward to ``t``, then ``n`` frames back (``gap`` apart); the
    window is the sequence's last ``window`` frames and its label frame the last one.

    >>> rewind_indices(12, 2, 4, 3)   # forward ..., 6, 9, 12, then back 9, 6
    ([9, 12, 9, 6], 6)
    """
    n = min(n, t // gap)
    # The frame ``e`` places before the sequence's end is t − gap·|n − e| (clamped at 0).
    idx = [max(t - gap * abs(n - e), 0) for e in range(window - 1, -1, -1)]
    return idx, t - gap * n


def stage_conditioning(gt_stage: Any, stage_logits: Any, num_stages: int, draw: float, gt_ratio: float = 0.75):
    """The τ head's one-hot stage input: the true stage when ``draw < gt_ratio`` (teacher
    forcing, one draw per batch as in the reference), else the stage head's argmax (no gradient).

    >>> import torch
    >>> logits = torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    >>> gt = torch.tensor([0, 0])
    >>> stage_conditioning(gt, logits, 2, draw=0.5).tolist(), stage_conditioning(gt, logits, 2, draw=0.9).tolist()
    ([[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]])
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    idx = gt_stage if draw < gt_ratio else stage_logits.detach().argmax(dim=-1)
    return F.one_hot(idx.long(), num_classes=num_stages).to(torch.float32)


def _mlp(sizes: Sequence[int]):
    import torch.nn as nn

    layers: list[Any] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _make_net(obs_dim: int, cfg: SARMConfig, num_stages: int):
    import torch
    import torch.nn as nn

    class SARMNet(nn.Module):
        """Stage classifier and stage-conditioned τ regressor over a flattened window."""

        def __init__(self) -> None:
            super().__init__()
            d = obs_dim * cfg.window
            self.num_stages = num_stages
            self.stage_net = _mlp([d, cfg.hidden, cfg.hidden, num_stages])
            self.tau_net = _mlp([d + num_stages, cfg.hidden, cfg.hidden, 1])

        def stage_logits(self, x: torch.Tensor) -> torch.Tensor:
            return self.stage_net(x)

        def tau(self, x: torch.Tensor, stage_onehot: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.tau_net(torch.cat([x, stage_onehot], dim=-1))).squeeze(-1)

    return SARMNet()


def sarm_loss(net: Any, x: Any, gt_stage: Any, gt_tau: Any, draw: float, gt_ratio: float) -> tuple[Any, dict]:
    """Loss = cross-entropy of the stage head + MSE of the τ head (conditioned by ``stage_conditioning``)."""
    import torch.nn.functional as F  # noqa: N812

    logits = net.stage_logits(x)
    onehot = stage_conditioning(gt_stage, logits, net.num_stages, draw, gt_ratio)
    tau = net.tau(x, onehot)
    ce = F.cross_entropy(logits, gt_stage)
    mse = F.mse_loss(tau, gt_tau)
    return ce + mse, {"stage_loss": float(ce.detach()), "tau_loss": float(mse.detach())}


@dataclass
class SARMModel:
    """A trained SARM: the nets, the observation normaliser, the priors' breakpoints."""

    cfg: SARMConfig
    names: tuple[str, ...]
    bps: np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    net: Any = field(repr=False)
    history: list[dict] = field(default_factory=list, repr=False)

    @property
    def num_stages(self) -> int:
        return len(self.bps) - 1

    def windows(self, obs_seq: np.ndarray) -> np.ndarray:
        """The causal window of every frame of one episode, normalised and flattened: (T, W·obs_dim)."""
        idx = np.array([window_indices(t, self.cfg.window, self.cfg.frame_gap) for t in range(len(obs_seq))])
        x = (np.asarray(obs_seq, np.float32)[idx] - self.obs_mean) / self.obs_std
        return x.reshape(len(obs_seq), -1).astype(np.float32)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage, τ and normalised progress for flattened windows ``x`` (N, W·obs_dim)."""
        import torch

        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float32)
            logits = self.net.stage_logits(xt)
            stage = logits.argmax(dim=-1)
            tau = self.net.tau(xt, torch.nn.functional.one_hot(stage, self.num_stages).to(torch.float32))
        stage_np, tau_np = stage.numpy(), tau.numpy()
        return stage_np, tau_np, normalized_progress(stage_np, tau_np, self.bps).astype(np.float32)

    def episode_progress(self, obs_seq: np.ndarray) -> np.ndarray:
        """Predicted progress of every frame of one episode."""
        return self.predict(self.windows(obs_seq))[2]

    def save(self, path: str | Path) -> None:
        import torch

        torch.save({"cfg": asdict(self.cfg), "names": list(self.names), "bps": self.bps, "obs_mean": self.obs_mean,
                    "obs_std": self.obs_std, "state": self.net.state_dict()}, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> SARMModel:
        import torch

        path = Path(path)
        if not path.is_file():
            raise InvalidArgument(f"SARM checkpoint {str(path)!r} does not exist")
        d = torch.load(path, weights_only=False)
        cfg = SARMConfig(**d["cfg"])
        net = _make_net(len(d["obs_mean"]), cfg, len(d["bps"]) - 1)
        net.load_state_dict(d["state"])
        net.eval()
        return cls(cfg, tuple(d["names"]), np.asarray(d["bps"]), d["obs_mean"], d["obs_std"], net)


def train_sarm(demos: Sequence[Any], names: Sequence[str], cfg: SARMConfig | None = None, seed: int = 0) -> SARMModel:
    """Train SARM on annotated demos (objects with ``obs`` (T, D) and ``subtasks`` spans).

    ``cfg.labels == "frame_index"`` trains the baseline: one stage, τ = t/(T−1).
    """
    import torch

    cfg = cfg or SARMConfig()
    demos = [d for d in demos if len(d.obs) >= 2]
    if not demos:
        raise InvalidArgument("train_sarm needs at least one demo with two or more frames")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if cfg.labels == "sarm":
        if not all(d.subtasks for d in demos):
            raise InvalidArgument("train_sarm with labels='sarm' needs every demo annotated (subtasks)")
        bps = breakpoints(stage_priors([(len(d.obs), d.subtasks) for d in demos], names))
        labels = [frame_labels(len(d.obs), d.subtasks, names) for d in demos]
        names = tuple(names)
    else:
        bps, names = np.array([0.0, 1.0]), ("task",)
        labels = [frame_index_labels(len(d.obs)) for d in demos]
    k = len(bps) - 1
    all_obs = np.concatenate([d.obs for d in demos]).astype(np.float32)
    mean, std = all_obs.mean(0), all_obs.std(0) + 1e-6
    net = _make_net(all_obs.shape[1], cfg, k)
    model = SARMModel(cfg, tuple(names), bps, mean, std, net)
    obs_n = ((all_obs - mean) / std).astype(np.float32)
    offsets = np.cumsum([0] + [len(d.obs) for d in demos])[:-1]
    frame_t = np.concatenate([np.arange(len(d.obs)) for d in demos])
    frame_off = np.concatenate([np.full(len(d.obs), o) for d, o in zip(demos, offsets, strict=True)])
    all_stage = np.concatenate([lab[0] for lab in labels])
    all_tau = np.concatenate([lab[1] for lab in labels]).astype(np.float32)
    e = np.arange(cfg.window)[::-1]  # window position oldest..newest as steps back from the newest
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for step in range(cfg.steps):
        rows = rng.integers(len(frame_t), size=cfg.batch_size)
        t, off = frame_t[rows], frame_off[rows]
        # Rewind: forward to t, then n frames back; the window's frame at e steps from its end
        # is t − gap·|n − e| (n = 0: the plain causal window), its label frame t − gap·n.
        n = rng.integers(1, cfg.max_rewind + 1, size=len(t)) if cfg.max_rewind > 0 else np.zeros(len(t), int)
        n = np.where(rng.random(len(t)) < cfg.rewind_prob, np.minimum(n, t // cfg.frame_gap), 0)
        times = np.maximum(t[:, None] - cfg.frame_gap * np.abs(n[:, None] - e[None, :]), 0)
        lab = off + t - cfg.frame_gap * n
        xs = obs_n[off[:, None] + times].reshape(len(t), -1)
        st, ta = all_stage[lab], all_tau[lab]
        x = torch.as_tensor(xs, dtype=torch.float32)
        loss, info = sarm_loss(net, x, torch.as_tensor(np.asarray(st)), torch.as_tensor(np.asarray(ta, np.float32)),
                               draw=float(rng.random()), gt_ratio=cfg.gt_stage_ratio)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            model.history.append({"step": step, **info})
    net.eval()
    return model


# -- RA-BC --------------------------------------------------------------------------------------------
def progress_deltas(progress: Sequence[np.ndarray], chunk: int) -> list[np.ndarray]:
    """r_t = φ(t + Δ) − φ(t) per frame of each episode, t + Δ capped at the episode's last frame.

    >>> [round(float(x), 2) for x in progress_deltas([np.array([0.0, 0.1, 0.3, 0.2])], chunk=2)[0]]
    [0.3, 0.1, -0.1, 0.0]
    """
    if not (isinstance(chunk, int) and chunk >= 1):
        raise InvalidArgument(f"RA-BC chunk must be an integer >= 1, got {chunk!r}")
    out = []
    for p in progress:
        p = np.asarray(p, np.float64)
        fut = np.minimum(np.arange(len(p)) + chunk, len(p) - 1)
        out.append((p[fut] - p).astype(np.float32))
    return out


def rabc_weights(r: np.ndarray, kappa: float = 0.01, eps: float = 1e-6,
                 mu: float | None = None, sigma: float | None = None) -> np.ndarray:
    """RA-BC weights (SARM Eq. 8–9) of progress deltas ``r``.

    μ = max(mean r, 0), σ = max(std r, ε) over the dataset (pass them to weight a batch);
    w̃ = clip((r − (μ − 2σ)) / (4σ + ε), 0, 1); w = 1 if r > κ, w̃ if 0 ≤ r ≤ κ, 0 if r < 0.

    >>> [round(float(w), 4) for w in rabc_weights(np.array([0.5, 0.005, 0.0, -0.1]), mu=0.02, sigma=0.05)]
    [1.0, 0.425, 0.4, 0.0]
    """
    if not kappa >= 0 or not eps > 0:
        raise InvalidArgument(f"RA-BC needs kappa >= 0 and eps > 0, got kappa={kappa}, eps={eps}")
    r = np.asarray(r, np.float64)
    mu = max(float(np.mean(r)), 0.0) if mu is None else mu
    sigma = max(float(np.std(r)), eps) if sigma is None else sigma
    soft = np.clip((r - (mu - 2 * sigma)) / (4 * sigma + eps), 0.0, 1.0)
    w = np.where(r > kappa, 1.0, np.where(r >= 0, soft, 0.0))
    return w.astype(np.float32)


def weighted_bc_loss(per_sample: Any, w: Any, eps: float = 1e-6) -> Any:
    """Σ w_i ℓ_i / (Σ w_i + ε) after rescaling the batch's weights to sum to the batch size.

    >>> import torch
    >>> round(float(weighted_bc_loss(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 0.0]))), 4)
    1.0
    """
    n = per_sample.shape[0]
    w = w * n / (w.sum() + eps)
    return (w * per_sample).sum() / (w.sum() + eps)


@dataclass
class BCConfig:
    """Behaviour-cloning hyperparameters (a deterministic tanh MLP policy, MSE on actions)."""

    steps: int = 2000
    """Adam steps"""
    batch_size: int = 128
    lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)


def make_policy(obs_dim: int, act_dim: int, hidden: Sequence[int]):
    """A deterministic MLP policy with tanh outputs (actions in [−1, 1])."""
    import torch.nn as nn

    return nn.Sequential(_mlp([obs_dim, *hidden, act_dim]), nn.Tanh())


def train_bc(obs: np.ndarray, actions: np.ndarray, weights: np.ndarray | None = None, cfg: BCConfig | None = None,
             seed: int = 0, policy: Any = None, opt: Any = None,
             steps: int | None = None) -> tuple[Any, Any, list[float]]:
    """BC (``weights=None``) or RA-BC (per-sample weights, ``weighted_bc_loss``) on (obs, action) pairs.

    Continues ``policy``/``opt`` when given (``steps`` more Adam steps). Returns policy, optimiser,
    the loss every 100 steps.
    """
    import torch

    cfg = cfg or BCConfig()
    if len(obs) != len(actions) or len(obs) == 0:
        raise InvalidArgument(f"BC needs as many observations as actions (> 0), got {len(obs)} and {len(actions)}")
    if weights is not None and len(weights) != len(obs):
        raise InvalidArgument(f"RA-BC needs one weight per sample, got {len(weights)} for {len(obs)}")
    gen = torch.Generator().manual_seed(seed)
    if policy is None:
        torch.manual_seed(seed)
        policy = make_policy(obs.shape[1], actions.shape[1], cfg.hidden)
        opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    o = torch.as_tensor(obs, dtype=torch.float32)
    a = torch.as_tensor(actions, dtype=torch.float32)
    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    losses = []
    for step in range(cfg.steps if steps is None else steps):
        idx = torch.randint(len(o), (cfg.batch_size,), generator=gen)
        per = ((policy(o[idx]) - a[idx]) ** 2).sum(-1)
        loss = per.mean() if w is None else weighted_bc_loss(per, w[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            losses.append(float(loss.detach()))
    return policy, opt, losses


# -- the reward term ---------------------------------------------------------------------------------
class SARMReward(Term):
    """``sarm``: SARM's predicted task progress φ as a reward.

    ``mode="potential"`` (default): ``γ·φ(s') − φ(s)`` with φ(terminal) = 0 and truncation keeping
    ``γ·φ(s')`` — potential-based shaping (Ng et al. 1999) on the window-augmented state, so the
    optimal policy is unchanged. ``mode="dense"``: φ(s') itself every step (not policy-invariant).

    The model comes from ``checkpoint`` (``SARMModel.save``) or, if none is given, is trained at
    construction on ``generate_demos(demos, seed=demo_seed)``'s successful demos (deterministic
    given ``demo_seed`` and ``seed``). The term keeps each env's window of past observations.
    """

    name = "sarm"

    def __init__(self, checkpoint: str | None = None, demos: dict[str, int] | None = None, demo_seed: int = 0,
                 train_steps: int = 1000, gamma: float = 0.99, scale: float = 1.0, mode: str = "potential",
                 seed: int = 0):
        if mode not in ("potential", "dense"):
            raise InvalidArgument(f"sarm mode must be 'potential' or 'dense', got {mode!r}")
        if not 0.0 <= gamma <= 1.0:
            raise InvalidArgument(f"sarm gamma must be in [0, 1], got {gamma}")
        if not math.isfinite(scale):
            raise InvalidArgument(f"sarm scale must be finite, got {scale}")
        if checkpoint is not None:
            self.model = SARMModel.load(checkpoint)
        else:
            from rewardlab.imitation.sarm_demos import generate_demos

            ds = generate_demos(demos or {"clean": 10, "slow": 10, "noisy": 10, "detour": 10}, seed=demo_seed)
            ds = ds.select(success_only=True)
            self.model = train_sarm(ds.demos, ds.names, SARMConfig(steps=train_steps), seed=seed)
        self.gamma, self.scale, self.mode = float(gamma), float(scale), mode
        w, d = self.model.cfg.window, len(self.model.obs_mean)
        self._span = (w - 1) * self.model.cfg.frame_gap + 1
        self._hist = np.zeros((0, self._span, d), np.float32)
        self._phi = np.zeros(0, np.float32)

    def bind(self, num_envs: int) -> None:
        self._hist = np.zeros((num_envs, self._span, self._hist.shape[2]), np.float32)
        self._phi = np.zeros(num_envs, np.float32)

    def _progress(self, hist: np.ndarray) -> np.ndarray:
        sel = hist[:, ::-1][:, :: self.model.cfg.frame_gap][:, ::-1]  # oldest..newest, gap apart
        x = ((sel - self.model.obs_mean) / self.model.obs_std).reshape(len(hist), -1).astype(np.float32)
        return self.model.predict(x)[2] * self.scale

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        if len(env_ids) == 0:
            return
        if len(self._phi) <= int(np.max(env_ids)):
            self.bind(int(np.max(env_ids)) + 1)
        o = np.asarray(batch_index(obs, env_ids), np.float32).reshape(len(env_ids), -1)
        if o.shape[1] != self._hist.shape[2]:
            raise TermOutputError(f"sarm: observations have {o.shape[1]} numbers, the model was trained on "
                                  f"{self._hist.shape[2]}; use env manipulation/ReachSequence-v0")
        self._hist[env_ids] = o[:, None, :]  # clamped at the episode start, as in training
        self._phi[env_ids] = self._progress(self._hist[env_ids])

    def __call__(self, t: Transition) -> np.ndarray:
        ids = t.env_ids
        if len(self._phi) <= int(np.max(ids)):
            self.bind(int(np.max(ids)) + 1)
        nxt = np.asarray(t.next_obs, np.float32).reshape(len(ids), -1)
        hist = np.concatenate([self._hist[ids][:, 1:], nxt[:, None, :]], axis=1)
        phi_next = self._progress(hist)
        if self.mode == "dense":
            out = phi_next
        else:
            out = self.gamma * np.where(t.terminated, np.float32(0.0), phi_next) - self._phi[ids]
        self._hist[ids] = hist
        self._phi[ids] = phi_next
        return out.astype(np.float32)
