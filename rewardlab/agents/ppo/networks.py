"""Networks of the PPO core: encoders, the actor-critic with its action heads, fused inference heads.

- ``PolicyNetwork``: what the agent needs of a network (``ActorCritic``, or a variant's own);
- ``ActorCritic``: encoders (MLP, small CNN for ``(C, H, W)`` grids, embedding for integer
  grids), separate actor/critic MLPs, Discrete / MultiDiscrete / Box action heads;
- ``FusedHeads``: actor+critic as one block-diagonal MLP for rollouts (found by profiling);
- ``obs_spaces`` / ``is_int_space``: the observation space as ``{key: Box}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rewardlab.agents.ppo.config import PPOConfig
from rewardlab.errors import InvalidArgument

__all__ = ["PolicyNetwork", "ActorCritic", "MLP", "FusedHeads", "GridEncoder", "FlattenEncoder", "layer_init",
           "obs_spaces", "is_int_space", "ACTIVATION_FNS"]

ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


class PolicyNetwork(Protocol):
    """What ``PPOAgent`` needs of its network (an ``nn.Module``); a variant brings its own.

    ``obs`` is what ``PPOAgent.preprocess_obs`` returns: a tensor, or a dict of tensors for
    Dict observation spaces (integer spaces as int64, float spaces as float32).
    """

    def forward(self, obs: Any, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π(actions|obs), entropy, V(obs))``, each ``(B,)``: the differentiable training path."""
        ...

    def value(self, obs: Any) -> torch.Tensor:
        """``V(obs)``, ``(B,)``."""
        ...

    def draw_noise(self, shape: tuple[int, ...], gen: torch.Generator | None) -> torch.Tensor:
        """Sampling noise for ``shape`` rows, drawn at once for a whole rollout."""
        ...

    def act(self, obs: Any, gen: torch.Generator | None, deterministic: bool = False, heads: Any = None,
            noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``(action, logprob, value)`` (greedy when ``deterministic``)."""
        ...

    def inference_heads(self) -> Any:
        """A snapshot that speeds up ``act`` until the weights change (or None), passed back as ``heads``."""
        ...


def layer_init(layer: nn.Module, gen: torch.Generator, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights, constant bias (CleanRL/SB3), drawn from our own generator."""
    nn.init.orthogonal_(layer.weight, std, generator=gen)
    nn.init.constant_(layer.bias, bias)
    return layer


class MLP(nn.Module):
    """``Linear -> act -> ... -> Linear`` (no activation after the output layer).

    ``forward`` calls ``F.linear`` on the layers' parameters instead of calling each layer
    module: with 64-wide layers the per-module call overhead is a large share of a step.
    """

    def __init__(self, sizes: list[int], out_dim: int, activation: str, gen: torch.Generator, out_std: float):
        super().__init__()
        self.hidden = nn.ModuleList(
            layer_init(nn.Linear(a, b), gen) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.out = layer_init(nn.Linear(sizes[-1], out_dim), gen, std=out_std)
        self.act = ACTIVATION_FNS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.act(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, self.out.weight, self.out.bias)


class FusedHeads:
    """Inference-only snapshot of the actor and critic MLPs as one block-diagonal MLP.

    Both MLPs read the same features, so layer 1 stacks their weights and later layers use
    ``block_diag(actor_k, critic_k)``: one ``F.linear`` per layer evaluates both networks
    (the zero blocks add nothing). Halves the per-step op count of rollouts; take a new
    snapshot after every update.
    """

    def __init__(self, actor: MLP, critic: MLP):
        with torch.no_grad():
            pairs = list(zip([*actor.hidden, actor.out], [*critic.hidden, critic.out], strict=True))
            self.layers = [
                (torch.cat([a.weight, c.weight]) if i == 0 else torch.block_diag(a.weight, c.weight),
                 torch.cat([a.bias, c.bias]))
                for i, (a, c) in enumerate(pairs)
            ]
        self.act, self.n_out = actor.act, actor.out.out_features

    def __call__(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(actor output, value)`` of a batch of features."""
        x = features
        for w, b in self.layers[:-1]:
            x = self.act(F.linear(x, w, b))
        out = F.linear(x, *self.layers[-1])
        return out[:, : self.n_out], out[:, self.n_out]


class GridEncoder(nn.Module):
    """Small CNN for ``(C, H, W)`` grids (3x3 convs, same padding, ReLU) + a linear layer.

    With ``num_embeddings`` the input is an integer ``(H, W)`` grid (e.g. glyph ids) that is
    embedded to ``embed_dim`` channels first.
    """

    def __init__(self, shape: tuple[int, ...], cfg: PPOConfig, gen: torch.Generator, num_embeddings: int = 0):
        super().__init__()
        self.embed = None
        if num_embeddings:
            self.embed = nn.Embedding(num_embeddings, cfg.embed_dim)
            nn.init.normal_(self.embed.weight, 0.0, 1.0, generator=gen)
            c, h, w = cfg.embed_dim, shape[0], shape[1]
        else:
            c, h, w = shape
        convs: list[nn.Module] = []
        for out in cfg.cnn_channels:
            convs += [layer_init(nn.Conv2d(c, out, 3, padding=1), gen), nn.ReLU()]
            c = out
        self.net = nn.Sequential(
            *convs, nn.Flatten(), layer_init(nn.Linear(c * h * w, cfg.cnn_features), gen), nn.ReLU()
        )
        self.out_dim = cfg.cnn_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            x = self.embed(x).permute(0, 3, 1, 2)
        return self.net(x)


class FlattenEncoder(nn.Module):
    """Flatten to ``(B, prod(shape))`` as float (SB3's ``FlattenExtractor``)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.out_dim = int(np.prod(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        return x if x.is_floating_point() else x.float()


def obs_spaces(space: gym.Space) -> dict[str, gym.spaces.Box]:
    """The observation space as ``{key: Box}`` (a Box is the single key ``""``)."""
    spaces = dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {"": space}
    for key, sub in spaces.items():
        if not isinstance(sub, gym.spaces.Box):
            where = f" (key {key!r})" if key else ""
            raise InvalidArgument(
                f"PPO supports Box and Dict-of-Box observations; got {type(sub).__name__}{where}"
            )
    return spaces


def is_int_space(space: gym.spaces.Box) -> bool:
    return np.issubdtype(space.dtype, np.integer)


def _make_encoder(space: gym.spaces.Box, cfg: PPOConfig, gen: torch.Generator) -> nn.Module:
    if cfg.encoder == "auto":
        if len(space.shape) == 3 and not is_int_space(space):
            return GridEncoder(space.shape, cfg, gen)
        if len(space.shape) == 2 and is_int_space(space):
            high = int(np.max(space.high))
            if int(np.min(space.low)) < 0 or high > 1_000_000:
                raise InvalidArgument(f"integer grid observations need ids in [0, 1e6]; got bounds "
                                      f"[{int(np.min(space.low))}, {high}]")
            return GridEncoder(space.shape, cfg, gen, num_embeddings=high + 1)
    return FlattenEncoder(space.shape)


class ActorCritic(nn.Module):
    """Encoders (shared), then separate actor and critic MLPs; Discrete/MultiDiscrete/Box heads.

    ``forward(obs, actions) -> (logprob, entropy, value)`` is the differentiable training
    path (also what ``PPOAgent.functional`` calls); ``act`` samples during rollouts.
    ``obs`` is a tensor for Box spaces and a dict of tensors for Dict spaces.
    """

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, cfg: PPOConfig, gen: torch.Generator):
        super().__init__()
        self.keys = list(obs_spaces(obs_space))
        self.encoders = nn.ModuleDict(
            {f"k{i}": _make_encoder(s, cfg, gen) for i, s in enumerate(obs_spaces(obs_space).values())}
        )
        hidden = [sum(e.out_dim for e in self.encoders.values()), *cfg.hidden_sizes]

        if isinstance(action_space, gym.spaces.Discrete):
            self.kind, self.nvec, out = "discrete", [int(action_space.n)], int(action_space.n)
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            if action_space.nvec.ndim != 1:
                raise InvalidArgument(
                    f"PPO supports 1-D MultiDiscrete actions; got nvec shape {action_space.nvec.shape}"
                )
            self.kind, self.nvec = "multidiscrete", [int(n) for n in action_space.nvec]
            out = sum(self.nvec)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.kind, self.nvec, out = "box", [], int(action_space.shape[0])
            self.log_std = nn.Parameter(torch.zeros(out))
        else:
            raise InvalidArgument(
                f"PPO supports Discrete, MultiDiscrete and 1-D Box actions; got {action_space}"
            )
        self.actor = MLP(hidden, out, cfg.activation, gen, out_std=0.01)
        self.critic = MLP(hidden, 1, cfg.activation, gen, out_std=1.0)
        self._uniform_split = len(set(self.nvec)) == 1

    def inference_heads(self) -> FusedHeads:
        """The fused actor/critic snapshot of the current weights (take a new one after an update)."""
        return FusedHeads(self.actor, self.critic)

    # -- shared pieces -------------------------------------------------------------------
    def features(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(obs, dict):
            encoder = self.encoders["k0"]
            if isinstance(encoder, FlattenEncoder) and obs.dim() == 2 and obs.is_floating_point():
                return obs  # already flat: skip a module call per rollout step
            return encoder(obs)
        return torch.cat([self.encoders[f"k{i}"](obs[k]) for i, k in enumerate(self.keys)], 1)

    def _split_logits(self, logits: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self._uniform_split:  # one reshape instead of a Python loop over dimensions
            return logits.reshape(logits.shape[0], len(self.nvec), self.nvec[0])
        return torch.split(logits, self.nvec, dim=1)

    def value(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)

    # -- training path -------------------------------------------------------------------
    def forward(
        self, obs: torch.Tensor | dict[str, torch.Tensor], actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π(actions|obs), entropy, V(obs))``, each of shape ``(B,)``."""
        f = self.features(obs)
        out = self.actor(f)
        value = self.critic(f).squeeze(-1)
        if self.kind == "box":
            log_std = self.log_std.expand_as(out)
            z = (actions - out) / log_std.exp()
            logprob = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
            entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1)
            return logprob, entropy, value
        if self.kind == "discrete":
            logp = out.log_softmax(-1)
            logprob = logp.gather(1, actions.long().unsqueeze(1)).squeeze(1)
            return logprob, -(logp.exp() * logp).sum(-1), value
        parts = self._split_logits(out)
        acts = actions.long()
        if isinstance(parts, torch.Tensor):
            logp = parts.log_softmax(-1)
            logprob = logp.gather(2, acts.unsqueeze(2)).squeeze(2).sum(1)
            return logprob, -(logp.exp() * logp).sum((1, 2)), value
        logprob = torch.zeros_like(value)
        entropy = torch.zeros_like(value)
        for i, lg in enumerate(parts):
            logp = lg.log_softmax(-1)
            logprob = logprob + logp.gather(1, acts[:, i : i + 1]).squeeze(1)
            entropy = entropy - (logp.exp() * logp).sum(-1)
        return logprob, entropy, value

    # -- rollout path --------------------------------------------------------------------
    def draw_noise(self, shape: tuple[int, ...], gen: torch.Generator | None) -> torch.Tensor:
        """Sampling noise for ``shape + (actor output width,)``: Gumbel(0, 1) for categorical
        heads (``argmax(logits + g)`` samples the softmax), N(0, 1) for Gaussian heads.
        A rollout draws all of it in one call instead of a few ops per step."""
        size = (*shape, self.actor.out.out_features)
        if self.kind == "box":
            return torch.randn(size, generator=gen)
        return torch.empty(size).exponential_(generator=gen).log_().neg_()

    def act(
        self,
        obs: torch.Tensor | dict[str, torch.Tensor],
        gen: torch.Generator | None,
        deterministic: bool = False,
        heads: FusedHeads | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``(action, logprob, value)`` without building distribution objects.

        Categorical heads sample with the Gumbel-max trick, Gaussian heads as
        ``mean + std·N(0, 1)``; ``noise`` (from ``draw_noise``) or fresh draws from ``gen``.
        ``heads`` (a current ``FusedHeads`` snapshot) evaluates actor and critic together.
        """
        f = self.features(obs)
        out, value = (self.actor(f), self.critic(f).squeeze(-1)) if heads is None else heads(f)
        if not deterministic and noise is None:
            noise = self.draw_noise((out.shape[0],), gen)
        if self.kind == "box":
            std = self.log_std.exp()
            if deterministic:
                action = out
                logprob = (-self.log_std - 0.5 * math.log(2 * math.pi)).sum().expand(out.shape[0])
            else:
                action = out + std * noise
                logprob = (-0.5 * noise.pow(2) - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
            return action, logprob, value
        if self.kind == "discrete":
            logp = out.log_softmax(-1)
            action = (logp if deterministic else logp + noise).argmax(-1, keepdim=True)
            return action.squeeze(1), logp.gather(1, action).squeeze(1), value
        parts = self._split_logits(out)
        noises = None if deterministic else self._split_logits(noise)
        if isinstance(parts, torch.Tensor):
            logp = parts.log_softmax(-1)
            action = (logp if deterministic else logp + noises).argmax(-1)
            return action, logp.gather(2, action.unsqueeze(2)).squeeze(2).sum(1), value
        acts, logprob = [], torch.zeros_like(value)
        for i, lg in enumerate(parts):
            logp = lg.log_softmax(-1)
            a = (logp if deterministic else logp + noises[i]).argmax(-1)
            acts.append(a)
            logprob = logprob + logp.gather(1, a.unsqueeze(1)).squeeze(1)
        return torch.stack(acts, 1), logprob, value


