"""``PPOAgent``, the one PPO core every policy-gradient agent of rewardlab runs on, and ``make_ppo``.

Reads top to bottom like CleanRL's ``ppo.py``: collect a rollout, compute advantages, call the
reward terms' hooks, update, log. Variants (``pg``, ``text_ppo``) subclass it and change only
its declared extension points:

- ``update_rule``: how a rollout batch changes the weights (``update.UpdateRule``);
- ``build_policy()``: the network (a ``networks.PolicyNetwork``);
- ``collect_rollout()`` / ``compute_advantages()`` / ``update_policy()``: what one iteration
  collects, its advantages and which rows the update sees (the episodic ``rloo`` variant,
  ``rewardlab.agents.rloo``: whole episodes in groups, group-relative advantages, no GAE);
- ``label`` / ``checkpoint_file``: the name in messages and the checkpoint file;
- ``honoured_hooks``: the reward-term hooks it calls (all of ``AGENT_HOOKS``; the agents'
  manifest declares the same set as data, and a test keeps the two equal).

The learn loop, rollouts, advantages, observation/reward normalisation, thread handling,
checkpoints and the term-hook calls are the same for every variant.

Truncation is never merged into termination: a truncated step's reward gets
``+ γ·V(final_obs)`` (read from ``info["final_obs"]``), a terminated step's does not.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn

from rewardlab.agents.params import is_int, is_num, params_from_dict
from rewardlab.agents.ppo.buffer import Rollout, RolloutBuffer
from rewardlab.agents.ppo.checkpoint import check_same_config, load_checkpoint, save_checkpoint
from rewardlab.agents.ppo.config import PPOConfig
from rewardlab.agents.ppo.losses import RunningMeanStd, compute_gae
from rewardlab.agents.ppo.networks import ActorCritic, is_int_space
from rewardlab.agents.ppo.update import ClippedSurrogateUpdate, FlatAdam, UpdateRule, flatten_parameters
from rewardlab.core.terms import AGENT_HOOKS, Term, term_agent_hooks
from rewardlab.core.threads import torch_threads
from rewardlab.errors import InvalidArgument

__all__ = ["PPOAgent", "make_ppo", "torch_threads"]


class PPOAgent:
    """PPO on a ``SAME_STEP``-autoreset vector env (usually a ``ShapedVectorEnv``).

    Every ``learn()`` call starts fresh episodes (the venv is reset with a seed drawn from
    the agent's own RNG, which checkpoints save), so a run resumed with ``load()`` continues
    exactly like an uninterrupted one split at the same ``learn()`` boundary.

    Reward-term hooks (declared on ``rewardlab.core.Term``; called on the ``Term`` subclasses in
    ``venv.stack.terms`` that override them):

    - ``term.extra_advantages(rollout) -> (n_steps, n_envs)`` is added to the GAE advantages,
      weighted by ``extra_advantage_coef``, before normalisation;
    - ``term.update(rollout) -> dict`` is called after every policy update; its values are
      logged as ``reward_terms/<term>/<key>``;
    - ``term.discount`` (a float in (0, 1] or None) replaces the agent's ``gamma`` in GAE for
      each iteration (a learned discount, e.g. BARFI's γ_φ); see ``discount``. Reward
      normalisation keeps the agent's ``gamma``;
    - ``term.bind_agent(agent)`` is called once, here, so a term can differentiate through
      policy updates (``functional``, ``preprocess_obs``, ``cfg``);
    - ``term.state_dict()`` / ``term.load_state_dict(state)`` are saved and restored with the
      agent's checkpoint, so learned reward parameters resume too.

    >>> import rewardlab
    >>> venv = rewardlab.make_vec("CartPole-v1", 2, reward=["env"])
    >>> agent = make_ppo(venv, gamma=0.99, seed=0, params={"n_steps": 8})
    >>> agent.learn(32, callback=None)
    >>> agent.num_timesteps, agent.act(venv.reset(seed=1)[0]).shape
    (32, (2,))
    """

    label: ClassVar[str] = "PPO"
    """the agent's name in error messages"""
    checkpoint_file: ClassVar[str] = "ppo.pt"
    """the file ``save`` writes into the checkpoint directory"""
    update_rule: ClassVar[type[UpdateRule]] = ClippedSurrogateUpdate
    """how a rollout batch changes the weights (one instance per agent)"""
    honoured_hooks: ClassVar[frozenset[str]] = frozenset(AGENT_HOOKS)
    """the reward-term hooks this agent calls"""

    def __init__(self, venv: gym.vector.VectorEnv, cfg: PPOConfig, *, gamma: float, seed: int):
        if not (is_num(gamma) and 0 <= gamma <= 1):
            raise InvalidArgument(f"gamma = {gamma!r} is invalid; allowed: a number in [0, 1]")
        mode = venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.SAME_STEP:
            # Truncation bootstrapping reads info["final_obs"], which only SAME_STEP provides.
            raise InvalidArgument(f"{self.label} needs a SAME_STEP autoreset vector env; got {mode}")
        self.venv, self.cfg, self.gamma, self.seed = venv, cfg, float(gamma), int(seed)
        self.num_envs = venv.num_envs
        self.batch_size = cfg.n_steps * self.num_envs
        if self.batch_size < cfg.n_minibatches:
            raise InvalidArgument(f"{type(cfg).__name__}.n_minibatches = {cfg.n_minibatches} is invalid; allowed: "
                                  f"at most n_steps * num_envs = {self.batch_size}")
        self.minibatch_size = self.batch_size // cfg.n_minibatches
        self.obs_space, self.action_space = venv.single_observation_space, venv.single_action_space

        # Own RNGs: torch for init/sampling/minibatches, numpy for env seeds. Global RNGs untouched.
        self.gen = torch.Generator().manual_seed(self.seed)
        self.np_rng = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]):  # nn.Linear() draws its throw-away init globally
            self.policy = self.build_policy()
        self.flat_param = flatten_parameters(list(self.policy.parameters()))
        self.optimizer = FlatAdam(self.flat_param, lr=cfg.learning_rate, eps=1e-5)
        self._update_step = self.update_rule()
        self._heads: Any = None  # inference snapshot of the current weights (policy.inference_heads())
        self.buffer = RolloutBuffer(cfg.n_steps, self.num_envs, self.obs_space, self.action_space, cfg.norm_obs)

        self.float_keys = [k for k, s in self.buffer.spaces.items() if not is_int_space(s)]
        self.obs_rms = {k: RunningMeanStd(self.buffer.spaces[k].shape) for k in self.float_keys}
        self.ret_rms = RunningMeanStd(())
        self._ret = np.zeros(self.num_envs, np.float64)  # running discounted return (reward norm)
        if isinstance(self.action_space, gym.spaces.Box):
            self._low, self._high = self.action_space.low, self.action_space.high
        self.num_timesteps = 0
        self._next_obs: Any = None
        # The terms' hooks, read once: (term, the agent hooks it overrides).
        self._term_hooks: list[tuple[Term, frozenset[str]]] = [
            (t, hooks) for t in self._terms() if (hooks := term_agent_hooks(t))]
        for term in self._hooked("bind_agent"):
            term.bind_agent(self)

    # -- extension points -------------------------------------------------------------------
    def build_policy(self) -> nn.Module:
        """The network (a ``PolicyNetwork``); called once, inside a forked global torch RNG.
        Draw initial weights from ``self.gen``."""
        return ActorCritic(self.obs_space, self.action_space, self.cfg, self.gen)

    # -- reward-term hooks ------------------------------------------------------------------
    def _terms(self) -> list[Any]:
        return list(getattr(getattr(self.venv, "stack", None), "terms", []))

    def _hooked(self, hook: str) -> list[Any]:
        """The terms that override ``hook``, in stack order."""
        return [t for t, hooks in self._term_hooks if hook in hooks]

    @property
    def discount(self) -> float:
        """The discount of the next advantage computation: ``gamma``, unless a reward term
        exposes a non-None ``discount`` (all such terms must agree).

        >>> import rewardlab
        >>> from rewardlab.shaping.basic import EnvReward
        >>> class Discounted(EnvReward):
        ...     discount = 0.9
        >>> venv = rewardlab.make_vec("CartPole-v1", 1, reward=rewardlab.RewardStack([Discounted()]))
        >>> agent = make_ppo(venv, gamma=0.99, seed=0, params={})
        >>> agent.gamma, agent.discount
        (0.99, 0.9)
        """
        found = {t.name: t.discount for t in self._hooked("discount")}
        found = {k: v for k, v in found.items() if v is not None}
        if not found:
            return self.gamma
        values = set(found.values())
        if len(values) > 1:
            raise InvalidArgument(f"reward terms expose different discounts {found}; at most one value is allowed")
        value = values.pop()
        if not (is_num(value) and 0 < value <= 1):
            raise InvalidArgument(f"reward term discount {found} is invalid; allowed: a number in (0, 1]")
        return float(value)

        return float(value)

    # -- observation / reward preprocessing ------------------------------------------------
    def _obs_dict(self, obs: Any) -> dict[str, np.ndarray]:
        return obs if isinstance(obs, dict) else {"": obs}

    def _normalise_into(self, key: str, x: np.ndarray, out: np.ndarray) -> None:
        rms = self.obs_rms[key]
        np.subtract(x, rms.mean, out=out, casting="unsafe")
        np.divide(out, np.sqrt(rms.var + 1e-8), out=out, casting="unsafe")
        np.clip(out, -self.cfg.clip_obs, self.cfg.clip_obs, out=out)

    def preprocess_obs(self, obs: Any) -> torch.Tensor | dict[str, torch.Tensor]:
        """Batched venv observations → what the network takes (normalised with the current
        statistics, not updating them). Use it before ``functional``'s function."""
        d = self._obs_dict(obs)
        out: dict[str, torch.Tensor] = {}
        for key, space in self.buffer.spaces.items():
            x = np.asarray(d[key])
            if is_int_space(space):
                out[key] = torch.as_tensor(x, dtype=torch.int64)
                continue
            arr = np.empty(x.shape, np.float32)
            if self.cfg.norm_obs:
                self._normalise_into(key, x, arr)
            else:
                arr[...] = x
            out[key] = torch.from_numpy(arr)
        return out if self.buffer.is_dict else out[""]

    def _store_obs(self, t: int, obs: Any) -> None:
        d = self._obs_dict(obs)
        buf = self.buffer
        for key in buf.spaces:
            if self.cfg.norm_obs and key in self.obs_rms:
                buf.raw_obs_np[key][t] = d[key]
                self.obs_rms[key].update(np.asarray(d[key], np.float64))
                self._normalise_into(key, d[key], buf.obs_np[key][t])
            else:
                buf.obs_np[key][t] = d[key]

    def _final_obs(self, info: dict[str, Any], rows: np.ndarray) -> Any:
        finals = info["final_obs"]
        if self.buffer.is_dict:
            return {k: np.stack([finals[i][k] for i in rows]) for k in self.buffer.spaces}
        return np.stack([finals[i] for i in rows])

    def _normalise_reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        # SB3 VecNormalize: scale by the std of the running discounted return, never shift.
        self._ret = self._ret * self.gamma + reward
        self.ret_rms.update(self._ret)
        self._ret[done] = 0.0
        scaled = reward / np.sqrt(self.ret_rms.var + 1e-8)
        return np.clip(scaled, -self.cfg.clip_reward, self.cfg.clip_reward)

    def _env_action(self, action: torch.Tensor) -> np.ndarray:
        a = action.numpy()
        return np.clip(a, self._low, self._high) if isinstance(self.action_space, gym.spaces.Box) else a

    # -- rollout ---------------------------------------------------------------------------
    def _inference_heads(self) -> Any:
        """The policy's inference snapshot of the current weights (rebuilt after changes)."""
        if self._heads is None:
            self._heads = self.policy.inference_heads()
        return self._heads

    def act_and_store(self, t: int, heads: Any, noise: Any) -> torch.Tensor:
        """Store step ``t``'s observation, sample the policy on it and store action, log-prob and
        value in the buffer (inside the caller's ``torch.inference_mode``); returns the action."""
        buf, bnp = self.buffer, self.buffer.np
        self._store_obs(t, self._next_obs)
        action, logprob, value = self.policy.act(buf.obs_at(t), self.gen, heads=heads, noise=noise)
        bnp["actions"][t] = action.numpy()
        bnp["logprobs"][t] = logprob.numpy()
        bnp["values"][t] = value.numpy()
        return action

    def collect_rollout(self) -> None:
        """Fill the buffer with the next ``n_steps`` steps of every env (episodes continue across calls)."""
        cfg, bnp = self.cfg, self.buffer.np
        bnp["final_values"].fill(0.0)
        heads = self._inference_heads()
        with torch.inference_mode():  # the buffers are written through their NumPy views
            noise = self.policy.draw_noise((cfg.n_steps, self.num_envs), self.gen)
            for t in range(cfg.n_steps):
                action = self.act_and_store(t, heads, noise[t])
                self._next_obs, reward, term, trunc, info = self.venv.step(self._env_action(action))
                bnp["rewards"][t] = reward
                bnp["terminated"][t] = term
                bnp["truncated"][t] = trunc
                if cfg.norm_reward:
                    bnp["train_rewards"][t] = self._normalise_reward(reward, np.logical_or(term, trunc))
                else:
                    bnp["train_rewards"][t] = reward
                # Truncated rows: the returned obs is the next episode's first; the true final
                # obs is in info["final_obs"] and its value bootstraps the reward (compute_gae).
                # Terminated rows get no bootstrap.
                if trunc.any():
                    rows = np.flatnonzero(trunc)
                    final = self.preprocess_obs(self._final_obs(info, rows))
                    bnp["final_values"][t, rows] = self.policy.value(final).numpy()
        self.num_timesteps += self.batch_size

    # -- update ----------------------------------------------------------------------------
    def compute_advantages(self) -> tuple[torch.Tensor, torch.Tensor, Rollout | None]:
        """GAE (+ terms' extra advantages) of the rollout in the buffer, and its ``Rollout``."""
        buf = self.buffer
        with torch.inference_mode():
            last_value = self.policy.value(self.preprocess_obs(self._next_obs))
        gamma = self.discount
        advantages, returns = compute_gae(
            buf.train_rewards, buf.values, buf.terminated, buf.truncated, buf.final_values,
            last_value, gamma, self.cfg.gae_lambda,
        )
        advantages, returns = advantages.clone(), returns.clone()  # normal tensors (not inference)
        terms = self._terms()
        rollout = buf.rollout(advantages, returns, last_value, gamma) if terms else None
        extra = self._extra_advantages(rollout) if rollout is not None else None
        if extra is not None:
            advantages += self.cfg.extra_advantage_coef * torch.from_numpy(extra)
            rollout = buf.rollout(advantages, returns, last_value, gamma)
        return advantages, returns, rollout

    def _extra_advantages(self, rollout: Rollout) -> np.ndarray | None:
        """The sum of the terms' ``extra_advantages(rollout)``, shaped like ``rollout.rewards``
        (None when no term overrides the hook); wrong shapes or non-finite values are refused."""
        extra_terms = self._hooked("extra_advantages")
        if not extra_terms:
            return None
        extra = np.zeros(np.shape(rollout.rewards), np.float32)
        for term in extra_terms:
            e = np.asarray(term.extra_advantages(rollout), np.float32)
            if e.shape != extra.shape or not np.isfinite(e).all():
                raise InvalidArgument(
                    f"reward term {term.name!r}: extra_advantages must return finite values of shape "
                    f"{extra.shape} (n_steps, n_envs); got shape {e.shape}"
                )
            extra += e
        return extra

    def update_policy(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
        """One ``update_rule`` step on the rollout in the buffer."""
        buf = self.buffer
        batch = {  # flattened (n_steps * n_envs, ...) views
            "obs": buf.flat_obs(),
            "actions": buf.actions.reshape(self.batch_size, *buf.actions.shape[2:]),
            "logprobs": buf.logprobs.reshape(-1),
            "values": buf.values.reshape(-1),
            "advantages": advantages.reshape(-1),
            "returns": returns.reshape(-1),
        }
        metrics = self._update_step(self.policy, self.optimizer, batch, self.cfg, self.gen)
        self._heads = None  # weights changed
        return metrics

    # -- public API ------------------------------------------------------------------------
    def learn(self, total_steps: int, callback: Any = None) -> None:
        """Train until ``num_timesteps >= total_steps``; ``callback.on_iteration`` after each
        update (returning False stops). Continues from a loaded checkpoint."""
        if not is_int(total_steps) or total_steps < 0:
            raise InvalidArgument(f"total_steps = {total_steps!r} is invalid; allowed: an integer >= 0")
        cfg = self.cfg
        with torch_threads(cfg.torch_threads):
            self._next_obs, _ = self.venv.reset(seed=int(self.np_rng.integers(2**31 - 1)))
            self._ret[:] = 0.0
            start_steps, start_time = self.num_timesteps, time.perf_counter()
            while self.num_timesteps < total_steps:
                if cfg.anneal_lr:
                    self.optimizer.lr = cfg.learning_rate * max(0.0, 1.0 - self.num_timesteps / total_steps)
                self.collect_rollout()
                advantages, returns, rollout = self.compute_advantages()
                metrics = self.update_policy(advantages, returns)
                metrics["charts/learning_rate"] = float(self.optimizer.lr)
                if rollout is not None:
                    for term in self._hooked("update"):
                        for key, val in (term.update(rollout) or {}).items():
                            metrics[f"reward_terms/{term.name}/{key}"] = float(val)
                elapsed = time.perf_counter() - start_time
                metrics["charts/SPS"] = (self.num_timesteps - start_steps) / max(elapsed, 1e-9)
                if callback is not None and callback.on_iteration(self.num_timesteps, metrics) is False:
                    break

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Batched actions for batched venv observations (Box actions clipped to bounds)."""
        with torch_threads(self.cfg.torch_threads), torch.inference_mode():
            action, _, _ = self.policy.act(self.preprocess_obs(obs), self.gen, deterministic, self._inference_heads())
        return self._env_action(action).copy()

    def functional(
        self,
    ) -> tuple[dict[str, torch.Tensor], Callable[..., tuple[torch.Tensor, torch.Tensor]]]:
        """``(params, policy_logprob_value)`` for differentiating through policy updates.

        ``params`` are detached copies of the network parameters with ``requires_grad``;
        ``policy_logprob_value(params, obs, actions) -> (logprob, value)`` evaluates the
        network with ``params`` via ``torch.func.functional_call``. ``obs`` is what the network
        takes (``preprocess_obs`` of venv observations). A bilevel method can write one SGD
        step ``p' = p - lr * grad(loss(p, reward_params), p, create_graph=True)`` and
        differentiate an outer objective of ``p'`` w.r.t. its reward parameters.
        """
        params = {k: v.detach().clone().requires_grad_(True) for k, v in self.policy.named_parameters()}
        policy = self.policy

        def policy_logprob_value(
            params: dict[str, torch.Tensor], obs: Any, actions: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            logprob, _, value = torch.func.functional_call(policy, params, (obs, actions))
            return logprob, value

        return params, policy_logprob_value

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.cfg),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_rms": {k: r.state_dict() for k, r in self.obs_rms.items()},
            "ret_rms": self.ret_rms.state_dict(),
            "torch_rng": self.gen.get_state(),
            "numpy_rng": self.np_rng.bit_generator.state,
            "num_timesteps": self.num_timesteps,
            # Learnable reward terms with state (e.g. BARFI's φ) resume with the agent.
            "terms": {t.name: t.state_dict() for t in self._hooked("state_dict")},
        }

    def save(self, path: Path | str) -> None:
        """Weights, optimiser, normalisers, RNG states and step count into the directory
        ``path`` (created if missing; the runner adds its own files next to ours)."""
        save_checkpoint(self.state_dict(), path, self.checkpoint_file)

    def load(self, path: Path | str) -> None:
        """Restore a ``save(path)`` checkpoint; the next ``learn`` continues from its step."""
        state = load_checkpoint(path, self.checkpoint_file, self.label)
        check_same_config(state["config"], dataclasses.asdict(self.cfg), path, self.label)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        for k, r in self.obs_rms.items():
            r.load_state_dict(state["obs_rms"][k])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.gen.set_state(state["torch_rng"])
        self.np_rng.bit_generator.state = state["numpy_rng"]
        self.num_timesteps = int(state["num_timesteps"])
        for term in self._hooked("state_dict"):
            if term.name in state.get("terms", {}):
                term.load_state_dict(state["terms"][term.name])
        self._heads = None


def make_ppo(venv: gym.vector.VectorEnv, *, gamma: float, seed: int, params: dict[str, Any]) -> PPOAgent:
    """The ``ppo`` agent factory: ``params`` are ``PPOConfig`` fields.

    >>> import rewardlab
    >>> make_ppo(rewardlab.make_vec("CartPole-v1", 1), gamma=0.99, seed=0, params={"lr": 1e-3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: agent.params.lr: unknown parameter for agent 'ppo'. Valid: n_steps, n_epochs, ...
    """
    return PPOAgent(venv, params_from_dict(PPOConfig, params, agent="ppo"), gamma=gamma, seed=seed)
