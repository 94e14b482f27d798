"""The JAX DERL program interpreter: the twin of the numpy ``derl_program`` term on recorded
MiniGrid transitions (random programs of the grammar and one per operator), programs as variant
parameters (one compiled step, many programs) and the errors."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("xminigrid")

import jax.numpy as jnp  # noqa: E402

from rewardlab.derl.search import sample_uniform  # noqa: E402
from rewardlab.errors import ConfigError  # noqa: E402
from rewardlab.jax.envs import JaxVectorEnv  # noqa: E402
from rewardlab.jax.program import encode, evaluate  # noqa: E402
from rewardlab.jax.terms import build_jax_stack, stack_params  # noqa: E402
from rewardlab.shaping.derl_program import Grammar, from_tokens, to_text  # noqa: E402

GAMMA = 0.9
PRIMITIVES = {
    "env": {"name": "env"},
    "step": {"name": "step_penalty", "params": {"value": 0.02}},
    "progress": {"name": "potential", "params": {"potential": "minigrid/doorkey_progress"}},
    "key": {"name": "pickup", "params": {"item": "key"}},
    "novel": {"name": "novelty", "params": {"key": "agent_pos", "scope": "episode"}},
}
HAND = [  # every operator at least once, nested
    "gate(key, add(progress, scale(3, env)))",
    "clip(mul(novel, progress), 0.3)",
    "add(gt(progress, 0.05), scale(-0.1, step))",
    "gate(gt(novel, 0.3), clip(add(key, env), 1))",
]



def _specs(programs: list[str]) -> list[dict]:
    return [{"name": "derl_program", "as": f"p{i}", "params": {"program": p, "primitives": PRIMITIVES,
                                                               "max_tokens": 16}}
            for i, p in enumerate(programs)]


def test_jax_programs_equal_the_numpy_derl_program_on_minigrid_transitions(twin_steps):
    grammar = Grammar(list(PRIMITIVES), max_tokens=12, max_depth=4)
    rng = np.random.default_rng(0)
    programs = HAND + [to_text(from_tokens(sample_uniform(grammar, rng))) for _ in range(12)]
    names = [f"p{i}" for i in range(len(programs))]
    nonzero = dict.fromkeys(names, 0)
    for parts, _, _, info in twin_steps(_specs(programs), n=8, steps=300, seed=5, rng=rng, gamma=GAMMA):
        for name, program in zip(names, programs, strict=True):
            np.testing.assert_allclose(parts[name], info["reward_terms"][name], rtol=1e-5, atol=1e-6, err_msg=program)
            nonzero[name] += int((parts[name] != 0).sum())
    # The hand-written programs must have produced values, or the comparison proved little.
    assert all(nonzero[f"p{i}"] > 0 for i in range(len(HAND))), nonzero


def test_programs_are_variant_parameters_of_one_compiled_evaluation():
    names = ["env", "progress"]
    values = jnp.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    texts = ["add(env, progress)", "gate(progress, scale(3, env))", "clip(env, 0.3)"]
    codes = stack_params([encode(t, names, 8)._asdict() for t in texts])
    batched = jax.jit(jax.vmap(lambda c: evaluate(type(encode(texts[0], names, 8))(**c), values)))(codes)
    np.testing.assert_allclose(np.asarray(batched), [[1.5, 2.0, -1.0], [3.0, 0.0, 0.0], [0.3, 0.0, -0.3]])


def test_variant_programs_and_bad_programs():
    venv = JaxVectorEnv("minigrid/MiniGrid-DoorKey-5x5", 2)
    stack = build_jax_stack(_specs(["env"]), venv.env, gamma=GAMMA)
    p = stack.variant_params({"p0.program": "scale(3, key)"})["p0"]
    assert np.asarray(p["kind"]).shape == (16,) and np.asarray(p["kind"])[:3].tolist() == [1, 2, 5]
    with pytest.raises(ConfigError, match=r"reward.variants.v.p0.program: unknown primitive 'bonus'"):
        stack.variant_params({"p0.program": "add(env, bonus)"}, "v")
    with pytest.raises(ConfigError, match="JAX reward term 'derl_program': derl_program: "):
        build_jax_stack(_specs(["add(env,"]), venv.env)
    too_long = "add(env, " * 8 + "env" + ")" * 8   # 17 tokens; the term holds max_tokens = 16
    with pytest.raises(ConfigError, match="reward.variants.v.p0.program: .*17"):
        stack.variant_params({"p0.program": too_long}, "v")
