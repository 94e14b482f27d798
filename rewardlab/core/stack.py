"""``RewardStack``: the weighted sum of named reward terms, validated every step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument, TermOutputError

__all__ = ["RewardStack"]


class RewardStack:
    """A weighted sum of reward terms with per-term values and an optional clip.

    ``stack(t)`` returns ``(total, contributions)`` where ``contributions[name]`` is the
    term's value times its weight, so the contributions add up to the total (before the
    optional clip). Every term output is checked: shape ``(num_envs,)`` and finite, or a
    ``TermOutputError`` names the term.

    >>> from rewardlab.shaping.basic import EnvReward, StepPenalty
    >>> stack = RewardStack([EnvReward(), StepPenalty(0.1)], weights=[1.0, 2.0])
    >>> t = Transition(None, None, None, np.array([1.0, 0.0]), np.zeros(2, bool), np.zeros(2, bool))
    >>> total, parts = stack(t)
    >>> total, parts["step_penalty"]
    (array([ 0.8, -0.2], dtype=float32), array([-0.2, -0.2], dtype=float32))
    """

    def __init__(
        self,
        terms: Sequence[Any],
        weights: Sequence[float] | None = None,
        clip: tuple[float, float] | None = None,
    ):
        terms = list(terms)
        if not terms:
            raise InvalidArgument("a RewardStack needs at least one term")
        weights = [1.0] * len(terms) if weights is None else [float(w) for w in weights]
        if len(weights) != len(terms):
            raise InvalidArgument(f"got {len(weights)} weights for {len(terms)} terms")
        names = [t.name for t in terms]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            # Names key the logs and info["reward_terms"]; two terms with one name would merge.
            raise InvalidArgument(f"duplicate term names {sorted(dup)}: give each an explicit name ('as:' in YAML)")
        if clip is not None and not clip[0] < clip[1]:
            raise InvalidArgument(f"clip low ({clip[0]}) must be smaller than clip high ({clip[1]})")
        self.terms = terms
        self.weights = np.asarray(weights, np.float32)
        self.clip = clip
        self.num_envs: int | None = None

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    def bind(self, num_envs: int) -> None:
        self.num_envs = num_envs
        for term in self.terms:
            if hasattr(term, "bind"):
                term.bind(num_envs)

    def reset(self, env_ids: np.ndarray) -> None:
        for term in self.terms:
            term.reset(env_ids)

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        for term in self.terms:
            if hasattr(term, "observe_reset"):
                term.observe_reset(obs, info, env_ids)

    @property
    def learnable_terms(self) -> list[Any]:
        return [t for t in self.terms if callable(getattr(t, "update", None))]

    def __call__(self, t: Transition) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = t.num_envs
        total = np.zeros(n, np.float32)
        parts: dict[str, np.ndarray] = {}
        for term, w in zip(self.terms, self.weights, strict=True):
            value = term(t)
            if not isinstance(value, np.ndarray) or value.shape != (n,):
                shape = getattr(value, "shape", type(value).__name__)
                raise TermOutputError(
                    f"reward term {term.name!r} returned shape {shape}; expected ({n},), one value per env"
                )
            contrib = value if w == 1.0 and value.dtype == np.float32 else (value * w).astype(np.float32, copy=False)
            parts[term.name] = contrib
            total += contrib
        if not np.isfinite(total).all():
            # One finiteness check per step; find the culprit only when it fails.
            for name, contrib in parts.items():
                bad = np.flatnonzero(~np.isfinite(contrib))
                if len(bad):
                    raise TermOutputError(
                        f"reward term {name!r} returned {contrib[bad[0]]} for env {int(t.env_ids[bad[0]])}; "
                        "reward values must be finite"
                    )
            raise TermOutputError("the weighted sum of the reward terms overflowed to a non-finite value")
        if self.clip is not None:
            np.clip(total, self.clip[0], self.clip[1], out=total)
        return total, parts

    def __repr__(self) -> str:
        inner = ", ".join(f"{w:g}*{n}" for n, w in zip(self.names, self.weights, strict=True))
        return f"RewardStack({inner}{', clip=' + str(self.clip) if self.clip else ''})"
