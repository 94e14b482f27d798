"""``RewardStack``: the weighted sum of named reward terms, validated every step.

- ``RewardStack``: terms × weights, an optional gate (e.g. G-RA,
  ``rewardlab.shaping.gated.GatedAccumulation``) applied to the weighted contributions
  before they are summed, an optional clip, and an optional group normalisation used by
  group-relative learners (``group_advantages``).
- ``group_advantages``: GDPO (normalise each term within its group, sum with the weights,
  normalise the batch) or GRPO-style ``sum`` (sum, then normalise within the group).
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.core.terms import Term, term_agent_hooks
from rewardlab.core.transition import Transition
from rewardlab.errors import InvalidArgument, TermError, TermOutputError

__all__ = ["RewardStack", "group_advantages", "NORMALIZE_MODES"]

NORMALIZE_MODES = ("gdpo", "sum")
_NO_INTO = Term._evaluate_into  # the base class's: "not fused, call me"


class RewardStack:
    """A weighted sum of reward terms with per-term values and an optional clip.

    ``stack(t)`` returns ``(total, contributions)`` where ``contributions[name]`` is the
    term's value times its weight, so the contributions add up to the total (before the
    optional clip). Every term output is checked: a NumPy array of real numbers (bool, int,
    float; not complex, object or text) of shape ``(num_envs,)``, finite after weighting, or a
    ``TermOutputError`` names the term; a term that raises is re-raised as a ``TermError`` naming
    it and where it raised (the wrappers add the env).

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
        gate: Any = None,
        normalize: str | None = None,
    ):
        terms = list(terms)
        if not terms:
            raise InvalidArgument("a RewardStack needs at least one term")
        weights = [1.0] * len(terms) if weights is None else [float(w) for w in weights]
        if len(weights) != len(terms):
            raise InvalidArgument(f"got {len(weights)} weights for {len(terms)} terms")
        names = [t.name for t in terms]
        with np.errstate(over="ignore"):
            w32 = np.asarray(weights, np.float32)
        for name, w, w_32 in zip(names, weights, w32, strict=True):
            if not np.isfinite(w_32):
                raise InvalidArgument(f"the weight of reward term {name!r} is {w}; weights must be finite float32 "
                                      f"values (|weight| < {float(np.finfo(np.float32).max):.3g})")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            # Names key the logs and info["reward_terms"]; two terms with one name would merge.
            raise InvalidArgument(f"duplicate term names {sorted(dup)}: give each an explicit name ('as:' in YAML)")
        if clip is not None and not clip[0] < clip[1]:
            raise InvalidArgument(f"clip low ({clip[0]}) must be smaller than clip high ({clip[1]})")
        if normalize is not None and normalize not in NORMALIZE_MODES:
            raise InvalidArgument(f"normalize must be one of {NORMALIZE_MODES} or None, got {normalize!r}")
        if gate is not None:
            gate.check(names)
        self.terms = terms
        self.weights = np.asarray(weights, np.float32)
        self.clip = clip
        self.gate = gate
        self.normalize = normalize
        self.num_envs: int | None = None
        self.all_ids: np.ndarray | None = None
        # How each term is evaluated (see ``evaluate``): None = a constant row, True = the term
        # writes into its row, False = called and checked.
        self._plan = []
        for k, (term, w) in enumerate(zip(terms, self.weights, strict=True)):
            if _fusable(term, "_constant") and term._constant() is not None:
                direct = None
            else:
                direct = _fusable(term, "_evaluate_into") and type(term)._evaluate_into is not _NO_INTO
            self._plan.append((k, term, w, direct))
        self._constants: list[tuple[Any, float]] = []
        self._templates: dict[int, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    def bind(self, num_envs: int) -> None:
        """Size per-env state; ``all_ids`` (read-only ``arange(num_envs)``) is the ``env_ids`` a
        wrapper passes for a full batch, which lets the terms use slices instead of gathers."""
        self.num_envs = num_envs
        self.all_ids = np.arange(num_envs)
        self.all_ids.flags.writeable = False
        for term in self.terms:
            if hasattr(term, "bind"):
                term.bind(num_envs)
        if self.gate is not None:
            self.gate.bind(num_envs)

    def reset(self, env_ids: np.ndarray) -> None:
        for term in self.terms:
            term.reset(env_ids)
        if self.gate is not None:
            self.gate.reset(env_ids)

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        for term in self.terms:
            if hasattr(term, "observe_reset"):
                term.observe_reset(obs, info, env_ids)

    @property
    def learnable_terms(self) -> list[Any]:
        """The terms that override the ``update`` hook of ``rewardlab.core.Term``."""
        return [t for t in self.terms if "update" in term_agent_hooks(t)]

    def __call__(self, t: Transition) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        m = self.evaluate(t)
        return m[-1], dict(zip(self.names, m, strict=False))

    def evaluate(self, t: Transition) -> np.ndarray:
        """This step's values as one new float32 matrix of shape ``(len(terms) + 1, num_envs)``:
        row ``k`` is term ``k``'s weighted contribution, the last row the total (clipped if the
        stack clips). ``stack(t)`` is ``(m[-1], {name: m[k]})``; the wrappers accumulate the whole
        matrix into the episode statistics with one addition.

        Fused evaluation: a term that writes its values straight into its row
        (``Term._evaluate_into``, the built-in ``env``, ``step_penalty`` and ``potential``) skips
        the per-term output checks, and a constant term's row (``Term._constant``) is filled
        once and copied with the matrix; the values are the same, bit for bit, as the terms'
        own ``__call__`` (``tests/core/test_fused_stack.py``). Every other term is called and
        checked as before.
        """
        n = t.num_envs
        for term, c in self._constants:
            if term._constant() != c:  # a constant term's value was changed: refill the templates
                self._templates.clear()
                break
        template = self._templates.get(n)
        if template is None:
            template = self._make_template(n)
        m = template.copy()
        full = t.env_ids is self.all_ids
        term = None
        try:
            for k, term, w, direct in self._plan:
                if direct is None:  # constant: already in the template
                    continue
                row = m[k]
                if direct and term._evaluate_into(t, row, full):
                    if w != 1.0:
                        row *= w
                    continue
                value = term(t)
                if not isinstance(value, np.ndarray) or value.shape != (n,):
                    shape = getattr(value, "shape", type(value).__name__)
                    raise TermOutputError(
                        f"reward term {term.name!r} returned shape {shape}; expected ({n},), one value per env"
                    )
                if value.dtype.kind not in "biuf":  # complex would be cut to its real part, text/objects fail later
                    raise TermOutputError(f"reward term {term.name!r} returned values of dtype {value.dtype}; "
                                          "expected real numbers (bool, int or float; float32 preferred)")
                if w == 1.0:
                    row[...] = value  # a cast to float32, as value.astype(np.float32)
                else:
                    np.multiply(value, w, out=row)  # (value * w).astype(np.float32): same loop, then the cast
        except (TermError, TermOutputError):
            raise
        except Exception as e:
            raise TermError(f"reward term {term.name!r} raised {type(e).__name__}: {e}{_raised_at(e)}") from e
        parts = m[:-1]
        total = m[-1]
        if self.gate is not None:
            # The gate sees the weighted contributions and returns what counts; the parts
            # still sum to the total.
            rows = list(parts)
            gated = self.gate.apply(dict(zip(self.names, rows, strict=True)), t)
            for k, name in enumerate(self.names):
                if gated[name] is not rows[k]:
                    rows[k][...] = gated[name]
        # total = ((0 + part_0) + part_1) + ...: float32, in term order (the template's total row is 0).
        np.add.reduce(parts, axis=0, out=total, initial=0.0)
        if not math.isfinite(np.add.reduce(total)) and not np.isfinite(total).all():
            # One finiteness check per step (a non-finite value makes the sum non-finite; a sum
            # that overflowed is checked value by value); find the culprit only when it fails.
            for k, name in enumerate(self.names):
                bad = np.flatnonzero(~np.isfinite(parts[k]))
                if len(bad):
                    raise TermOutputError(
                        f"reward term {name!r} returned {parts[k][bad[0]]} for env {int(t.env_ids[bad[0]])}; "
                        "reward values must be finite"
                    )
            raise TermOutputError("the weighted sum of the reward terms overflowed to a non-finite value")
        if self.clip is not None:
            np.clip(total, self.clip[0], self.clip[1], out=total)
        return m

    def _make_template(self, n: int) -> np.ndarray:
        """A zero matrix with the constant terms' weighted rows filled in (as ``np.full``, then the weight)."""
        template = np.zeros((len(self.terms) + 1, n), np.float32)
        self._constants = []
        for k, term, w, direct in self._plan:
            if direct is None:
                c = term._constant()
                template[k] = np.float32(c)
                if w != 1.0:
                    template[k] *= w
                self._constants.append((term, c))
        self._templates[n] = template
        return template

    def group_advantages(self, term_returns: dict[str, np.ndarray], mode: str | None = None) -> np.ndarray:
        """Advantages of a batch of rollouts from per-term returns of shape ``(groups, size)``
        (one group = rollouts of the same task/prompt), with this stack's weights and its
        ``normalize`` mode (or ``mode``); see ``group_advantages``."""
        mode = mode or self.normalize
        if mode is None:
            raise InvalidArgument("group_advantages needs a mode: set RewardStack(normalize='gdpo'|'sum')")
        missing = [n for n in self.names if n not in term_returns]
        if missing:
            raise InvalidArgument(f"group_advantages: no returns for terms {missing}")
        return group_advantages([term_returns[n] for n in self.names], self.weights, mode)

    def __repr__(self) -> str:
        inner = ", ".join(f"{w:g}*{n}" for n, w in zip(self.names, self.weights, strict=True))
        extra = (f", clip={self.clip}" if self.clip else "") + (f", gate={self.gate!r}" if self.gate else "")
        extra += f", normalize={self.normalize!r}" if self.normalize else ""
        return f"RewardStack({inner}{extra})"


def _fusable(term: Any, hook: str) -> bool:
    """Whether ``term`` has the fused-evaluation ``hook`` from a class at or below the one that
    defines its ``__call__`` (a subclass that overrides ``__call__`` only is called instead)."""
    if not hasattr(term, hook):
        return False
    mro = type(term).__mro__
    owner = next((c for c in mro if hook in vars(c)), None)
    call_owner = next((c for c in mro if "__call__" in vars(c)), None)
    return owner is not None and call_owner is not None and issubclass(owner, call_owner)


def _raised_at(e: BaseException) -> str:
    """`` (at file.py:12 in fn)``: the innermost frame of ``e``'s traceback, or ``""``."""
    frames = traceback.extract_tb(e.__traceback__)
    if len(frames) < 2:  # only the stack's own frame
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"


def _zscore(x: np.ndarray, axis: int | None, eps: float) -> np.ndarray:
    mean = x.mean(axis=axis, keepdims=axis is not None)
    n = x.size if axis is None else x.shape[axis]
    std = x.std(axis=axis, keepdims=axis is not None, ddof=1 if n > 1 else 0)  # unbiased, as torch.std
    return (x - mean) / (std + eps)


def group_advantages(term_returns: Sequence[np.ndarray], weights: Sequence[float], mode: str = "gdpo",
                     eps: float = 1e-4) -> np.ndarray:
    """Group-relative advantages from several reward terms, each of shape ``(groups, size)``.

    - ``"sum"`` (GRPO): ``z_group(Σ_k w_k r_k)``;
    - ``"gdpo"`` (GDPO): ``z_batch(Σ_k w_k z_group(r_k))`` — each term is normalised within
      its group first, so a rare term is not drowned by a frequent one and different reward
      combinations keep different advantages; then the batch is normalised.

    ``z`` uses the unbiased std and ``eps = 1e-4``, as the GDPO reference (NVlabs/GDPO,
    ``trl-GDPO/.../grpo_trainer.py``) does; a group whose values are all equal gets 0.

    >>> a = np.array([[1.0, 0.0, 0.0, 0.0]])  # term a: rarely earned in this group
    >>> b = np.array([[0.0, 1.0, 1.0, 0.0]])  # term b: earned by half the group
    >>> group_advantages([a, b], [1.0, 1.0], "sum").round(2)  # rollouts 0, 1, 2 collapse
    array([[ 0.5,  0.5,  0.5, -1.5]])
    >>> group_advantages([a, b], [1.0, 1.0], "gdpo").round(2)  # the rare success stands out
    array([[ 0.69,  0.4 ,  0.4 , -1.49]])
    """
    if mode not in NORMALIZE_MODES:
        raise InvalidArgument(f"group normalisation mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    rs = [np.asarray(r, np.float64) for r in term_returns]
    if not rs or len(rs) != len(weights):
        raise InvalidArgument(f"got {len(rs)} term returns for {len(weights)} weights")
    shape = rs[0].shape
    if len(shape) != 2 or any(r.shape != shape for r in rs):
        raise InvalidArgument(f"term returns must all have shape (groups, size); got {[r.shape for r in rs]}")
    if mode == "sum":
        return _zscore(sum(w * r for w, r in zip(weights, rs, strict=True)), 1, eps)
    combined = sum(w * _zscore(r, 1, eps) for w, r in zip(weights, rs, strict=True))
    return _zscore(combined, None, eps)
