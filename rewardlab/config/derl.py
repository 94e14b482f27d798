"""``DerlConfig``: the ``derl:`` section of an experiment file (pydantic only, no torch).

With a ``derl:`` section, ``rewardlab run FILE`` runs the DERL meta-loop instead of one
training run: ``rounds`` × ``candidates`` reward programs over ``primitives``, each trained by
the experiment's own ``env``/``agent``/``train``/``eval`` settings (the experiment's
``reward`` section is replaced by the candidate program) and scored by its final evaluation
on the unshaped env.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewardlab.config.limits import MAX_SEED
from rewardlab.shaping.derl_program import DEFAULT_CONSTANTS, OPERATORS, Grammar, ProgramError

__all__ = ["DerlConfig", "GrpoConfig", "EvolutionConfig", "LLMConfig", "PrimitiveSpec", "ValidationConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrimitiveSpec(_Strict):
    """One primitive: a registered term and its parameters (its weight is chosen by the program)."""

    name: str
    """registered term name (``rewardlab list terms``)"""
    params: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments of the term"""


class GrpoConfig(_Strict):
    """The token policy and its group-relative policy-gradient update."""

    learning_rate: float = Field(0.03, gt=0)
    """Adam step size of the token policy"""
    epochs: int = Field(4, ge=1)
    """gradient steps on each round's group (PPO-style clipped ratio after the first)"""
    clip: float = Field(0.2, gt=0)
    """ratio clip of the surrogate objective"""
    entropy_coef: float = Field(0.01, ge=0)
    """entropy bonus per token (keeps the policy exploring)"""
    hidden: int = Field(64, ge=4)
    """GRU width of the token policy"""


class EvolutionConfig(_Strict):
    """Evolutionary search: tournament selection from the best programs so far + mutation."""

    elite: int = Field(4, ge=1)
    """parents are drawn from the best ``elite`` programs scored so far"""
    tournament: int = Field(2, ge=1)
    """tournament size of parent selection"""


class LLMConfig(_Strict):
    """Who proposes programs for ``method: llm``: a ``rewardlab.llm`` backend, or any factory
    ``package.module:factory`` (called with ``params``) returning an object with ``complete(prompts)``."""

    backend: Any = None
    """a ``rewardlab.llm.make_backend`` spec, e.g. ``{name: openai, base_url: ..., cache: runs/llm.sqlite}``"""
    proposer: str | None = None
    """import path ``package.module:factory`` of a proposer (instead of ``backend``)"""
    params: dict[str, Any] = Field(default_factory=dict)
    """keyword arguments of the ``proposer`` factory"""
    history: int = Field(8, ge=0)
    """best programs (with scores) shown in each prompt"""

    @model_validator(mode="after")
    def _one_source(self) -> LLMConfig:
        if (self.backend is None) == (self.proposer is None):
            raise ValueError("give exactly one of backend (a rewardlab.llm spec) and proposer (module:factory)")
        return self


class ValidationConfig(_Strict):
    """Score candidates on a separate validation env (e.g. held-out games) instead of the runner's
    final evaluation: the trained agent is reloaded from its final checkpoint and evaluated."""

    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """overrides of ``env.kwargs`` for the validation env, e.g. ``{split: heldout}``"""
    episodes: int = Field(50, ge=1)
    """validation episodes per inner seed"""


class DerlConfig(_Strict):
    """The ``derl:`` section: the meta-optimizer, the grammar and the loop's budget."""

    method: Literal["grpo", "random", "evolution", "llm"] = "grpo"
    """meta-optimizer: token policy + GRPO, random search, evolution, or an LLM proposer"""
    rounds: int = Field(4, ge=1)
    """meta-iterations"""
    candidates: int = Field(4, ge=2)
    """K reward programs per round (the GRPO group)"""
    workers: int = Field(2, ge=0)
    """worker processes for the inner training runs (0: in this process)"""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """seed of the meta-optimizer (sampling, mutation)"""
    primitives: dict[str, PrimitiveSpec]
    """name -> term spec; the names are the leaves of the grammar"""
    operators: list[str] = Field(default_factory=lambda: list(OPERATORS))
    """enabled operators (add, mul, scale, clip, gt, gate)"""
    constants: list[float] = Field(default_factory=lambda: list(DEFAULT_CONSTANTS))
    """numbers the generators may use (weights, clip bounds, thresholds)"""
    max_tokens: int = Field(10, ge=1, le=64)
    """largest program (prefix tokens = tree nodes)"""
    max_depth: int = Field(4, ge=1, le=16)
    """deepest nesting"""
    failure_score: float = -1.0
    """score of a program that is invalid or whose training crashed: -1 as in the DERL reference
    (``expression_check.py`` scores an invalid program -1, below every validation score in [0, 1]);
    0 was rewardlab's earlier default"""
    unique: bool = True
    """resample a program already proposed in the same round (up to 50 tries)"""
    dir: str | None = None
    """DERL run directories go here (default: ``<log.dir>/derl``)"""
    grpo: GrpoConfig = Field(default_factory=GrpoConfig)
    evolution: EvolutionConfig = Field(default_factory=EvolutionConfig)
    llm: LLMConfig | None = None
    """required by ``method: llm``"""
    validation: ValidationConfig | None = None
    """score on a validation env (default: the runner's final evaluation on the unshaped env)"""

    @field_validator("primitives")
    @classmethod
    def _some(cls, v: dict[str, PrimitiveSpec]) -> dict[str, PrimitiveSpec]:
        if not v:
            raise ValueError("at least one primitive is needed, e.g. {env: {name: env}}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DerlConfig:
        try:
            self.grammar()
        except (ProgramError, ValueError) as e:
            raise ValueError(str(e)) from None
        from rewardlab.core.terms import TERMS
        from rewardlab.errors import UnknownNameError

        for key, spec in self.primitives.items():
            if spec.name not in TERMS:
                raise ValueError(f"primitive {key!r}: {UnknownNameError('reward term', spec.name, TERMS.names())}")
            if spec.name == "derl_program":
                raise ValueError(f"primitive {key!r}: a primitive cannot itself be a derl_program")
        if self.method == "llm" and self.llm is None:
            raise ValueError("method llm needs an llm: section, e.g. {backend: {name: openai, base_url: ...}}")
        return self

    def grammar(self) -> Grammar:
        return Grammar(list(self.primitives), self.operators, self.constants, self.max_tokens, self.max_depth)

    def primitive_specs(self) -> dict[str, dict[str, Any]]:
        """The primitives as term specs (the ``primitives`` parameter of ``derl_program``)."""
        return {k: v.model_dump() for k, v in self.primitives.items()}
