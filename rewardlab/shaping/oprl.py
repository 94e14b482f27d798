"""OPRL: Online Process Reward Learning for agentic RL (arXiv 2509.19199; reference code
``Tongyi-ConvAI/Qwen-Character``, ``CharacterRL-iStar/istar``). Docs: ``docs/methods/oprl.md``.

An *implicit process reward model* (PRM) π_φ — a second policy network with the agent's
architecture, initialised from the agent — scores every step of a rollout by how much more
likely it finds the step's action than the rollout policy π_old did:

    r_φ(s_t, a_t) = β · [log π_φ(a_t | s_t) − log π_old(a_t | s_t)]

It is trained online from trajectory preferences only: within each group of episodes of the
same task instance, every (success, failure) pair gives the DPO loss ``−log σ(Q⁺ − Q⁻)``, where
an episode's score ``Q`` is the mean of its step values ``β · log-ratio``. The step rewards
become step-level advantages ``A_S`` (the group-relative transform of each step's reward) that
are added to the agent's episode-level advantages ``A_E``: ``A = A_E + w · A_S``.

Contents:

- ``trajectory_dpo_loss``: the DPO loss over (success, failure) pairs within groups;
- ``normalise_step_rewards``: divide a batch's step rewards by ``max |r| + 1e-6``;
- ``OPRLReward`` (term ``oprl``): the PRM and its optimiser, through the ``Term`` hooks
  ``bind_agent`` (copy the agent's policy), ``extra_advantages`` (``w · A_S`` from the PRM
  *before* it learns from the batch), ``update`` (one DPO step) and ``state_dict``.

It needs group rollouts (``rewardlab.core.groups``): the agents ``rloo`` and ``text_rloo`` hand
terms ``rollout.episodes``; ``bind_agent`` refuses any other agent. The term adds nothing to the
env reward (its ``__call__`` is 0): it acts on the learner only through ``extra_advantages``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from rewardlab.core.groups import GROUP_MODES, EpisodeGroups, GroupedVectorEnv, group_relative
from rewardlab.core.terms import Term
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument

__all__ = ["OPRLReward", "trajectory_dpo_loss", "normalise_step_rewards"]


def trajectory_dpo_loss(step_scores: torch.Tensor, step_episode: torch.Tensor, won: torch.Tensor,
                        group: torch.Tensor) -> tuple[torch.Tensor | None, int, float]:
    """Trajectory-level DPO over every (success, failure) pair of episodes in the same group.

    ``step_scores`` ``(S,)``: one value per step (``β · log-ratio``), differentiable;
    ``step_episode`` ``(S,)``: the episode of each step; ``won`` / ``group`` ``(E,)``: per episode.
    An episode's score is the mean of its steps' scores; the loss is the mean over pairs of
    ``−log σ(Q⁺ − Q⁻)``. Returns ``(loss or None without pairs, number of pairs, share of pairs
    already ordered Q⁺ > Q⁻)``.

    >>> s = torch.tensor([1.0, 0.0, -1.0], requires_grad=True)
    >>> loss, pairs, acc = trajectory_dpo_loss(s, torch.tensor([0, 0, 1]), torch.tensor([True, False]),
    ...                                        torch.tensor([0, 0]))
    >>> round(loss.item(), 4), pairs, acc  # Q+ = 0.5, Q- = -1: -log σ(1.5)
    (0.2014, 1, 1.0)
    """
    n_ep = won.shape[0]
    counts = torch.zeros(n_ep, dtype=step_scores.dtype).index_add_(0, step_episode, torch.ones_like(step_scores))
    sums = torch.zeros(n_ep, dtype=step_scores.dtype).index_add(0, step_episode, step_scores)
    q = sums / counts.clamp(min=1)
    has_steps = counts > 0
    pair = (group[:, None] == group[None, :]) & won[:, None] & ~won[None, :] & has_steps[:, None] & has_steps[None, :]
    i, j = pair.nonzero(as_tuple=True)
    if len(i) == 0:
        return None, 0, float("nan")
    margin = q[i] - q[j]
    loss = torch.nn.functional.softplus(-margin).mean()  # = −log σ(margin), numerically stable
    return loss, int(len(i)), float((margin > 0).float().mean())


def normalise_step_rewards(r: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, float]:
    """``r / (max |r| over the active steps + 1e-6)`` (the reference's ``batch_norm``), and the max.

    >>> r, scale = normalise_step_rewards(np.array([[0.2, -0.4], [9.0, 0.1]]), np.array([[True, True], [False, True]]))
    >>> r.round(4).tolist(), scale  # the inactive 9.0 is neither kept nor counted
    ([[0.5, -1.0], [0.0, 0.25]], 0.4)
    """
    scale = float(np.abs(r[active]).max()) if active.any() else 0.0
    return np.where(active, r / (scale + 1e-6), 0.0), scale


class OPRLReward(Term):
    """The ``oprl`` term: an implicit PRM learned from trajectory preferences (module doc).

    Args:
        beta: β of the step reward ``β · log(π_φ / π_old)`` (0.05 in the reference).
        step_weight: ``w`` in ``A = A_E + w · A_S`` (1 in the reference).
        baseline: the group-relative transform of the step rewards: ``rloo`` (each step's reward
            minus the mean of the other steps of its group) or ``grpo`` (``(r − μ)/(σ + 1e-6)``).
        normalise: divide the batch's step rewards by ``max |r| + 1e-6`` before ``A_S``.
        learning_rate: the PRM's AdamW learning rate; None: ``lr_scale ×`` the agent's.
        lr_scale: the PRM learning rate relative to the agent's (≈ 2 in the reference).
        grad_clip: the PRM's gradient-norm clip (10 in the reference).
        weight_decay: AdamW weight decay (0.01, the reference's default).
    """

    name = "oprl"

    def __init__(self, beta: float = 0.05, step_weight: float = 1.0, baseline: str = "rloo", normalise: bool = True,
                 learning_rate: float | None = None, lr_scale: float = 2.0, grad_clip: float = 10.0,
                 weight_decay: float = 0.01):
        checks = [
            # β scales the DPO margin (the sigmoid's temperature): zero or negative reverses or kills it.
            ("beta", beta, isinstance(beta, (int, float)) and beta > 0, "a number > 0"),
            ("step_weight", step_weight, isinstance(step_weight, (int, float)) and np.isfinite(step_weight),
             "a finite number"),
            ("baseline", baseline, baseline in GROUP_MODES, f"one of {', '.join(GROUP_MODES)}"),
            ("normalise", normalise, isinstance(normalise, bool), "true or false"),
            ("learning_rate", learning_rate, learning_rate is None
             or (isinstance(learning_rate, (int, float)) and learning_rate > 0), "None or a number > 0"),
            ("lr_scale", lr_scale, isinstance(lr_scale, (int, float)) and lr_scale > 0, "a number > 0"),
            ("grad_clip", grad_clip, isinstance(grad_clip, (int, float)) and grad_clip > 0, "a number > 0"),
            ("weight_decay", weight_decay, isinstance(weight_decay, (int, float)) and weight_decay >= 0,
             "a number >= 0"),
        ]
        for name, value, ok, allowed in checks:
            if not ok:
                raise InvalidArgument(f"oprl: {name} = {value!r} is invalid; allowed: {allowed}")
        self.beta, self.step_weight = float(beta), float(step_weight)
        self.baseline, self.normalise = baseline, normalise
        self.learning_rate, self.lr_scale = learning_rate, float(lr_scale)
        self.grad_clip, self.weight_decay = float(grad_clip), float(weight_decay)
        self.prm: torch.nn.Module | None = None
        self.opt: torch.optim.Optimizer | None = None
        self._preprocess: Any = None
        self.last_step_rewards: np.ndarray | None = None
        """``(steps, n_envs)`` the normalised step rewards behind the last ``extra_advantages``"""
        self._scale = float("nan")
        self._n_updates = 0

    def __call__(self, t: Transition) -> np.ndarray:
        # OPRL changes the learner's advantages, not the env reward.
        return np.zeros(t.num_envs, np.float32)

    # -- agent hooks -------------------------------------------------------------------------
    def bind_agent(self, agent: Any) -> None:
        """Copy the agent's policy as the PRM π_φ (a group-rollout agent: ``rloo``, ``text_rloo``)."""
        if not isinstance(getattr(agent, "group_env", None), GroupedVectorEnv):
            raise InvalidArgument(f"oprl compares episodes of the same task instance and needs an agent with group "
                                  f"rollouts (rloo or text_rloo); got {getattr(agent, 'label', type(agent).__name__)}")
        with torch.inference_mode(False):
            prm = copy.deepcopy(agent.policy)
            for p in prm.parameters():  # own storage: the agent's parameters are views of one flat tensor
                p.data = p.data.clone()
                p.grad = None
        self.prm = prm
        lr = self.learning_rate if self.learning_rate is not None else self.lr_scale * agent.cfg.learning_rate
        self.opt = torch.optim.AdamW(self.prm.parameters(), lr=lr, weight_decay=self.weight_decay)
        self._preprocess = agent.preprocess_obs

    def _episodes(self, rollout: Any) -> EpisodeGroups:
        episodes = getattr(rollout, "episodes", None)
        if not isinstance(episodes, EpisodeGroups) or self.prm is None:
            raise InvalidArgument("oprl needs a group rollout from a group-rollout agent (rloo or text_rloo) "
                                  "that called bind_agent")
        return episodes

    def _log_ratio(self, rollout: Any, rows: np.ndarray) -> torch.Tensor:
        """``log π_φ(a|s) − log π_old(a|s)`` of the flat step indices ``rows`` (differentiable in φ)."""
        def pick(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: pick(v) for k, v in x.items()}
            return np.asarray(x).reshape(-1, *np.shape(x)[2:])[rows]

        obs = self._preprocess(pick(rollout.obs))
        actions = torch.from_numpy(np.ascontiguousarray(pick(rollout.actions)))
        logp_old = torch.from_numpy(np.ascontiguousarray(pick(rollout.logprobs)))
        logp, _, _ = self.prm(obs, actions)
        return logp - logp_old

    def step_rewards(self, rollout: Any) -> np.ndarray:
        """``(steps, n_envs)``: ``β · log-ratio`` on active steps (0 elsewhere), normalised if asked."""
        ep = self._episodes(rollout)
        rows = np.flatnonzero(ep.active.reshape(-1))
        with torch.inference_mode(False), torch.no_grad():
            r = np.zeros(ep.active.size)
            r[rows] = self.beta * self._log_ratio(rollout, rows).double().numpy()
        r = r.reshape(ep.active.shape)
        if self.normalise:
            r, self._scale = normalise_step_rewards(r, ep.active)
        return r

    def extra_advantages(self, rollout: Any) -> np.ndarray:
        """``w · A_S``: each active step's PRM reward relative to the steps of its group."""
        ep = self._episodes(rollout)
        r = self.step_rewards(rollout)
        self.last_step_rewards = r
        t_idx, env_idx = np.nonzero(ep.active)
        out = np.zeros(ep.active.shape, np.float32)
        out[t_idx, env_idx] = group_relative(r[t_idx, env_idx], ep.group[env_idx], self.baseline)
        return self.step_weight * out

    def prm_loss(self, rollout: Any) -> tuple[torch.Tensor | None, int, float, torch.Tensor]:
        """The DPO loss of the batch, differentiable in the PRM's parameters (no ``detach``:
        the reference's ``q.detach()`` would stop the gradient here), the number of pairs, the
        share already ordered, and the step scores ``β · log-ratio`` of the active steps."""
        ep = self._episodes(rollout)
        rows = np.flatnonzero(ep.active.reshape(-1))
        scores = self.beta * self._log_ratio(rollout, rows)
        loss, pairs, acc = trajectory_dpo_loss(scores, torch.from_numpy(rows % ep.active.shape[1]),
                                               torch.from_numpy(ep.won()), torch.from_numpy(ep.group))
        return loss, pairs, acc, scores

    def update(self, rollout: Any) -> dict[str, float]:
        """One DPO step of the PRM on the batch's (success, failure) pairs within groups."""
        won = self._episodes(rollout).won()
        metrics = {"step_reward_scale": self._scale, "pairs": 0.0}
        if not (won.any() and (~won).any()):
            return metrics  # no group can hold a pair: nothing to learn, no forward pass needed
        with torch.inference_mode(False), torch.enable_grad():
            loss, pairs, acc, scores = self.prm_loss(rollout)
            if loss is None:
                return metrics
            self.opt.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.prm.parameters(), self.grad_clip)
            self.opt.step()
        self._n_updates += 1
        metrics.update({"dpo_loss": loss.item(), "pairs": float(pairs), "pair_accuracy": acc,
                        "grad_norm": float(grad_norm), "log_ratio_mean": scores.mean().item() / self.beta})
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """The PRM's weights and optimiser state (saved with the agent's checkpoint)."""
        if self.prm is None:
            return {}
        return {"prm": self.prm.state_dict(), "opt": self.opt.state_dict(), "n_updates": self._n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.prm is None:
            raise InvalidArgument("oprl: load_state_dict before bind_agent (the PRM is built from the agent)")
        self.prm.load_state_dict(state["prm"])
        self.opt.load_state_dict(state["opt"])
        self._n_updates = int(state["n_updates"])
