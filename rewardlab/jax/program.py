"""DERL reward programs in JAX: padded token arrays evaluated by a fixed-size stack machine.

A program of the DERL grammar (``rewardlab.shaping.derl_program``) is encoded as three arrays of
a fixed length ``L`` (``ProgramCode``): its prefix tokens *reversed* (postfix order), padded with
no-op tokens. Because every program of a grammar has the same shapes, the code is a traced
argument, not part of the compiled program: ``jax.vmap`` over a stack of codes evaluates K
different programs in one compiled step — K programs × S seeds train in one call of ``jax_ppo``
(batched DERL: ``reward.variants`` of a ``derl_program`` term, see docs/jax.md).

The machine reads the postfix tokens left to right: a primitive or a number pushes a row of
values (one per env), an operator pops its two arguments (the first on top) and pushes the
result — the same float32 operations as the numpy ``derl_program`` term, which
``tests/jax/test_jax_program.py`` checks on recorded transitions.

>>> import jax.numpy as jnp
>>> code = encode("add(env, scale(0.5, progress))", ["env", "progress"], length=8)
>>> evaluate(code, jnp.array([[1.0, 0.0], [2.0, 4.0]]))   # rows: env, progress
Array([2., 2.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.jax.terms import JaxTerm, TermContext, build_jax_term
from rewardlab.shaping.derl_program import OPERATORS, Grammar, Node, ProgramError, parse

__all__ = ["ProgramCode", "OPCODES", "encode", "evaluate", "program_term"]

PAD, PRIM, NUM = 0, 1, 2
OPCODES = {op: 3 + i for i, op in enumerate(OPERATORS)}
"""operator -> its token kind (0 no-op, 1 primitive, 2 number)"""


class ProgramCode(NamedTuple):
    """A program as padded postfix token arrays (all of length ``L``; float32 so that a stack
    of codes is a numeric reward parameter like any other)."""

    kind: jax.Array    # PAD, PRIM, NUM or an operator's code
    index: jax.Array   # the primitive's row in the values passed to ``evaluate``
    number: jax.Array  # the constant of a NUM token


def _prefix(node: Node) -> list[Node]:
    return [node] + [n for a in node.args for n in _prefix(a)]


def encode(program: str | Node, primitives: Sequence[str], length: int) -> ProgramCode:
    """``program`` (text or a parsed tree) as a ``ProgramCode`` of ``length`` tokens.

    ``primitives`` fixes the row of each primitive name in ``evaluate``'s values. Raises
    ``ProgramError`` for a program that does not parse, names an unknown primitive or is longer
    than ``length`` tokens.
    """
    tree = parse(program) if isinstance(program, str) else program
    nodes = _prefix(tree)
    if len(nodes) > length:
        raise ProgramError(f"program has {len(nodes)} tokens; the encoding holds {length}")
    rows = {name: i for i, name in enumerate(primitives)}
    kind = np.zeros(length, np.float32)
    index = np.zeros(length, np.float32)
    number = np.zeros(length, np.float32)
    for i, node in enumerate(reversed(nodes)):
        if node.kind == "prim":
            if node.value not in rows:
                raise ProgramError(f"unknown primitive {node.value!r}; valid primitives: {', '.join(primitives)}")
            kind[i], index[i] = PRIM, rows[str(node.value)]
        elif node.kind == "num":
            kind[i], number[i] = NUM, float(node.value)
        else:
            kind[i] = OPCODES[str(node.value)]
    return ProgramCode(jnp.asarray(kind), jnp.asarray(index), jnp.asarray(number))


def evaluate(code: ProgramCode, values: jax.Array) -> jax.Array:
    """The program's value per env: ``values`` is ``[num primitives, num envs]`` (float32)."""
    values = values.astype(jnp.float32)
    length, n = code.kind.shape[0], values.shape[1]
    ops = {op: jnp.int32(c) for op, c in OPCODES.items()}

    def step(carry, token):
        stack, sp = carry
        kind, index, number = token[0].astype(jnp.int32), token[1].astype(jnp.int32), token[2]
        first = stack[jnp.maximum(sp - 1, 0)]   # an operator's first argument is on top
        second = stack[jnp.maximum(sp - 2, 0)]
        binary = jnp.select(
            [kind == ops["add"], kind == ops["mul"], kind == ops["scale"], kind == ops["clip"],
             kind == ops["gt"], kind == ops["gate"]],
            [first + second, first * second, first * second, jnp.clip(first, -second, second),
             (first > second).astype(jnp.float32), jnp.where(first > 0, second, jnp.float32(0.0))],
            jnp.zeros(n, jnp.float32))
        pushed = jnp.where(kind == PRIM, values[jnp.clip(index, 0, values.shape[0] - 1)],
                           jnp.full(n, number, jnp.float32))
        is_push, is_op = (kind == PRIM) | (kind == NUM), kind >= 3
        slot = jnp.where(is_push, sp, jnp.maximum(sp - 2, 0))
        row = jnp.where(is_push, pushed, binary)
        stack = jnp.where(is_push | is_op, stack.at[slot].set(row), stack)
        sp = sp + jnp.where(is_push, 1, jnp.where(is_op, -1, 0))
        return (stack, sp), None

    tokens = jnp.stack([code.kind, code.index, code.number], axis=1)
    (stack, _), _ = jax.lax.scan(step, (jnp.zeros((length, n), jnp.float32), jnp.int32(0)), tokens)
    return stack[0]


def program_term(ctx: TermContext, program: str, primitives: dict[str, Any], gamma: float | None = None,
                 max_tokens: int = 64, max_depth: int = 16) -> JaxTerm:
    """The JAX ``derl_program`` term (the twin of ``rewardlab.shaping.derl_program.ProgramTerm``).

    Every primitive is built and evaluated each step — not only those the program uses — so that a
    variant may swap in any program over the same primitives (``reward.variants:
    {c1: {derl.program: "add(env, progress)"}}``) without changing the compiled step. The program
    is a numeric parameter (its ``ProgramCode`` of ``max_tokens`` tokens); primitives' own
    parameters are fixed.
    """
    if not isinstance(primitives, dict) or not primitives:
        raise InvalidArgument("primitives must be a non-empty mapping name -> term spec")
    try:
        grammar = Grammar(list(primitives), max_tokens=max_tokens, max_depth=max_depth)
    except InvalidArgument as e:
        raise ConfigError(f"derl_program: {e}") from None
    names = list(primitives)
    sub = TermContext(ctx.env, ctx.features, gamma if gamma is not None else ctx.gamma)
    terms = []
    for name in names:
        spec = primitives[name]
        spec = {"name": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "params"}:
            raise InvalidArgument(f"primitive {name!r} must be a term spec {{name, params}} (weights belong in the "
                                  f"program), got {spec!r}")
        terms.append(build_jax_term(spec, sub))

    def code_of(text: Any) -> dict[str, np.ndarray]:
        if not isinstance(text, str):
            raise ProgramError(f"a program is text, got {text!r}")
        tree = parse(text)
        grammar.validate(tree)
        return encode(tree, names, max_tokens)._asdict()

    def init(n: int) -> tuple:
        return tuple(t.init(n) for t in terms)

    def apply(states, tr, p):
        out, values = [], []
        for t, s in zip(terms, states, strict=True):
            s, v = t.apply(s, tr, {k: jnp.float32(v) for k, v in t.params.items()})
            out.append(s)
            values.append(v.astype(jnp.float32))
        code = ProgramCode(p["kind"], p["index"], p["number"])
        return tuple(out), evaluate(code, jnp.stack(values))

    try:
        default = code_of(program)
    except ProgramError as e:
        raise ConfigError(f"derl_program: {e}") from None
    return JaxTerm(apply, default, init, {"program": code_of})
