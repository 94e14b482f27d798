"""The update step of the PPO core, and the optimiser pieces it runs on.

- ``UpdateRule``: the declared extension point for how a rollout batch changes the weights;
  ``ClippedSurrogateUpdate`` (PPO: epochs of shuffled minibatches of ``ppo_loss``) and
  ``PolicyGradientUpdate`` (the ``pg`` variant: one full-batch step of ``pg_loss``);
- ``flatten_parameters`` + ``FlatAdam``: one tensor for zeroing, clipping and Adam (found by
  profiling: per-tensor Python overhead dominates with 64-wide layers).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch import nn

from rewardlab.agents.ppo.buffer import clone_tree, gather_into, index_tree
from rewardlab.agents.ppo.config import PPOConfig
from rewardlab.agents.ppo.losses import explained_variance, normalize_advantages, pg_loss, ppo_loss, ratio_stats

__all__ = ["UpdateRule", "ClippedSurrogateUpdate", "PolicyGradientUpdate", "flatten_parameters", "FlatAdam"]


def flatten_parameters(params: list[nn.Parameter]) -> nn.Parameter:
    """Turn ``params`` into views of one flat parameter whose ``.grad`` is one flat tensor.

    Backward still accumulates into each ``p.grad`` (views of the flat gradient, added to in
    place), but zeroing, grad-norm clipping and the Adam step each touch one tensor instead
    of one per layer; with 64-wide layers their per-tensor Python overhead is what costs.
    Module ``state_dict``/``load_state_dict`` are unchanged (they copy into the views).
    """
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[offset : offset + n].view_as(p)
        p.grad = flat.grad[offset : offset + n].view_as(p)
        offset += n
    return flat


class FlatAdam:
    """Adam on one flat parameter: the same update as ``torch.optim.Adam`` (eps outside
    the square root, bias-corrected), in a few in-place tensor ops.

    ``torch.optim.Adam.step`` spends ~100 µs of Python bookkeeping per call, more than the
    arithmetic of a 10k-parameter network; PPO calls it n_epochs * n_minibatches times per
    iteration.
    """

    def __init__(self, param: nn.Parameter, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-5):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param, requires_grad=False)
        self.exp_avg_sq = torch.zeros_like(param, requires_grad=False)
        self._denom = torch.zeros_like(param, requires_grad=False)  # scratch: no allocation per step
        self.steps = 0

    def step(self) -> None:
        b1, b2 = self.betas
        self.steps += 1
        grad = self.param.grad
        with torch.no_grad():
            self.exp_avg.lerp_(grad, 1 - b1)
            self.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            # + 1e-30 inside the root (changes nothing next to eps): torch.sqrt of exact zeros,
            # i.e. weights of inputs that are always 0 such as absent one-hot classes, takes
            # a ~20x slower path on x86 CPUs.
            denom = torch.add(self.exp_avg_sq, 1e-30, out=self._denom).sqrt_()
            denom.div_(math.sqrt(1 - b2**self.steps)).add_(self.eps)
            self.param.addcdiv_(self.exp_avg, denom, value=-self.lr / (1 - b1**self.steps))

    def state_dict(self) -> dict[str, Any]:
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(), "steps": self.steps,
                "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.steps, self.lr = int(state["steps"]), float(state["lr"])



def _clipped_step(optimizer: FlatAdam, loss: torch.Tensor, max_grad_norm: float) -> None:
    """Backward, clip the global gradient norm to ``max_grad_norm``, one Adam step."""
    grad = optimizer.param.grad
    grad.zero_()
    loss.backward()
    grad.mul_(torch.clamp(max_grad_norm / (grad.norm() + 1e-6), max=1.0))  # clip global norm
    optimizer.step()


class UpdateRule(Protocol):
    """How one rollout batch changes the weights: the core's extension point for variants.

    ``batch`` holds flattened ``(n_steps * n_envs, ...)`` tensors: ``obs`` (a tensor or a dict),
    ``actions``, ``logprobs``, ``values``, ``advantages``, ``returns``. The rule calls
    ``policy(obs, actions) -> (logprob, entropy, value)``, steps ``optimizer`` and returns the
    ``losses/...`` metrics. A ``PPOAgent`` subclass names its rule in ``update_rule``; the agent
    makes one instance per agent (a rule may keep scratch buffers).
    """

    def __call__(self, policy: nn.Module, optimizer: FlatAdam, batch: dict[str, Any], cfg: PPOConfig,
                 gen: torch.Generator) -> dict[str, float]: ...


class ClippedSurrogateUpdate:
    """PPO: ``n_epochs`` passes of ``n_minibatches`` shuffled minibatches of ``ppo_loss``
    (advantages normalised per minibatch), stopping early past ``target_kl``."""

    def __init__(self) -> None:
        self._shuffled: dict[str, Any] | None = None  # per-epoch shuffled copy of the batch

    def __call__(self, policy: nn.Module, optimizer: FlatAdam, batch: dict[str, Any], cfg: PPOConfig,
                 gen: torch.Generator) -> dict[str, float]:
        batch_size = batch["logprobs"].shape[0]
        n_mb = cfg.n_minibatches
        size = batch_size // n_mb
        if self._shuffled is None:  # reused every epoch: large fresh allocations page-fault each time
            self._shuffled = clone_tree(index_tree(batch, slice(0, n_mb * size)))
        shuffled = self._shuffled
        parts: list[dict[str, torch.Tensor]] = []
        for _epoch in range(cfg.n_epochs):
            # One shuffle-gather per tensor per epoch; minibatches are then contiguous slices.
            perm = torch.randperm(batch_size, generator=gen)[: n_mb * size]
            gather_into(shuffled, batch, perm)
            adv = shuffled["advantages"].view(n_mb, size)
            if cfg.norm_adv and size > 1:
                adv = normalize_advantages(adv)  # per minibatch, all rows at once
            epoch_parts = []
            for i in range(n_mb):
                mb = index_tree(shuffled, slice(i * size, (i + 1) * size))
                logprob, entropy, value = policy(mb["obs"], mb["actions"])
                loss, p = ppo_loss(logprob, mb["logprobs"], adv[i], value, mb["values"], mb["returns"], entropy, cfg)
                _clipped_step(optimizer, loss, cfg.max_grad_norm)
                epoch_parts.append(p)
            parts += epoch_parts
            if cfg.target_kl is not None:
                kl = ratio_stats(torch.cat([p["logratio"] for p in epoch_parts]), cfg.clip_coef)["approx_kl"]
                if kl > cfg.target_kl:
                    break
        means = torch.stack([torch.stack([p["policy_loss"], p["value_loss"], p["entropy"]]) for p in parts]).mean(0)
        metrics = {f"losses/{k}": v for k, v in zip(("policy_loss", "value_loss", "entropy"), means.tolist(),
                                                    strict=True)}
        stats = ratio_stats(torch.cat([p["logratio"] for p in parts]), cfg.clip_coef)
        metrics.update({f"losses/{k}": v for k, v in stats.items()})
        metrics["losses/explained_variance"] = explained_variance(batch["values"], batch["returns"])
        return metrics


class PolicyGradientUpdate:
    """Vanilla policy gradient: one step of ``pg_loss`` on the whole batch (no ratio, no
    clipping, no epochs or minibatches), gradient-norm clipped to ``max_grad_norm``."""

    def __call__(self, policy: nn.Module, optimizer: FlatAdam, batch: dict[str, Any], cfg: PPOConfig,
                 gen: torch.Generator) -> dict[str, float]:
        adv, ret = batch["advantages"], batch["returns"]
        if cfg.norm_adv and adv.numel() > 1:
            adv = normalize_advantages(adv)
        logprob, entropy, value = policy(batch["obs"], batch["actions"])
        loss, parts = pg_loss(logprob, adv, value, ret, entropy, cfg)
        _clipped_step(optimizer, loss, cfg.max_grad_norm)
        metrics = {f"losses/{k}": float(v) for k, v in parts.items()}
        metrics["losses/explained_variance"] = explained_variance(batch["values"], ret)
        return metrics
