"""Meta-optimizers over the reward-program grammar: what DERL proposes each round.

Contents: ``Proposal`` (one candidate program, or an invalid text with its reason),
``TokenPolicy`` (a small GRU over grammar tokens), ``GrpoSearch`` (samples programs from the
policy under the validity mask and updates it with group-relative policy gradient),
``RandomSearch`` (the same grammar, uniform over valid tokens — the untrained policy's
distribution), ``EvolutionSearch`` (tournament selection from the best programs + mutation),
``LLMSearch`` (any ``Proposer``: an object with ``complete(prompts) -> texts``, e.g. an LLM),
``ScriptedProposer`` (a deterministic stand-in for tests — not an LLM) and ``make_search``.

Every search has ``propose(k) -> list[Proposal]``, ``observe(proposals, scores) -> stats``
(called once per round with the K scores) and ``save(path)`` / ``load(path)`` so a DERL run
resumes with the exact optimizer state of the last finished round.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from rewardlab.core.registry import load_attr
from rewardlab.core.threads import torch_threads
from rewardlab.errors import ConfigError
from rewardlab.shaping.derl_program import (
    EXPR,
    NUM,
    OPERATORS,
    POS,
    Grammar,
    Node,
    ProgramError,
    from_tokens,
    parse,
    to_text,
    to_tokens,
)

__all__ = ["Proposal", "Proposer", "ScriptedProposer", "TokenPolicy", "GrpoSearch", "RandomSearch",
           "EvolutionSearch", "LLMSearch", "make_search", "sample_uniform"]

_KINDS = {EXPR: 0, NUM: 1, POS: 2}


@dataclass
class Proposal:
    """A candidate: canonical ``text`` and prefix ``tokens`` if valid, else the raw text and ``error``."""

    text: str
    tokens: list[str] | None = None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def _one_thread(fn):
    """Run ``fn`` with one torch thread: the token policy's ops are tiny, and on a busy machine
    intra-op threads cost ~100x (measured 3.8 s vs 0.01 s for 5 programs). Restores the setting."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return fn(*args, **kwargs)

    return wrapper


def sample_uniform(grammar: Grammar, rng: np.random.Generator) -> list[str]:
    """A program's tokens, each drawn uniformly among the tokens valid at that point."""
    state = grammar.start()
    while not state.done:
        valid = np.flatnonzero(state.mask())
        state.push(grammar.vocab[int(rng.choice(valid))])
    return state.tokens


def _unique(propose_one, k: int, unique: bool) -> list[Proposal]:
    out: list[Proposal] = []
    seen: set[str] = set()
    for _ in range(k):
        p = propose_one()
        for _ in range(50):
            if not unique or p.text not in seen:
                break
            p = propose_one()
        seen.add(p.text)
        out.append(p)
    return out


class RandomSearch:
    """Random search over the grammar (uniform over valid tokens at every position)."""

    def __init__(self, grammar: Grammar, seed: int = 0, unique: bool = True):
        self.grammar, self.unique = grammar, unique
        self.rng = np.random.default_rng(seed)

    def _one(self) -> Proposal:
        tokens = sample_uniform(self.grammar, self.rng)
        return Proposal(to_text(from_tokens(tokens)), tokens)

    def propose(self, k: int) -> list[Proposal]:
        return _unique(self._one, k, self.unique)

    def observe(self, proposals: Sequence[Proposal], scores: Sequence[float]) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_rng_state(self.rng, state["rng"])

    def save(self, path: Path) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: Path) -> None:
        self.load_state_dict(torch.load(path, weights_only=False))


class TokenPolicy(nn.Module):
    """Autoregressive policy over grammar tokens: a GRU cell reads the previous token and the
    kind of the slot being filled (expression / number / positive number) and scores the
    vocabulary. The output layer starts at zero, so the initial policy is uniform over the
    valid tokens (the same distribution as ``RandomSearch``)."""

    def __init__(self, vocab_size: int, hidden: int = 64, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.bos = vocab_size
        self.tok = nn.Embedding(vocab_size + 1, hidden)
        self.kind = nn.Embedding(len(_KINDS), hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.head = nn.Linear(hidden, vocab_size)
        with torch.no_grad():
            for p in (self.tok.weight, self.kind.weight):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            for name, p in self.cell.named_parameters():
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) / hidden ** 0.5 if "weight" in name
                        else torch.zeros_like(p))
            self.head.weight.zero_()
            self.head.bias.zero_()
        self.hidden = hidden

    def step(self, prev: torch.Tensor, kind: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cell(self.tok(prev) + self.kind(kind), h)
        return self.head(h), h


class GrpoSearch:
    """DERL's differentiable meta-optimizer: a ``TokenPolicy`` sampling valid programs, updated
    with group-relative policy gradient on each round's K scores.

    Advantages are ``(score − group mean) / group std``; the loss is the clipped surrogate
    ``−min(ρ·A, clip(ρ, 1±ε)·A)`` averaged over each program's tokens and over the group, minus an
    entropy bonus, for ``epochs`` Adam steps (ρ = 1 on the first). A group with equal scores
    carries no signal and leaves the policy unchanged.
    """

    def __init__(self, grammar: Grammar, seed: int = 0, learning_rate: float = 0.03, epochs: int = 4,
                 clip: float = 0.2, entropy_coef: float = 0.01, hidden: int = 64, unique: bool = True):
        self.grammar, self.unique = grammar, unique
        self.epochs, self.clip, self.entropy_coef = epochs, clip, entropy_coef
        self.rng = np.random.default_rng(seed)
        self.policy = TokenPolicy(len(grammar.vocab), hidden, seed)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=learning_rate)

    # -- sampling --------------------------------------------------------------------------
    def _one(self) -> Proposal:
        state = self.grammar.start()
        h = torch.zeros(1, self.policy.hidden)
        prev = torch.tensor([self.policy.bos])
        with torch.no_grad():
            while not state.done:
                mask = torch.from_numpy(state.mask())
                logits, h = self.policy.step(prev, torch.tensor([_KINDS[state.next_kind]]), h)
                probs = torch.softmax(logits[0].masked_fill(~mask, float("-inf")), 0).double().numpy()
                idx = int(self.rng.choice(len(probs), p=probs / probs.sum()))
                state.push(self.grammar.vocab[idx])
                prev = torch.tensor([idx])
        return Proposal(to_text(from_tokens(state.tokens)), state.tokens)

    @_one_thread
    def propose(self, k: int) -> list[Proposal]:
        return _unique(self._one, k, self.unique)

    # -- log-probabilities -----------------------------------------------------------------
    def _token_logps(self, tokens: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probabilities and entropies of ``tokens`` under the masked policy."""
        state = self.grammar.start()
        h = torch.zeros(1, self.policy.hidden)
        prev = torch.tensor([self.policy.bos])
        logps, ents = [], []
        for tok in tokens:
            mask = torch.from_numpy(state.mask())
            idx = self.grammar.index[tok]
            logits, h = self.policy.step(prev, torch.tensor([_KINDS[state.next_kind]]), h)
            logp = torch.log_softmax(logits[0].masked_fill(~mask, float("-inf")), 0)
            logps.append(logp[idx])
            p = logp.exp()
            ents.append(-(p[mask] * logp[mask]).sum())
            state.push(tok)
            prev = torch.tensor([idx])
        return torch.stack(logps), torch.stack(ents)

    @_one_thread
    def logprob(self, program: str) -> float:
        """log P(program) under the current policy (``-inf`` if it cannot be generated)."""
        try:
            tokens = to_tokens(parse(program))
            with torch.no_grad():
                return float(self._token_logps(tokens)[0].sum())
        except (ProgramError, KeyError):
            return float("-inf")

    # -- the GRPO update -------------------------------------------------------------------
    @_one_thread
    def observe(self, proposals: Sequence[Proposal], scores: Sequence[float]) -> dict[str, float]:
        group = [(p.tokens, float(s)) for p, s in zip(proposals, scores, strict=True) if p.tokens]
        if len(group) < 2:
            return {"grpo/skipped": 1.0}
        s = np.array([g[1] for g in group])
        std = s.std()
        if std < 1e-8:
            return {"grpo/skipped": 1.0, "grpo/score_std": 0.0}
        adv = torch.tensor((s - s.mean()) / (std + 1e-8), dtype=torch.float32)
        with torch.no_grad():
            old = [self._token_logps(tok)[0] for tok, _ in group]
        stats: dict[str, float] = {}
        for epoch in range(self.epochs):
            losses, ents, ratios = [], [], []
            for (tok, _), a, lp_old in zip(group, adv, old, strict=True):
                lp, ent = self._token_logps(tok)
                ratio = torch.exp(lp - lp_old)
                surr = torch.minimum(ratio * a, torch.clamp(ratio, 1 - self.clip, 1 + self.clip) * a)
                losses.append(-surr.mean() - self.entropy_coef * ent.mean())
                ents.append(float(ent.detach().mean()))
                ratios.append(float(ratio.detach().mean()))
            loss = torch.stack(losses).mean()
            self.opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.policy.parameters(), 1.0)
            self.opt.step()
            if epoch == 0:
                stats = {"grpo/loss": float(loss.detach()),
                         "grpo/entropy_per_token": float(np.mean(ents))}
        stats.update({"grpo/skipped": 0.0, "grpo/score_std": float(std),
                      "grpo/last_ratio_mean": float(np.mean(ratios))})
        return stats

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "opt": self.opt.state_dict(), "rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["opt"])
        _set_rng_state(self.rng, state["rng"])

    save = RandomSearch.save
    load = RandomSearch.load


class EvolutionSearch:
    """Evolutionary search: the first round is random; afterwards each child is a mutation of a
    parent picked by tournament among the ``elite`` best programs scored so far.

    Mutations (one per child, retried until the child is valid and new in the round): replace a
    random subtree by a fresh random one, swap a primitive, change a number, or wrap the program
    in an operator (``add``/``scale``/``clip``/``gate`` with fresh arguments).
    """

    def __init__(self, grammar: Grammar, seed: int = 0, elite: int = 4, tournament: int = 2, unique: bool = True):
        self.grammar, self.elite, self.tournament, self.unique = grammar, elite, tournament, unique
        self.rng = np.random.default_rng(seed)
        self.history: list[list[Any]] = []  # [text, score]

    def _random(self) -> Proposal:
        tokens = sample_uniform(self.grammar, self.rng)
        return Proposal(to_text(from_tokens(tokens)), tokens)

    def _subtree(self, max_tokens: int, max_depth: int) -> Node | None:
        if max_tokens < 1 or max_depth < 1:
            return None
        sub = dataclasses.replace(self.grammar, max_tokens=max_tokens, max_depth=max_depth)
        return from_tokens(sample_uniform(sub, self.rng))

    def _mutate(self, tree: Node) -> Node | None:
        g = self.grammar
        # (path, node, kind of the slot) for every node
        slots: list[tuple[tuple[int, ...], Node, str, int]] = []

        def collect(n: Node, path: tuple[int, ...], kind: str, depth: int) -> None:
            slots.append((path, n, kind, depth))
            for i, (a, k) in enumerate(zip(n.args, OPERATORS.get(str(n.value), ()), strict=False)):
                collect(a, path + (i,), k, depth + 1)

        collect(tree, (), EXPR, 1)
        path, node, kind, depth = slots[int(self.rng.integers(len(slots)))]
        move = self.rng.integers(3)
        if kind != EXPR:
            choices = [c for c in g.constants if (kind == NUM or c > 0) and c != node.value]
            if not choices:
                return None
            new = Node("num", float(self.rng.choice(choices)))
        elif move == 0 and node.kind == "prim" and len(g.primitives) > 1:
            new = Node("prim", str(self.rng.choice([p for p in g.primitives if p != node.value])))
        elif move == 1 and path == ():
            op = str(self.rng.choice([o for o in g.operators if o in ("add", "scale", "clip", "gate")] or g.operators))
            args: list[Node] = []
            for k in OPERATORS[op]:
                if k == EXPR and tree not in args:
                    args.append(tree)
                elif k == EXPR:
                    args.append(self._subtree(2, 2) or Node("prim", g.primitives[0]))
                else:
                    args.append(Node("num", float(self.rng.choice([c for c in g.constants if k == NUM or c > 0]))))
            return Node("op", op, tuple(args))
        else:
            new = self._subtree(g.max_tokens - tree.size + node.size, g.max_depth - depth + 1)
            if new is None:
                return None

        def replace(n: Node, p: tuple[int, ...]) -> Node:
            if not p:
                return new
            args = list(n.args)
            args[p[0]] = replace(args[p[0]], p[1:])
            return Node(n.kind, n.value, tuple(args))

        return replace(tree, path)

    def _child(self) -> Proposal:
        ranked = sorted(self.history, key=lambda x: -x[1])[: self.elite]
        if len(self.history) < 2:
            return self._random()
        for _ in range(50):
            picks = [ranked[int(self.rng.integers(len(ranked)))] for _ in range(self.tournament)]
            parent = max(picks, key=lambda x: x[1])[0]
            try:
                child = self._mutate(parse(parent))
                if child is None:
                    continue
                self.grammar.validate(child)
            except ProgramError:
                continue
            text = to_text(child)
            if text != parent:
                return Proposal(text, to_tokens(child))
        return self._random()

    def propose(self, k: int) -> list[Proposal]:
        return _unique(self._child, k, self.unique)

    def observe(self, proposals: Sequence[Proposal], scores: Sequence[float]) -> dict[str, float]:
        for p, s in zip(proposals, scores, strict=True):
            if p.valid:
                self.history.append([p.text, float(s)])
        return {"evolution/population": float(len(self.history))}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self.rng), "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_rng_state(self.rng, state["rng"])
        self.history = [list(x) for x in state["history"]]

    save = RandomSearch.save
    load = RandomSearch.load


@runtime_checkable
class Proposer(Protocol):
    """Anything that completes prompts: ``complete(prompts) -> texts`` (one text per prompt).
    An LLM backend fits (DERL's paper uses an LLM here); tests use ``ScriptedProposer``."""

    def complete(self, prompts: list[str]) -> list[str]: ...


class ScriptedProposer:
    """A deterministic, scripted stand-in for an LLM, for tests and demos — NOT a language model.

    It ignores the prompt's content and returns ``replies`` in order (cycling); it records the
    prompts it was given so tests can check them.

    >>> p = ScriptedProposer(["add(env, progress)", "not a program"])
    >>> p.complete(["a", "b", "c"])
    ['add(env, progress)', 'not a program', 'add(env, progress)']
    """

    def __init__(self, replies: Sequence[str]):
        if not replies:
            raise ConfigError("ScriptedProposer needs at least one reply")
        self.replies = list(replies)
        self.calls = 0
        self.prompts: list[str] = []

    def complete(self, prompts: list[str]) -> list[str]:
        out = []
        for p in prompts:
            self.prompts.append(p)
            out.append(self.replies[self.calls % len(self.replies)])
            self.calls += 1
        return out


PROMPT = """You design reward functions for a reinforcement-learning agent as small programs.
Grammar (prefix functions, no other syntax):
  expr := PRIMITIVE | add(expr, expr) | mul(expr, expr) | scale(NUMBER, expr)
        | clip(expr, POSITIVE_NUMBER) | gt(expr, NUMBER) | gate(expr, expr)
  gt(e, c) is 1 where e > c else 0; gate(a, b) is b where a > 0 else 0.
Enabled operators: {operators}. At most {max_tokens} symbols, nesting depth at most {max_depth}.
Primitives (reward terms computed every step):
{primitives}
The agent is trained with each reward for a fixed budget; a program's score is the agent's
success rate on the real task afterwards (higher is better).
{history}
This is proposal {index} of {count} in this round: make it different from the programs above
and from the other proposals.
Answer with ONE new program on a single line, nothing else."""


class LLMSearch:
    """Programs proposed by a ``Proposer`` (an LLM) from a prompt with the grammar, the primitives
    and the best programs so far with their scores. Replies that do not parse or break the
    grammar become invalid proposals (scored as failures, the reason logged). The proposer is
    not trained here: with a frozen LLM this is in-context evolution."""

    def __init__(self, grammar: Grammar, proposer: Proposer, primitives: dict[str, Any] | None = None,
                 history: int = 8, unique: bool = True):
        if not callable(getattr(proposer, "complete", None)):
            raise ConfigError(f"an LLM proposer needs a complete(prompts) method, got {type(proposer).__name__}")
        self.grammar, self.proposer, self.n_history, self.unique = grammar, proposer, history, unique
        self.primitives = primitives or {p: {} for p in grammar.primitives}
        self.history: list[list[Any]] = []

    def prompt(self, index: int = 1, count: int = 1) -> str:
        """The proposal prompt; ``index`` of ``count`` makes the K prompts of a round distinct, so a
        sampling LLM behind the on-disk cache still gives K different answers (and a re-run the
        same ones)."""
        prims = "\n".join(f"  {name}: {spec}" for name, spec in self.primitives.items())
        best = sorted(self.history, key=lambda x: -x[1])[: self.n_history]
        hist = ("Programs tried so far (score, program):\n" + "\n".join(f"  {s:.3f}  {t}" for t, s in best)
                if best else "No program has been tried yet.")
        g = self.grammar
        return PROMPT.format(operators=", ".join(g.operators), max_tokens=g.max_tokens, max_depth=g.max_depth,
                             primitives=prims, history=hist, index=index, count=count)

    def parse_reply(self, reply: str) -> Proposal:
        lines = [ln.strip().strip("`").strip() for ln in str(reply).splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("```")]
        first_error = None
        for ln in lines:
            ln = re.sub(r"^(program|answer)\s*:\s*", "", ln, flags=re.I)
            try:
                text = self.grammar.check(ln)
                return Proposal(text, to_tokens(parse(text)))
            except ProgramError as e:
                first_error = first_error or str(e)
        return Proposal(str(reply)[:300], None, first_error or "empty reply")

    def propose(self, k: int) -> list[Proposal]:
        replies = self.proposer.complete([self.prompt(i + 1, k) for i in range(k)])
        if len(replies) != k:
            raise ConfigError(f"the proposer returned {len(replies)} replies for {k} prompts")
        return [self.parse_reply(r) for r in replies]

    def observe(self, proposals: Sequence[Proposal], scores: Sequence[float]) -> dict[str, float]:
        for p, s in zip(proposals, scores, strict=True):
            if p.valid:
                self.history.append([p.text, float(s)])
        return {"llm/invalid": float(sum(not p.valid for p in proposals))}

    def state_dict(self) -> dict[str, Any]:
        state = {"history": self.history}
        if hasattr(self.proposer, "state_dict"):
            state["proposer"] = self.proposer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [list(x) for x in state["history"]]
        if "proposer" in state and hasattr(self.proposer, "load_state_dict"):
            self.proposer.load_state_dict(state["proposer"])

    save = RandomSearch.save
    load = RandomSearch.load


def make_search(derl: Any) -> Any:
    """The meta-optimizer of a ``DerlConfig``."""
    g = derl.grammar()
    if derl.method == "grpo":
        c = derl.grpo
        return GrpoSearch(g, derl.seed, c.learning_rate, c.epochs, c.clip, c.entropy_coef, c.hidden, derl.unique)
    if derl.method == "random":
        return RandomSearch(g, derl.seed, derl.unique)
    if derl.method == "evolution":
        return EvolutionSearch(g, derl.seed, derl.evolution.elite, derl.evolution.tournament, derl.unique)
    if derl.llm.backend is not None:
        from rewardlab.llm import make_backend

        proposer = make_backend(derl.llm.backend)
    else:
        factory = load_attr(derl.llm.proposer)
        try:
            proposer = factory(**derl.llm.params)
        except TypeError as e:
            raise ConfigError(f"derl.llm.proposer {derl.llm.proposer!r}: {e}") from e
    return LLMSearch(g, proposer, derl.primitive_specs(), derl.llm.history, derl.unique)
