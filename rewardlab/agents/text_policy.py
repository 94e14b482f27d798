"""``text_ppo``: a small text policy for ALFWorld-style envs, a variant of the PPO core.

The policy scores each admissible-command slot against the observation and the goal:

- a learned bag-of-words encoder (``EmbeddingBag`` over the env's hashed word ids, mean over
  words) embeds the last feedback, the goal sentence and every command slot;
- the state ``h = MLP([e(obs), e(goal)])``, each slot's score ``MLP([h, e(cmd), h * e(cmd)])``;
- a masked softmax over the slots (``action_mask`` from the env) is the policy, ``MLP(h)`` the
  value.

Only the network is text_ppo's own (``SlotScorer``, wrapped as the core's ``PolicyNetwork`` by
``SlotPolicy``); the learn loop, rollouts, GAE with truncation bootstrapping, the PPO update,
checkpoints, thread handling and every reward-term hook are the PPO core's
(``rewardlab.agents.ppo``), so learnable terms (BARFI, learned ONI variants) learn under it too.

Contents: ``TextPPOConfig`` (defined in ``rewardlab.agents.ppo.config``), ``SlotScorer`` (the
network), ``SlotPolicy``, ``TextPPOAgent`` and ``make_text_ppo``.

>>> import rewardlab
>>> venv = rewardlab.make_vec("alfworld/PickAndPlace-v0", 2, reward=["env"], games_per_type=2, max_steps=5)
>>> agent = make_text_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 4})
>>> agent.learn(8, callback=None)
>>> agent.num_timesteps, agent.act(venv.reset(seed=1)[0]).shape
(8, (2,))
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import torch
from torch import nn

from rewardlab.agents.params import params_from_dict
from rewardlab.agents.ppo.agent import PPOAgent
from rewardlab.agents.ppo.config import TextPPOConfig
from rewardlab.errors import InvalidArgument

__all__ = ["TextPPOConfig", "SlotScorer", "SlotPolicy", "TextPPOAgent", "make_text_ppo", "OBS_KEYS"]

OBS_KEYS = ("obs", "goal", "commands", "action_mask")

class SlotScorer(nn.Module):
    """Bag-of-words encoders, a slot scorer (masked logits) and a value head."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, dim, mode="sum", padding_idx=0)
        self.state = nn.Sequential(nn.Linear(2 * dim, dim), nn.Tanh(), nn.Linear(dim, dim), nn.Tanh())
        self.cmd = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.score = nn.Sequential(nn.Linear(3 * dim, dim), nn.Tanh(), nn.Linear(dim, 1))
        self.value_head = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))

    def _bag(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean embedding of the non-padding ids of each row of ``ids`` (..., L)."""
        shape = ids.shape[:-1]
        flat = ids.reshape(-1, ids.shape[-1])
        count = (flat > 0).sum(-1, keepdim=True).clamp(min=1)
        return (self.embed(flat) / count).reshape(*shape, -1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masked logits (B, K), value (B,))``."""
        h = self.state(torch.cat([self._bag(obs["obs"]), self._bag(obs["goal"])], -1))
        c = self.cmd(self._bag(obs["commands"]))  # (B, K, D)
        hk = h.unsqueeze(1).expand_as(c)
        logits = self.score(torch.cat([hk, c, hk * c], -1)).squeeze(-1)
        logits = logits.masked_fill(obs["action_mask"] == 0, -1e9)
        return logits, self.value_head(h).squeeze(-1)


class SlotPolicy(nn.Module):
    """The core's ``PolicyNetwork`` over a ``SlotScorer``: a categorical over the command slots.

    Sampling uses the Gumbel-max trick like the core's ``ActorCritic`` (masked slots have
    logits of -1e9 and are never drawn).
    """

    def __init__(self, vocab_size: int, dim: int, num_slots: int):
        super().__init__()
        self.scorer = SlotScorer(vocab_size, dim)
        self.num_slots = num_slots

    @staticmethod
    def _log_probs(logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits, -1)

    def forward(self, obs: dict[str, torch.Tensor], actions: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π(actions|obs), entropy, V(obs))``, each ``(B,)``."""
        logits, value = self.scorer(obs)
        logp = self._log_probs(logits)
        entropy = -(logp.exp() * logp.clamp(min=-1e4)).sum(-1)
        return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), entropy, value

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.scorer(obs)[1]

    def draw_noise(self, shape: tuple[int, ...], gen: torch.Generator | None) -> torch.Tensor:
        """Gumbel(0, 1) noise of shape ``shape + (num_slots,)``."""
        return torch.empty((*shape, self.num_slots)).exponential_(generator=gen).log_().neg_()

    def act(self, obs: dict[str, torch.Tensor], gen: torch.Generator | None, deterministic: bool = False,
            heads: Any = None, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``(slot, logprob, value)``; the highest-scoring admissible slot if ``deterministic``."""
        logits, value = self.scorer(obs)
        logp = self._log_probs(logits)
        if deterministic:
            action = logp.argmax(-1)
        else:
            if noise is None:
                noise = self.draw_noise((logp.shape[0],), gen)
            action = (logp + noise).argmax(-1)
        return action, logp.gather(1, action.unsqueeze(1)).squeeze(1), value

    def inference_heads(self) -> None:
        """No inference snapshot: rollouts call the scorer directly."""
        return None


class TextPPOAgent(PPOAgent):
    """The PPO core with a ``SlotPolicy`` network (see the module docstring)."""

    label: ClassVar[str] = "text_ppo"
    checkpoint_file: ClassVar[str] = "text_ppo.pt"

    def build_policy(self) -> nn.Module:
        space = self.obs_space
        if not isinstance(space, gym.spaces.Dict) or any(k not in space.spaces for k in OBS_KEYS):
            raise InvalidArgument(f"text_ppo needs a Dict observation with keys {OBS_KEYS} (alfworld/* envs, "
                                  f"obs_mode='tokens'); got {space}")
        vocab = int(space["commands"].high.max()) + 1
        # Inside the core's forked global RNG: PyTorch's default init of the scorer, seeded by
        # the agent's seed, leaves the caller's global RNG untouched.
        torch.manual_seed(self.seed)
        return SlotPolicy(vocab, self.cfg.embed_dim, space["commands"].shape[0])


def make_text_ppo(venv: gym.vector.VectorEnv, *, gamma: float, seed: int, params: dict[str, Any]) -> TextPPOAgent:
    """The ``text_ppo`` agent factory: ``params`` are ``TextPPOConfig`` fields.

    >>> import rewardlab
    >>> venv = rewardlab.make_vec("CartPole-v1", 1)
    >>> make_text_ppo(venv, gamma=0.99, seed=0, params={"lr": 1e-3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.lr: unknown parameter for agent 'text_ppo'. Valid: n_steps, ...
    """
    return TextPPOAgent(venv, params_from_dict(TextPPOConfig, params, agent="text_ppo"), gamma=gamma, seed=seed)
