"""Evaluation on the *unshaped* env: true return, success rate and episode length."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

__all__ = ["EvalResult", "evaluate"]


@dataclass
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray
    successes: np.ndarray  # NaN where the env does not report success

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float | None:
        known = self.successes[~np.isnan(self.successes)]
        return float(known.mean()) if len(known) else None


def evaluate(policy, venv: gym.vector.VectorEnv, episodes: int, *, seed: int, deterministic: bool = True,
             max_steps: int = 1_000_000) -> EvalResult:
    """Run ``episodes`` episodes of ``policy(obs, deterministic)`` on a SAME_STEP vector env.

    Each sub-env runs a fixed share of the episodes (so short episodes are not over-counted),
    and the env is reset with ``seed`` every call, so evaluations see the same episodes.
    """
    n = venv.num_envs
    target = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    done_count = np.zeros(n, np.int64)
    ret = np.zeros(n)
    length = np.zeros(n, np.int64)
    returns, lengths, successes = [], [], []
    obs, _ = venv.reset(seed=seed)
    for _ in range(max_steps):
        if (done_count >= target).all():
            break
        actions = policy(obs, deterministic)
        obs, reward, term, trunc, info = venv.step(actions)
        ret += np.asarray(reward, np.float64)
        length += 1
        for i in np.flatnonzero(np.logical_or(term, trunc)):
            if done_count[i] < target[i]:
                returns.append(ret[i])
                lengths.append(length[i])
                fin = info.get("final_info", {})
                ok = fin.get("is_success")
                has = ok is not None and fin.get("_is_success", np.ones(n, bool))[i]
                successes.append(float(ok[i]) if has else np.nan)
                done_count[i] += 1
            ret[i], length[i] = 0.0, 0
    return EvalResult(np.asarray(returns), np.asarray(lengths), np.asarray(successes, np.float64))
