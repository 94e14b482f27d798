"""XLand-MiniGrid rulesets for ``minigrid/XLand-MiniGrid-*``: where they come from, and a small
deterministic generator so that the envs work without a download.

An XLand ruleset is a goal, a list of production rules and the objects placed at reset, each
encoded as xminigrid encodes them (``goal.encode()``, ``rule.encode()``, (tile, colour) pairs).
A *benchmark* is many rulesets padded to one shape: xminigrid's bz2 pickle with ``goals``
``(N, 5)``, ``rules`` ``(N, R, 7)``, ``init_tiles`` ``(N, T, 2)``, ``num_rules`` ``(N,)``.

Contents:

- ``generate_rulesets(num_rulesets, chain_depth, seed, num_distractors)``: our generator (below);
  returns the benchmark mapping (numpy arrays);
- ``generated_benchmark_path(...)``: the generated benchmark, cached as a bz2 pickle under
  ``~/.cache/rewardlab/xland`` (or ``$REWARDLAB_XLAND_CACHE``), file name keyed by the parameters;
- ``registered_benchmark_path(name)``: a benchmark xminigrid registers (``trivial-21k``,
  ``small-1m`` ...) if it is already in ``$XLAND_MINIGRID_DATA`` (``~/.xland_minigrid``); if not,
  an error naming the file and the URL to fetch it from: rewardlab never downloads at run time;
- ``load_benchmark(path)`` / ``split_benchmark(bench, split, test_fraction)``: the file as
  xminigrid's ``Benchmark`` pytree, and its train or held-out test part;
- ``decode_goal`` / ``decode_rule`` / ``available_tiles``: an encoding back to xminigrid's goal and
  rule classes, and the tiles a ruleset can ever produce (used by the validity tests).

**The generator.** Following the chains of xminigrid's ``scripts/ruleset_generator.py`` (after
XLand's task sampling), written here: a goal is drawn from ``AgentHoldGoal`` (hold object *t*),
``AgentNearGoal`` (stand next to *t*) and ``TileNearGoal`` (put *a* next to *b*); then, for each of
``chain_depth`` levels, every tile the level above needs becomes the product of a new rule drawn
from ``AgentHoldRule`` (picking up *t* turns it into the product), ``AgentNearRule`` (walking next
to *t* turns it into the product) and ``TileNearRule`` (putting *a* next to *b* turns *b* into the
product), whose inputs are fresh tiles. The inputs of the last level (the goal's own tiles at
depth 0) are placed at reset, plus ``num_distractors`` unused objects. All tiles of a ruleset are
distinct pickable objects, so every goal is achievable in an open room (``tests/jax/test_jax_xland.py``
solves depth-0 rulesets with a scripted agent in the real env). Rulesets are unique within a
benchmark; the same parameters give the same file.
"""

from __future__ import annotations

import bz2
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.errors import InvalidArgument

__all__ = [
    "GENERATOR_VERSION", "GOAL_KINDS", "RULE_KINDS", "OBJECT_TILES", "generate_rulesets",
    "generated_benchmark_path", "registered_benchmark_path", "load_benchmark", "split_benchmark",
    "decode_goal", "decode_rule", "available_tiles", "cache_dir", "SPLITS",
]

GENERATOR_VERSION = 1
"""part of the cache key: bump it when the generator's output changes"""
MAX_CHAIN_DEPTH = 3
MAX_RULESETS = 100_000
MAX_DISTRACTORS = 8
SPLITS = ("train", "test", "all")

# xminigrid's ids (rewardlab.jax does not import xminigrid at module import)
_BALL, _SQUARE, _PYRAMID, _KEY, _HEX, _STAR = 3, 4, 5, 7, 11, 12
_RED, _GREEN, _BLUE, _PURPLE, _YELLOW, _WHITE = 1, 2, 3, 4, 5, 9
OBJECT_TILES = tuple((t, c) for t in (_BALL, _SQUARE, _PYRAMID, _KEY, _HEX, _STAR)
                     for c in (_RED, _GREEN, _BLUE, _PURPLE, _YELLOW, _WHITE))
"""the (tile, colour) pairs rulesets use: pickable objects only (36)"""
GOAL_KINDS = ("AgentHoldGoal", "AgentNearGoal", "TileNearGoal")
RULE_KINDS = ("AgentHoldRule", "AgentNearRule", "TileNearRule")


def cache_dir() -> Path:
    """Where generated benchmarks are cached: ``$REWARDLAB_XLAND_CACHE`` or ``~/.cache/rewardlab/xland``."""
    return Path(os.environ.get("REWARDLAB_XLAND_CACHE") or Path.home() / ".cache" / "rewardlab" / "xland")


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise InvalidArgument(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


class _Sampler:
    """One ruleset at a time from ``rng``; tiles are never reused within a ruleset."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def fresh(self, used: set[tuple[int, int]]) -> tuple[int, int]:
        free = [t for t in OBJECT_TILES if t not in used]
        tile = free[int(self.rng.integers(len(free)))]
        used.add(tile)
        return tile

    def goal(self, used: set) -> tuple[Any, list[tuple[int, int]]]:
        from xminigrid.core import goals

        kind = GOAL_KINDS[int(self.rng.integers(len(GOAL_KINDS)))]
        if kind == "TileNearGoal":
            a, b = self.fresh(used), self.fresh(used)
            return goals.TileNearGoal(tile_a=np.array(a, np.uint8), tile_b=np.array(b, np.uint8)), [a, b]
        t = self.fresh(used)
        return getattr(goals, kind)(tile=np.array(t, np.uint8)), [t]

    def rule(self, product: tuple[int, int], used: set) -> tuple[Any, list[tuple[int, int]]]:
        from xminigrid.core import rules

        kind = RULE_KINDS[int(self.rng.integers(len(RULE_KINDS)))]
        prod = np.array(product, np.uint8)
        if kind == "TileNearRule":
            a, b = self.fresh(used), self.fresh(used)
            rule = rules.TileNearRule(tile_a=np.array(a, np.uint8), tile_b=np.array(b, np.uint8), prod_tile=prod)
            return rule, [a, b]
        t = self.fresh(used)
        return getattr(rules, kind)(tile=np.array(t, np.uint8), prod_tile=prod), [t]

    def ruleset(self, chain_depth: int, num_distractors: int) -> tuple[np.ndarray, list[np.ndarray], list]:
        used: set[tuple[int, int]] = set()
        goal, needed = self.goal(used)
        rules: list[Any] = []
        for _ in range(chain_depth):  # each needed tile becomes the product of a rule on fresh inputs
            inputs: list[tuple[int, int]] = []
            for tile in needed:
                rule, rule_inputs = self.rule(tile, used)
                rules.append(rule)
                inputs += rule_inputs
            needed = inputs
        distractors = [self.fresh(used) for _ in range(num_distractors)]
        return (np.asarray(goal.encode(), np.uint8), [np.asarray(r.encode(), np.uint8) for r in rules],
                needed + distractors)


def generate_rulesets(num_rulesets: int = 256, chain_depth: int = 1, seed: int = 0,
                      num_distractors: int = 2) -> dict[str, Any]:
    """``num_rulesets`` unique rulesets in xminigrid's benchmark layout (see the module docstring).

    >>> b = generate_rulesets(4, chain_depth=0, seed=0)
    >>> b["goals"].shape, b["rules"].shape, b["init_tiles"].shape
    ((4, 5), (4, 1, 7), (4, 4, 2))
    """
    n = _check_int("num_rulesets", num_rulesets, 1, MAX_RULESETS)
    depth = _check_int("chain_depth", chain_depth, 0, MAX_CHAIN_DEPTH)
    k = _check_int("num_distractors", num_distractors, 0, MAX_DISTRACTORS)
    seed = _check_int("ruleset_seed", seed, 0, 2**32 - 1)
    sampler = _Sampler(np.random.default_rng(seed))
    seen: set[bytes] = set()
    out: list[tuple[np.ndarray, list[np.ndarray], list]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            # depth 0 with few distractors has a finite number of distinct rulesets
            raise InvalidArgument(f"num_rulesets: could not draw {n} distinct rulesets with chain_depth={depth}, "
                                  f"num_distractors={k} (found {len(out)}); ask for fewer")
        goal, rules, tiles = sampler.ruleset(depth, k)
        key = goal.tobytes() + b"".join(r.tobytes() for r in rules) + np.asarray(tiles, np.uint8).tobytes()
        if key in seen:
            continue
        seen.add(key)
        out.append((goal, rules, tiles))
    max_rules = max(1, *(len(r) for _, r, _ in out))
    max_tiles = max(len(t) for _, _, t in out)
    goals = np.stack([g for g, _, _ in out])
    rules = np.zeros((n, max_rules, 7), np.uint8)  # padding: EmptyRule, encoded as zeros
    tiles = np.zeros((n, max_tiles, 2), np.uint8)  # padding: the EMPTY tile, never placed
    for i, (_, rs, ts) in enumerate(out):
        if rs:
            rules[i, :len(rs)] = np.stack(rs)
        tiles[i, :len(ts)] = np.asarray(ts, np.uint8)
    return {
        "goals": goals, "rules": rules, "init_tiles": tiles,
        "num_rules": np.asarray([len(rs) for _, rs, _ in out], np.uint8),
        "generation_config": {"generator": "rewardlab", "version": GENERATOR_VERSION, "num_rulesets": n,
                              "chain_depth": depth, "seed": seed, "num_distractors": k},
    }


def _save(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with bz2.open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=4)
    os.replace(tmp, path)  # atomic: a concurrent run reads the old file or the whole new one


def generated_benchmark_path(num_rulesets: int = 256, chain_depth: int = 1, seed: int = 0,
                             num_distractors: int = 2) -> Path:
    """The generated benchmark's cached file (generated on first use)."""
    n = _check_int("num_rulesets", num_rulesets, 1, MAX_RULESETS)
    d = _check_int("chain_depth", chain_depth, 0, MAX_CHAIN_DEPTH)
    k = _check_int("num_distractors", num_distractors, 0, MAX_DISTRACTORS)
    s = _check_int("ruleset_seed", seed, 0, 2**32 - 1)
    path = cache_dir() / f"generated-v{GENERATOR_VERSION}-n{n}-d{d}-x{k}-s{s}.pkl.bz2"
    if not path.exists():
        _save(generate_rulesets(n, d, s, k), path)
    return path


def registered_benchmark_path(name: str) -> Path:
    """The local file of xminigrid's registered benchmark ``name``; never downloads."""
    from xminigrid import benchmarks

    if name not in benchmarks.NAME2HFFILENAME:
        raise InvalidArgument(f"benchmark: unknown XLand benchmark {name!r}; registered: "
                              f"{', '.join(benchmarks.registered_benchmarks())}")
    filename = benchmarks.NAME2HFFILENAME[name]
    data = Path(os.environ.get("XLAND_MINIGRID_DATA") or Path.home() / ".xland_minigrid")
    path = data / filename
    if not path.exists():
        repo = os.environ.get("XLAND_MINIGRID_HF_REPO_ID", "Howuhh/xland_minigrid")
        url = f"https://huggingface.co/datasets/{repo}/resolve/main/{filename}"
        raise InvalidArgument(
            f"benchmark: XLand benchmark {name!r} is not on this machine: {path} does not exist. "
            f"rewardlab never downloads at run time; download it first ({url} saved as {path}, "
            f"e.g. `python -c \"import xminigrid; xminigrid.load_benchmark('{name}')\"` on a machine with "
            f"internet), set XLAND_MINIGRID_DATA to the folder holding it, use benchmark_path: <file>, "
            f"or the default rulesets: generated")
    return path


def load_benchmark(path: str | Path) -> Any:
    """A benchmark file (xminigrid's bz2 pickle) as xminigrid's ``Benchmark`` (numpy leaves)."""
    from xminigrid.benchmarks import Benchmark

    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgument(f"benchmark_path: {path} is not a file")
    try:
        with bz2.open(path, "rb") as f:
            data = pickle.load(f)  # noqa: S301 - a benchmark file the user named, as xminigrid loads it
        bench = Benchmark(goals=np.asarray(data["goals"], np.uint8), rules=np.asarray(data["rules"], np.uint8),
                          init_tiles=np.asarray(data["init_tiles"], np.uint8),
                          num_rules=np.asarray(data["num_rules"]).reshape(len(data["goals"])))
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise InvalidArgument(f"benchmark_path: {path} is not an XLand benchmark file "
                              f"(a bz2 pickle with goals, rules, init_tiles, num_rules): {e}") from e
    if bench.rules.ndim != 3 or bench.init_tiles.ndim != 3 or len(bench.rules) != len(bench.goals):
        raise InvalidArgument(f"benchmark_path: {path} has inconsistent shapes: goals {bench.goals.shape}, "
                              f"rules {bench.rules.shape}, init_tiles {bench.init_tiles.shape}")
    return bench


def split_benchmark(bench: Any, split: str = "all", test_fraction: float = 0.2) -> Any:
    """The ``train`` or held-out ``test`` part of ``bench`` (or ``all`` of it).

    The rulesets are put in a fixed random order (NumPy seed 0, whatever the file's order) and
    the last ``round(test_fraction · N)`` (at least 1) are the test part; the two parts never
    share a ruleset, and the split depends only on the benchmark and ``test_fraction``.
    """
    if split not in SPLITS:
        raise InvalidArgument(f"ruleset_split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "all":
        return bench
    if not 0.0 < test_fraction < 1.0:
        raise InvalidArgument(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n = len(bench.goals)
    n_test = max(1, round(test_fraction * n))
    if n - n_test < 1:
        raise InvalidArgument(f"ruleset_split: {n} ruleset(s) cannot be split into train and test "
                              f"(test_fraction {test_fraction}); use ruleset_split: all or more rulesets")
    order = np.random.default_rng(0).permutation(n)
    idx = np.sort(order[n - n_test:] if split == "test" else order[:n - n_test])
    return type(bench)(goals=bench.goals[idx], rules=bench.rules[idx], init_tiles=bench.init_tiles[idx],
                       num_rules=bench.num_rules[idx])


def decode_goal(encoding: Any) -> Any:
    """A goal encoding as xminigrid's goal object (``EmptyGoal`` … ``AgentNearLeftGoal``)."""
    from xminigrid.core import goals

    kinds = (goals.EmptyGoal, goals.AgentHoldGoal, goals.AgentOnTileGoal, goals.AgentNearGoal, goals.TileNearGoal,
             goals.TileOnPositionGoal, goals.AgentOnPositionGoal, goals.TileNearUpGoal, goals.TileNearRightGoal,
             goals.TileNearDownGoal, goals.TileNearLeftGoal, goals.AgentNearUpGoal, goals.AgentNearRightGoal,
             goals.AgentNearDownGoal, goals.AgentNearLeftGoal)  # the order of xminigrid's check_goal switch
    enc = np.asarray(encoding)
    if not 0 <= int(enc[0]) < len(kinds):
        raise InvalidArgument(f"goal encoding {enc.tolist()}: unknown goal id {int(enc[0])}")
    return kinds[int(enc[0])].decode(enc)


def decode_rule(encoding: Any) -> Any:
    """A rule encoding as xminigrid's rule object (``EmptyRule`` … ``AgentNearLeftRule``)."""
    from xminigrid.core import rules

    kinds = (rules.EmptyRule, rules.AgentHoldRule, rules.AgentNearRule, rules.TileNearRule, rules.TileNearUpRule,
             rules.TileNearRightRule, rules.TileNearDownRule, rules.TileNearLeftRule, rules.AgentNearUpRule,
             rules.AgentNearRightRule, rules.AgentNearDownRule, rules.AgentNearLeftRule)  # check_rule's order
    enc = np.asarray(encoding)
    if not 0 <= int(enc[0]) < len(kinds):
        raise InvalidArgument(f"rule encoding {enc.tolist()}: unknown rule id {int(enc[0])}")
    return kinds[int(enc[0])].decode(enc)


def _tiles(obj: Any, *names: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in np.asarray(getattr(obj, n))) for n in names if hasattr(obj, n)]


def available_tiles(rules: Any, init_tiles: Any) -> set[tuple[int, int]]:
    """Every tile a ruleset can ever have: the placed ones, closed under its production rules
    (a rule fires once all its input tiles can exist)."""
    have = {tuple(int(v) for v in t) for t in np.asarray(init_tiles) if t[0] != 0}
    decoded = [decode_rule(r) for r in np.asarray(rules)]
    changed = True
    while changed:
        changed = False
        for rule in decoded:
            inputs = _tiles(rule, "tile", "tile_a", "tile_b")
            if inputs and all(t in have for t in inputs):
                prod = _tiles(rule, "prod_tile")[0]
                if prod not in have:
                    have.add(prod)
                    changed = True
    return have
