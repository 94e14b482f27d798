"""The DERL reward-program grammar: parse, validate, tokenize and compile reward programs.

Contents: ``Grammar`` (operators, primitives, constants and size limits), ``Node`` (a parsed
program), ``parse`` / ``Grammar.validate`` / ``Grammar.check`` (text -> checked tree, or a
``ProgramError`` naming the problem), ``to_text`` / ``to_tokens`` / ``from_tokens`` (the
canonical text and the prefix token form the meta-optimizers generate), ``TokenState`` (which
tokens may come next: the mask that keeps sampled programs valid) and ``ProgramTerm``, the
registered term ``derl_program`` that evaluates a program over its primitive terms.

A program is an expression over *primitives* — named, fully specified reward terms
(``{progress: {name: potential, params: {potential: minihack/keyroom_progress}}}``) — and
numeric constants::

    expr := PRIMITIVE
          | add(expr, expr)        sum
          | mul(expr, expr)        product
          | scale(NUMBER, expr)    weighted term: NUMBER * expr
          | clip(expr, NUMBER)     clip to [-NUMBER, NUMBER], NUMBER > 0
          | gt(expr, NUMBER)       threshold: 1 where expr > NUMBER, else 0
          | gate(expr, expr)       the second expr where the first is > 0, else 0

For example ``add(env, scale(0.5, clip(progress, 1)))``. The prefix token form of that program
is ``add env scale 0.5 clip progress 1``: each operator token is followed by its arguments, so
the sequence needs no brackets, and ``TokenState`` knows after every token which kinds of tokens
may follow (an expression or a number) and how many slots are still open.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardlab.core.terms import Term, build_term
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument, RewardLabError, UnknownNameError

__all__ = ["ProgramError", "OPERATORS", "Grammar", "Node", "parse", "to_text", "to_tokens", "from_tokens",
           "TokenState", "ProgramTerm", "DEFAULT_CONSTANTS"]

EXPR, NUM, POS = "expr", "number", "positive number"
OPERATORS: dict[str, tuple[str, ...]] = {
    "add": (EXPR, EXPR),
    "mul": (EXPR, EXPR),
    "scale": (NUM, EXPR),
    "clip": (EXPR, POS),
    "gt": (EXPR, NUM),
    "gate": (EXPR, EXPR),
}
"""operator -> the kinds of its arguments"""
DEFAULT_CONSTANTS = (-1.0, -0.1, 0.05, 0.1, 0.3, 1.0, 3.0)


class ProgramError(RewardLabError):
    """A reward program that does not parse or breaks a rule of its grammar (the reason is the message)."""


@dataclass(frozen=True)
class Node:
    """One node of a parsed program: an operator with ``args``, a primitive name, or a number."""

    kind: str  # "op", "prim" or "num"
    value: str | float
    args: tuple[Node, ...] = field(default=())

    def walk(self):
        yield self
        for a in self.args:
            yield from a.walk()

    @property
    def depth(self) -> int:
        return 1 + max((a.depth for a in self.args), default=0)

    @property
    def size(self) -> int:
        return sum(1 for _ in self.walk())


_TOKEN = re.compile(r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][\w./-]*)"
                    r"|(?P<punct>[(),]))")


def _lex(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ProgramError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}")
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def parse(text: str) -> Node:
    """Parse program text into a tree (syntax only; ``Grammar.validate`` checks names and limits).

    >>> parse("add(env, scale(0.5, progress))")
    Node(kind='op', value='add', args=(Node(kind='prim', value='env', args=()), Node(kind='op', value='scale', \
args=(Node(kind='num', value=0.5, args=()), Node(kind='prim', value='progress', args=())))))
    >>> parse("add(env")
    Traceback (most recent call last):
    ...
    rewardlab.shaping.derl_program.ProgramError: unexpected end of program: expected ',' after argument 1 of add
    """
    if not isinstance(text, str) or not text.strip():
        raise ProgramError("empty program")
    toks = _lex(text)
    pos = 0

    def expect(what: str, after: str) -> tuple[str, str, int]:
        nonlocal pos
        if pos >= len(toks):
            raise ProgramError(f"unexpected end of program: expected {what} {after}")
        tok = toks[pos]
        pos += 1
        return tok

    def node(after: str) -> Node:
        nonlocal pos
        kind, val, at = expect("an expression or a number", after)
        if kind == "num":
            x = float(val)
            if not math.isfinite(x):
                raise ProgramError(f"number {val!r} at position {at} is not finite")
            return Node("num", x)
        if kind != "name":
            raise ProgramError(f"unexpected {val!r} at position {at}: expected an expression {after}")
        if pos < len(toks) and toks[pos][1] == "(":
            if val not in OPERATORS:
                err = UnknownNameError("operator", val, list(OPERATORS))
                raise ProgramError(f"at position {at}: {err}")
            pos += 1
            args = []
            arity = len(OPERATORS[val])
            for i in range(arity):
                args.append(node(f"as argument {i + 1} of {val}"))
                sep = "," if i < arity - 1 else ")"
                k2, v2, at2 = expect(f"{sep!r}", f"after argument {i + 1} of {val}")
                if v2 != sep:
                    if v2 == "," and sep == ")":
                        raise ProgramError(f"{val} takes {arity} arguments ({', '.join(OPERATORS[val])}), "
                                           f"got more at position {at2}")
                    raise ProgramError(f"expected {sep!r} after argument {i + 1} of {val} at position {at2}, "
                                       f"got {v2!r}" + (f" ({val} takes {arity} arguments)" if v2 == ")" else ""))
            return Node("op", val, tuple(args))
        if val in OPERATORS:
            raise ProgramError(f"operator {val!r} at position {at} needs arguments: "
                               f"{val}({', '.join(OPERATORS[val])})")
        return Node("prim", val)

    tree = node("at the start")
    if pos != len(toks):
        raise ProgramError(f"unexpected {toks[pos][1]!r} at position {toks[pos][2]} after the end of the program")
    return tree


def _fmt(x: float) -> str:
    return f"{x:g}"


def to_text(node: Node) -> str:
    """Canonical program text (numbers in ``%g``).

    >>> to_text(parse("add( env ,scale(0.50, progress) )"))
    'add(env, scale(0.5, progress))'
    """
    if node.kind == "num":
        return _fmt(float(node.value))
    if node.kind == "prim":
        return str(node.value)
    return f"{node.value}({', '.join(to_text(a) for a in node.args)})"


def to_tokens(node: Node) -> list[str]:
    """Prefix tokens: ``add(env, scale(0.5, progress))`` -> ``['add', 'env', 'scale', '0.5', 'progress']``."""
    if node.kind == "num":
        return [_fmt(float(node.value))]
    if node.kind == "prim":
        return [str(node.value)]
    return [str(node.value)] + [t for a in node.args for t in to_tokens(a)]


def from_tokens(tokens: Sequence[str]) -> Node:
    """Inverse of ``to_tokens`` (raises ``ProgramError`` on an incomplete or overlong sequence).

    >>> to_text(from_tokens(["add", "env", "scale", "0.5", "progress"]))
    'add(env, scale(0.5, progress))'
    """
    pos = 0

    def node() -> Node:
        nonlocal pos
        if pos >= len(tokens):
            raise ProgramError(f"token sequence ends with open arguments: {' '.join(tokens)}")
        tok = tokens[pos]
        pos += 1
        if tok in OPERATORS:
            return Node("op", tok, tuple(node() for _ in OPERATORS[tok]))
        try:
            return Node("num", float(tok))
        except ValueError:
            return Node("prim", tok)

    tree = node()
    if pos != len(tokens):
        raise ProgramError(f"tokens left after a complete program: {' '.join(tokens[pos:])}")
    return tree


@dataclass
class Grammar:
    """Operators, primitive names, the constants the samplers use, and size limits.

    ``max_tokens`` bounds the prefix length (= number of tree nodes), ``max_depth`` the nesting.
    Hand-written programs may use any finite number; generated ones use ``constants``.

    >>> g = Grammar(["env", "progress"])
    >>> g.check("add(env, scale(0.5, progres))")
    Traceback (most recent call last):
    ...
    rewardlab.shaping.derl_program.ProgramError: unknown primitive 'progres'. Did you mean 'progress'? \
Valid primitives: env, progress
    >>> g.check("clip(env, -1)")
    Traceback (most recent call last):
    ...
    rewardlab.shaping.derl_program.ProgramError: clip bound must be > 0, got -1
    >>> g.check("scale(2, env)")
    'scale(2, env)'
    """

    primitives: Sequence[str]
    operators: Sequence[str] = tuple(OPERATORS)
    constants: Sequence[float] = DEFAULT_CONSTANTS
    max_tokens: int = 12
    max_depth: int = 4

    def __post_init__(self) -> None:
        self.primitives = list(self.primitives)
        self.operators = list(self.operators)
        self.constants = [float(c) for c in self.constants]
        if not self.primitives:
            raise InvalidArgument("a DERL grammar needs at least one primitive")
        bad = [p for p in self.primitives if p in OPERATORS or not re.fullmatch(r"[A-Za-z_][\w./-]*", p)]
        if bad:
            raise InvalidArgument(f"primitive names must be identifiers and not operator names, got {bad}")
        unknown = [o for o in self.operators if o not in OPERATORS]
        if unknown:
            raise InvalidArgument(f"unknown operator(s) {unknown}; valid: {', '.join(OPERATORS)}")
        if not self.constants or not all(math.isfinite(c) for c in self.constants):
            raise InvalidArgument(f"constants must be a non-empty list of finite numbers, got {self.constants}")
        if not any(c > 0 for c in self.constants):
            raise InvalidArgument("constants need at least one positive value (clip bounds must be > 0)")
        if self.max_tokens < 1 or self.max_depth < 1:
            raise InvalidArgument(f"max_tokens and max_depth must be >= 1, got {self.max_tokens}, {self.max_depth}")
        self.vocab: list[str] = [*self.operators, *self.primitives, *(_fmt(c) for c in self.constants)]
        if len(set(self.vocab)) != len(self.vocab):
            raise InvalidArgument(f"duplicate tokens in the grammar vocabulary: {self.vocab}")
        self.index = {tok: i for i, tok in enumerate(self.vocab)}

    def validate(self, tree: Node) -> None:
        """Raise ``ProgramError`` if ``tree`` breaks a rule (names, argument kinds, limits)."""
        def visit(n: Node, want: str, where: str) -> None:
            if n.kind == "num":
                if want == EXPR:
                    raise ProgramError(f"a number ({_fmt(float(n.value))}) cannot stand alone as an expression "
                                       f"{where}; use scale(number, expr)")
                if want == POS and not float(n.value) > 0:
                    raise ProgramError(f"{where.split()[-1]} bound must be > 0, got {_fmt(float(n.value))}")
                return
            if want != EXPR:
                raise ProgramError(f"expected a number {where}, got {to_text(n)!r}")
            if n.kind == "prim":
                if n.value not in self.primitives:
                    raise ProgramError(str(UnknownNameError("primitive", str(n.value), self.primitives)))
                return
            if n.value not in self.operators:
                raise ProgramError(f"operator {n.value!r} is not enabled; enabled: {', '.join(self.operators)}")
            for i, (a, kind) in enumerate(zip(n.args, OPERATORS[str(n.value)], strict=True)):
                visit(a, kind, f"as argument {i + 1} of {n.value}")

        visit(tree, EXPR, "at the top level")
        if not any(n.kind == "prim" for n in tree.walk()):
            raise ProgramError("a program must use at least one primitive")
        if tree.size > self.max_tokens:
            raise ProgramError(f"program has {tree.size} tokens; the limit is max_tokens={self.max_tokens}")
        if tree.depth > self.max_depth:
            raise ProgramError(f"program nests {tree.depth} levels deep; the limit is max_depth={self.max_depth}")

    def check(self, text: str) -> str:
        """Parse and validate ``text``; returns the canonical text or raises ``ProgramError``."""
        tree = parse(text)
        self.validate(tree)
        return to_text(tree)

    def start(self) -> TokenState:
        return TokenState(self)


class TokenState:
    """Left-to-right generation state of a prefix program: which vocabulary tokens are valid next.

    Every sequence that only takes tokens from ``mask()`` ends as a program that passes
    ``Grammar.validate``: an operator is allowed only if its arguments still fit in
    ``max_tokens`` and ``max_depth``; a number only where a number is expected (``clip`` bounds
    only the positive constants). Every operator has an expression argument and only a primitive
    closes an expression slot, so every complete program uses a primitive.

    >>> g = Grammar(["env", "progress"], max_tokens=3)
    >>> s = g.start()
    >>> [g.vocab[i] for i in np.flatnonzero(s.mask())]   # 3 tokens leave room for 2-argument ops
    ['add', 'mul', 'scale', 'clip', 'gt', 'gate', 'env', 'progress']
    >>> s.push("scale"); [g.vocab[i] for i in np.flatnonzero(s.mask())]
    ['-1', '-0.1', '0.05', '0.1', '0.3', '1', '3']
    >>> s.push("0.3"); [g.vocab[i] for i in np.flatnonzero(s.mask())]
    ['env', 'progress']
    """

    def __init__(self, grammar: Grammar):
        self.g = grammar
        self.tokens: list[str] = []
        self.slots: list[tuple[str, int]] = [(EXPR, 1)]  # stack of (kind, depth); top = next slot
        g = grammar
        n = len(g.vocab)
        self._op = np.zeros(n, bool)
        self._op[: len(g.operators)] = True
        self._prim = np.zeros(n, bool)
        self._prim[len(g.operators): len(g.operators) + len(g.primitives)] = True
        self._num = np.zeros(n, bool)
        self._num[len(g.operators) + len(g.primitives):] = True
        self._pos = self._num.copy()
        for i, c in enumerate(g.constants):
            self._pos[len(g.operators) + len(g.primitives) + i] = c > 0
        self._arity = {op: OPERATORS[op] for op in g.operators}

    @property
    def done(self) -> bool:
        return not self.slots

    @property
    def next_kind(self) -> str | None:
        return self.slots[-1][0] if self.slots else None

    def mask(self) -> np.ndarray:
        if not self.slots:
            return np.zeros(len(self.g.vocab), bool)
        kind, depth = self.slots[-1]
        if kind == NUM:
            return self._num.copy()
        if kind == POS:
            return self._pos.copy()
        m = self._prim.copy()
        # Budget: tokens used + this token + one per open slot (after this one) must fit.
        left = self.g.max_tokens - len(self.tokens) - 1 - (len(self.slots) - 1)
        for i, op in enumerate(self.g.operators):
            m[i] = len(self._arity[op]) <= left and depth + 1 <= self.g.max_depth
        return m

    def push(self, token: str) -> None:
        idx = self.g.index.get(token)
        if idx is None or not self.mask()[idx]:
            raise ProgramError(f"token {token!r} is not valid here (expecting {self.next_kind or 'nothing'})")
        kind, depth = self.slots.pop()
        self.tokens.append(token)
        if token in self._arity:
            for a in reversed(self._arity[token]):
                self.slots.append((a, depth + 1))

    def text(self) -> str:
        if not self.done:
            raise ProgramError("program is incomplete")
        return to_text(from_tokens(self.tokens))


def _eval(node: Node, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    if node.kind == "prim":
        return values[str(node.value)]
    if node.kind == "num":
        return np.full(n, float(node.value), np.float32)
    op, a = node.value, node.args
    if op == "add":
        return _eval(a[0], values, n) + _eval(a[1], values, n)
    if op == "mul":
        return _eval(a[0], values, n) * _eval(a[1], values, n)
    if op == "scale":
        return np.float32(a[0].value) * _eval(a[1], values, n)
    if op == "clip":
        c = np.float32(a[1].value)
        return np.clip(_eval(a[0], values, n), -c, c)
    if op == "gt":
        return (_eval(a[0], values, n) > np.float32(a[1].value)).astype(np.float32)
    if op == "gate":
        cond = _eval(a[0], values, n)
        return np.where(cond > 0, _eval(a[1], values, n), np.float32(0.0)).astype(np.float32)
    raise ProgramError(f"unknown operator {op!r}")  # unreachable after validate


class ProgramTerm(Term):
    """A DERL reward program over named primitive terms, as one term.

    ``program`` is the program text (see the module docstring); ``primitives`` maps each name
    the program may use to a term spec ``{name: kind, params: {...}}``. Every primitive the
    program uses is built once and evaluated once per step (stateful terms such as ``novelty``
    or events see each step exactly once), then the expression combines their values.
    A program that does not parse or names an unknown primitive raises ``ConfigError`` with
    the reason when the term is built.

    >>> term = ProgramTerm("add(env, scale(-2, gt(env, 0.5)))", {"env": {"name": "env"}})
    >>> t = Transition(None, None, None, np.array([1.0, 0.0]), np.zeros(2, bool), np.zeros(2, bool))
    >>> term(t)
    array([-1.,  0.], dtype=float32)
    >>> ProgramTerm("add(env, bonus)", {"env": {"name": "env"}})
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: derl_program: unknown primitive 'bonus'. Valid primitives: env
    """

    name = "derl_program"

    def __init__(self, program: str, primitives: dict[str, Any], gamma: float | None = None,
                 max_tokens: int = 64, max_depth: int = 16):
        if not isinstance(primitives, dict) or not primitives:
            raise ConfigError("derl_program: primitives must be a non-empty mapping name -> term spec")
        try:
            grammar = Grammar(list(primitives), max_tokens=max_tokens, max_depth=max_depth)
            self.tree = parse(program)
            grammar.validate(self.tree)
        except (ProgramError, InvalidArgument) as e:
            raise ConfigError(f"derl_program: {e}") from None
        self.program = to_text(self.tree)
        used = sorted({str(n.value) for n in self.tree.walk() if n.kind == "prim"})
        self.terms: dict[str, Any] = {}
        for name in used:
            spec = primitives[name]
            if isinstance(spec, str):
                spec = {"name": spec}
            if not isinstance(spec, dict) or "name" not in spec:
                raise ConfigError(f"derl_program: primitive {name!r} must be a term spec with 'name', got {spec!r}")
            extra = set(spec) - {"name", "params"}
            if extra:
                raise ConfigError(f"derl_program: primitive {name!r}: unknown field(s) {sorted(extra)}; "
                                  "allowed: name, params (weights belong in the program)")
            try:
                self.terms[name] = build_term(spec["name"], spec.get("params"), name=name, gamma=gamma)
            except UnknownNameError as e:
                raise ConfigError(f"derl_program: primitive {name!r}: {e}") from None

    def bind(self, num_envs: int) -> None:
        for term in self.terms.values():
            if hasattr(term, "bind"):
                term.bind(num_envs)

    def reset(self, env_ids: np.ndarray) -> None:
        for term in self.terms.values():
            term.reset(env_ids)

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        for term in self.terms.values():
            if hasattr(term, "observe_reset"):
                term.observe_reset(obs, info, env_ids)

    def __call__(self, t: Transition) -> np.ndarray:
        n = t.num_envs
        values = {}
        for name, term in self.terms.items():
            v = term(t)
            if not isinstance(v, np.ndarray) or v.shape != (n,):
                from rewardlab.errors import TermOutputError

                raise TermOutputError(f"primitive {name!r} of derl_program returned shape "
                                      f"{getattr(v, 'shape', type(v).__name__)}; expected ({n},)")
            values[name] = v.astype(np.float32, copy=False)
        return np.asarray(_eval(self.tree, values, n), np.float32).reshape(n)

    def __repr__(self) -> str:
        return f"ProgramTerm({self.program!r})"
