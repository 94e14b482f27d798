"""``JaxPPOTrainer``: what ``rewardlab run`` drives for ``agent: jax_ppo`` — every seed of an
experiment in one compiled program, in chunks of updates.

It is a *batched* agent (``batched = True``): instead of ``learn(total_steps, callback)`` per seed,
the experiment runner (``rewardlab.experiment.batched``) calls

- ``init() -> state``: all runs' ``TrainState``s, stacked on a leading axis; a run is a
  (variant, seed) pair (``runs``), one per seed without ``variants``;
- ``run_chunk(state, n_updates) -> (state, rows)``: ``n_updates`` updates of every seed in one
  ``jit(vmap(...))`` call (compiled once per chunk length); ``rows[i]`` are seed ``i``'s
  metrics, one mapping per update, under the log keys of ``rewardlab.core.keys``;
- ``evaluate(state, episodes, deterministic) -> [per-seed dict]``: the current policies on the
  *unshaped* env, on held-out starts (key ``10_000 + seed``, never used in training);
- ``save(state, path)`` / ``load(path) -> state``: the whole stacked state as one ``.npz``.

Training keys are ``PRNGKey(seed)``: seed ``i`` of a batched run computes what a run of seed ``i``
alone computes (``tests/jax/test_jax_ppo.py``). ``variants`` (``reward.variants`` of the file) are
named overrides of the numeric reward parameters (``{"potential.weight": 0.0}``): every variant
trains every seed, with the same keys (a paired comparison), in the same program.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.agents.params import params_from_dict
from rewardlab.core import keys
from rewardlab.errors import ConfigError, RunDirError
from rewardlab.jax.config import JaxPPOConfig
from rewardlab.jax.devices import run_sharding, use_compilation_cache
from rewardlab.jax.envs import make_env
from rewardlab.jax.ppo import TrainState, make_train
from rewardlab.jax.terms import build_jax_stack, stack_params

__all__ = ["JaxPPOTrainer", "EVAL_SEED_OFFSET", "STATE_FILE"]

EVAL_SEED_OFFSET = 10_000
"""evaluation keys are ``PRNGKey(EVAL_SEED_OFFSET + seed)``, as the runner's evaluation seeds"""
STATE_FILE = "jax_state.npz"


class JaxPPOTrainer:
    """All seeds of one ``jax_ppo`` experiment (see the module docstring)."""

    batched = True
    """the experiment runner drives this agent through ``rewardlab.experiment.batched``"""

    def __init__(self, *, env_id: str, env_kwargs: dict[str, Any], n_envs: int, reward_specs: list[Any],
                 clip: tuple[float, float] | None, gamma: float, params: dict[str, Any], total_steps: int,
                 seeds: list[int], variants: dict[str, dict[str, float]] | None = None):
        self.cfg = params_from_dict(JaxPPOConfig, params, agent="jax_ppo")
        use_compilation_cache()
        try:
            self.env = make_env(env_id, **env_kwargs)
        except Exception as e:  # an InvalidArgument naming the bad id/kwarg
            if env_id.startswith(("gymnax/", "minigrid/")):  # a JAX env that could not be built as asked
                raise ConfigError(f"env ({env_id}): {e}") from e
            raise ConfigError(f"env.id: agent jax_ppo needs a JAX env (gymnax/<id> or minigrid/<id>): {e}") from e
        self.stack = build_jax_stack(reward_specs, self.env, gamma=gamma, clip=clip)
        self.ppo = make_train(self.env, self.stack, self.cfg, num_envs=n_envs, total_steps=total_steps, gamma=gamma)
        self.steps_per_update = self.ppo.steps_per_update
        self.num_updates = self.ppo.num_updates
        self.total_steps = self.num_updates * self.steps_per_update
        named = {None: {}} if not variants else variants
        # One run per (variant, seed); a seed's key is the same in every variant (paired comparison).
        self.runs = [(v, s) for v in named for s in seeds]
        self.seeds = [s for _, s in self.runs]
        self.reward_params = stack_params([self.stack.variant_params(named[v], v) for v, _ in self.runs])
        # every leaf of states, keys, reward params and metrics leads with the runs axis: one
        # sharding splits them all over the devices (runs never communicate)
        self._sharding = run_sharding(len(self.runs))
        self._keys = jax.device_put(jnp.stack([jax.random.PRNGKey(s) for s in self.seeds]), self._sharding)
        self.reward_params = jax.device_put(self.reward_params, self._sharding)
        self._chunks: dict[int, Any] = {}
        self._eval: dict[tuple[int, bool], Any] = {}
        self.compile_seconds = 0.0

    # -- training ---------------------------------------------------------------------------
    def init(self) -> TrainState:
        return jax.jit(jax.vmap(self.ppo.init), out_shardings=self._sharding)(self._keys)

    def _chunk_fn(self, n: int) -> Any:
        if n not in self._chunks:
            t = time.perf_counter()
            fn = jax.jit(jax.vmap(lambda s, p: self.ppo.run(s, p, n)), in_shardings=self._sharding,
                         out_shardings=self._sharding)
            state = jax.eval_shape(jax.vmap(self.ppo.init), self._keys)
            self._chunks[n] = fn.lower(state, self.reward_params).compile()
            self.compile_seconds += time.perf_counter() - t
        return self._chunks[n]

    def num_timesteps(self, state: TrainState) -> int:
        return int(np.asarray(state.update)[0]) * self.steps_per_update

    def run_chunk(self, state: TrainState, n_updates: int) -> tuple[TrainState, list[list[dict[str, float]]]]:
        """``n_updates`` updates of every seed; per seed, one metrics mapping per update."""
        fn = self._chunk_fn(n_updates)
        start = self.num_timesteps(state)
        t = time.perf_counter()
        state, m = fn(state, self.reward_params)
        m = jax.tree_util.tree_map(np.asarray, jax.block_until_ready(m))
        seconds = time.perf_counter() - t
        sps = n_updates * self.steps_per_update / max(seconds, 1e-9)  # per seed (all seeds ran side by side)
        rows: list[list[dict[str, float]]] = []
        for i in range(len(self.runs)):
            seed_rows = []
            for u in range(n_updates):
                row = {k: float(v[i, u]) for k, v in m.items() if k.startswith("losses/")}
                row["step"] = start + (u + 1) * self.steps_per_update
                row[keys.SPS] = sps
                n_ep = float(m["episodes"][i, u])
                if n_ep > 0:
                    row[keys.TRUE_RETURN] = float(m["true_return"][i, u]) / n_ep
                    row[keys.SHAPED_RETURN] = float(m["shaped_return"][i, u]) / n_ep
                    row[keys.EPISODE_LENGTH] = float(m["length"][i, u]) / n_ep
                    if self.env.has_success:
                        row[keys.SUCCESS_RATE] = float(m["success"][i, u]) / n_ep
                    for k, name in enumerate(self.stack.names):
                        row[keys.TERM_PREFIX + name] = float(m["terms"][i, u, k]) / n_ep
                seed_rows.append(row)
            rows.append(seed_rows)
        self.last_chunk_seconds = seconds
        return state, rows

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, state: TrainState, episodes: int, deterministic: bool = True) -> list[dict[str, np.ndarray]]:
        """Per seed: ``returns``, ``lengths``, ``successes`` (NaN where the env has no success) of
        ``episodes`` episodes of the unshaped env from held-out starts."""
        k = (episodes, bool(deterministic))
        if k not in self._eval:
            self._eval[k] = jax.jit(jax.vmap(lambda p, key: self.ppo.evaluate(p, key, episodes, deterministic)),
                                    in_shardings=self._sharding, out_shardings=self._sharding)
        eval_keys = jnp.stack([jax.random.PRNGKey(EVAL_SEED_OFFSET + s) for s in self.seeds])
        out = jax.tree_util.tree_map(np.asarray, self._eval[k](state.params, eval_keys))
        res = []
        for i in range(len(self.runs)):
            succ = out["success"][i].astype(np.float64) if self.env.has_success else np.full(episodes, np.nan)
            res.append({"returns": out["true_return"][i].astype(np.float64), "lengths": out["length"][i],
                        "successes": succ})
        return res

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, state: TrainState, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / STATE_FILE, *[np.asarray(x) for x in jax.tree_util.tree_leaves(state)])

    def load(self, path: Path) -> TrainState:
        template = jax.eval_shape(jax.vmap(self.ppo.init), self._keys)
        leaves, treedef = jax.tree_util.tree_flatten(template)
        with np.load(path / STATE_FILE) as data:
            stored = [data[f"arr_{i}"] for i in range(len(data.files))]
        if len(stored) != len(leaves) or any(s.shape != t.shape for s, t in zip(stored, leaves, strict=True)):
            raise RunDirError(f"{path / STATE_FILE} does not match this experiment's jax_ppo state "
                              f"(different seeds, env or network?)")
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(s, t.dtype) for s, t in zip(stored, leaves,
                                                                                             strict=True)])

