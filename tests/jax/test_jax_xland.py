"""XLand-MiniGrid on the pure-JAX path: our ruleset generator (deterministic, valid, achievable),
the env (a ruleset sampled inside the vmapped reset, held-out rulesets for evaluation), the
benchmark sources (a missing xminigrid benchmark is an error, never a download), the Gymnasium
vector adapter and ``jax_ppo`` through ``rewardlab run``."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("xminigrid")

import jax.numpy as jnp  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.cli import main  # noqa: E402
from rewardlab.errors import InvalidArgument  # noqa: E402
from rewardlab.jax import xland_rulesets as xr  # noqa: E402
from rewardlab.jax.envs import XLandEnv, make_env  # noqa: E402

ENV = "minigrid/XLand-MiniGrid-R1-9x9"
FLOOR, WALKABLE = 1, (1, 6, 10)  # xminigrid: FLOOR; FLOOR, GOAL, DOOR_OPEN
DIRS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # xminigrid's up, right, down, left as (row, col)
FORWARD, RIGHT, LEFT, PICK_UP, PUT_DOWN = 0, 1, 2, 3, 4


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Generated benchmarks go to a fresh folder, never the user's cache."""
    monkeypatch.setenv("REWARDLAB_XLAND_CACHE", str(tmp_path / "xland_cache"))


# -- the generator ------------------------------------------------------------------------------
def test_generator_is_deterministic_and_its_rulesets_are_distinct():
    a = xr.generate_rulesets(64, chain_depth=1, seed=3)
    b = xr.generate_rulesets(64, chain_depth=1, seed=3)
    c = xr.generate_rulesets(64, chain_depth=1, seed=4)
    for k in ("goals", "rules", "init_tiles", "num_rules"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["goals"], c["goals"])
    rows = {a["goals"][i].tobytes() + a["rules"][i].tobytes() + a["init_tiles"][i].tobytes() for i in range(64)}
    assert len(rows) == 64
    # the cached file holds the same arrays, under a name keyed by the parameters
    path = xr.generated_benchmark_path(64, chain_depth=1, seed=3)
    assert path.name == "generated-v1-n64-d1-x2-s3.pkl.bz2" and path.parent == xr.cache_dir()
    np.testing.assert_array_equal(xr.load_benchmark(path).rules, a["rules"])
    assert xr.generated_benchmark_path(64, chain_depth=1, seed=4) != path


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_generated_rulesets_decode_to_xminigrid_types_and_their_goals_can_be_produced(depth):
    from xminigrid.core.goals import AgentHoldGoal, AgentNearGoal, TileNearGoal
    from xminigrid.core.rules import AgentHoldRule, AgentNearRule, EmptyRule, TileNearRule

    b = xr.generate_rulesets(200, chain_depth=depth, seed=depth, num_distractors=2)
    kinds = set()
    for goal, rules, tiles, n_rules in zip(b["goals"], b["rules"], b["init_tiles"], b["num_rules"], strict=True):
        g = xr.decode_goal(goal)
        assert isinstance(g, AgentHoldGoal | AgentNearGoal | TileNearGoal)
        np.testing.assert_array_equal(np.asarray(g.encode()), goal)  # decode . encode round-trips
        kinds.add(type(g).__name__)
        decoded = [xr.decode_rule(r) for r in rules]
        assert all(isinstance(r, AgentHoldRule | AgentNearRule | TileNearRule) for r in decoded[:n_rules])
        assert all(isinstance(r, EmptyRule) for r in decoded[n_rules:])  # padding
        goal_tiles = [tuple(int(v) for v in np.asarray(getattr(g, f))) for f in ("tile", "tile_a", "tile_b")
                      if hasattr(g, f)]
        placed = {tuple(int(v) for v in t) for t in tiles if t[0] != 0}
        assert len(placed) == int((tiles[:, 0] != 0).sum())  # distinct objects
        assert placed <= set(xr.OBJECT_TILES)
        # every goal tile exists at reset or is produced by the rule chain ...
        assert set(goal_tiles) <= xr.available_tiles(rules, tiles)
        if depth > 0:  # ... and with a chain, only through it: none is placed at reset
            assert not set(goal_tiles) & placed
            assert n_rules >= depth
    assert kinds == set(xr.GOAL_KINDS)


def test_generator_refuses_bad_parameters():
    with pytest.raises(InvalidArgument, match="chain_depth must be an integer in"):
        xr.generate_rulesets(4, chain_depth=7)
    with pytest.raises(InvalidArgument, match="num_rulesets"):
        xr.generate_rulesets(0)


# -- depth 0: a scripted agent solves every ruleset in the real env ---------------------------
def _plan(grid: np.ndarray, pos: tuple[int, int], d: int, target) -> list[int]:
    """Shortest turn/forward actions until the cell in front satisfies ``target(row, col)``."""
    h, w = grid.shape[:2]
    start = (pos[0], pos[1], d)
    prev: dict = {start: None}
    queue = deque([start])
    while queue:
        r, c, d = queue.popleft()
        fr, fc = r + DIRS[d][0], c + DIRS[d][1]
        if 0 <= fr < h and 0 <= fc < w and target(fr, fc):
            actions, node = [], (r, c, d)
            while prev[node] is not None:
                node, a = prev[node]
                actions.append(a)
            return actions[::-1]
        moves = [((r, c, (d + 1) % 4), RIGHT), ((r, c, (d - 1) % 4), LEFT)]
        if 0 <= fr < h and 0 <= fc < w and grid[fr, fc, 0] in WALKABLE:
            moves.append(((fr, fc, d), FORWARD))
        for nxt, a in moves:
            if nxt not in prev:
                prev[nxt] = ((r, c, d), a)
                queue.append(nxt)
    raise AssertionError("no plan")


def _is(grid, tile):
    return lambda r, c: tuple(grid[r, c]) == tuple(tile)


def _free_next_to(grid, tile):
    def ok(r, c):
        if grid[r, c, 0] != FLOOR:
            return False
        return any(tuple(grid[r + dr, c + dc]) == tuple(tile) for dr, dc in DIRS
                   if 0 <= r + dr < grid.shape[0] and 0 <= c + dc < grid.shape[1])
    return ok


@pytest.mark.slow  # compiles xminigrid's step (10-40 s on 2 busy cores)
def test_depth0_goals_are_reached_by_a_scripted_agent_in_the_env():
    env = XLandEnv("XLand-MiniGrid-R1-9x9", num_rulesets=24, chain_depth=0, ruleset_split="all")
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    kinds = set()
    for i in range(24):
        obs, ts = reset(jax.random.PRNGKey(i))
        goal = xr.decode_goal(np.asarray(ts.state.goal_encoding))
        kind = type(goal).__name__
        kinds.add(kind)

        def run(actions, ts):
            """The actions until the goal is reached (walking past the object reaches an AgentNearGoal)."""
            for a in actions:
                _, ts, reward, term, _, info = step(jax.random.PRNGKey(0), ts, jnp.int32(a))
                if bool(info["success"]):
                    return ts, True, float(reward)
            return ts, False, 0.0

        def here(ts):
            s = ts.state
            return np.asarray(s.grid), tuple(int(v) for v in s.agent.position), int(s.agent.direction)

        grid, pos, d = here(ts)
        if kind == "AgentHoldGoal":
            ts, success, reward = run(_plan(grid, pos, d, _is(grid, goal.tile)) + [PICK_UP], ts)
        elif kind == "AgentNearGoal":  # face the object, then step against it (the check runs on forward)
            ts, success, reward = run(_plan(grid, pos, d, _is(grid, goal.tile)) + [FORWARD], ts)
        else:  # TileNearGoal: pick up b, put it down next to a
            ts, success, _ = run(_plan(grid, pos, d, _is(grid, goal.tile_b)) + [PICK_UP], ts)
            assert not success
            grid, pos, d = here(ts)
            ts, success, reward = run(_plan(grid, pos, d, _free_next_to(grid, goal.tile_a)) + [PUT_DOWN], ts)
        assert success and reward > 0, (i, kind)
    assert kinds == set(xr.GOAL_KINDS)


# -- the env ------------------------------------------------------------------------------------
def _ruleset_keys(goals, rules) -> set[bytes]:
    return {np.asarray(g).tobytes() + np.asarray(r).tobytes() for g, r in zip(goals, rules, strict=True)}


@pytest.mark.slow  # compiles xminigrid's step (10-40 s on 2 busy cores)
def test_reset_samples_a_ruleset_under_vmap_and_evaluation_samples_held_out_ones():
    env = make_env(ENV, num_rulesets=40, chain_depth=1, ruleset_seed=1)
    assert (env.num_train_rulesets, env.num_eval_rulesets) == (32, 8)
    train = _ruleset_keys(env.default_params.benchmark.goals, env.default_params.benchmark.rules)
    test = _ruleset_keys(env.eval_params.benchmark.goals, env.eval_params.benchmark.rules)
    assert not train & test

    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    obs, ts = reset(keys, env.default_params)
    got = _ruleset_keys(ts.state.goal_encoding, ts.state.rule_encoding)
    assert got <= train and len(got) > 16  # many rulesets, all from the training part
    _, ets = reset(keys, env.eval_params)
    got_eval = _ruleset_keys(ets.state.goal_encoding, ets.state.rule_encoding)
    assert got_eval <= test and len(got_eval) == 8
    assert obs.shape == (256, 5, 5, 2) and obs.dtype == jnp.uint8
    # the placed objects are the ruleset's initial tiles
    tiles = np.asarray(ts.state.grid).reshape(256, -1, 2)
    assert all((tiles[:, :, 0] >= 3).sum(1) >= 2)

    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    actions = jax.random.randint(jax.random.PRNGKey(1), (256,), 0, env.num_actions)
    obs2, ts2, reward, term, trunc, info = step(keys, ts, actions, env.default_params)
    assert obs2.shape == obs.shape and reward.shape == (256,) and info["success"].shape == (256,)
    assert set(info["features"]) >= {"agent_pos", "agent_dir", "at_goal"}
    assert np.all(np.asarray(ts2.state.step_num) == 1)


def test_goal_obs_appends_the_goal_to_the_view():
    from rewardlab.jax.envs import _spaces

    env = make_env(ENV, num_rulesets=16, chain_depth=0, goal_obs=True)
    obs, ts = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.PRNGKey(0), 32),
                                                              env.default_params)
    obs, goals = np.asarray(obs), np.asarray(ts.state.goal_encoding)
    assert env.obs_shape == (6, 5, 2) and obs.shape == (32, 6, 5, 2)
    np.testing.assert_array_equal(obs[:, 5, 0, 0], goals[:, 0])  # goal id (AgentHold 1, AgentNear 3, TileNear 4)
    np.testing.assert_array_equal(obs[:, 5, 1], goals[:, 1:3])
    np.testing.assert_array_equal(obs[:, 5, 2], goals[:, 3:5])
    assert (obs[:, 5, 3:] == 0).all() and len(set(map(bytes, obs[:, 5]))) > 4
    assert all(_spaces(env)[0].contains(o) for o in obs)


def test_ruleset_split_parts_are_disjoint_and_cover_the_benchmark():
    bench = xr.load_benchmark(xr.generated_benchmark_path(50, chain_depth=1, seed=0))
    tr, te = xr.split_benchmark(bench, "train", 0.2), xr.split_benchmark(bench, "test", 0.2)
    assert (len(tr.goals), len(te.goals)) == (40, 10)
    everything = _ruleset_keys(bench.goals, bench.rules)
    assert _ruleset_keys(tr.goals, tr.rules) | _ruleset_keys(te.goals, te.rules) == everything
    assert xr.split_benchmark(bench, "all") is bench
    with pytest.raises(InvalidArgument, match="ruleset_split must be one of"):
        xr.split_benchmark(bench, "valid")
    one = xr.load_benchmark(xr.generated_benchmark_path(1, chain_depth=0, seed=0))
    with pytest.raises(InvalidArgument, match="cannot be split"):
        xr.split_benchmark(one, "train")


# -- benchmark sources --------------------------------------------------------------------------
def test_a_missing_xminigrid_benchmark_is_an_error_naming_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("XLAND_MINIGRID_DATA", str(tmp_path / "data"))
    with pytest.raises(InvalidArgument) as e:
        make_env(ENV, benchmark="trivial-21k")
    msg = str(e.value)
    assert "never downloads at run time" in msg
    assert "https://huggingface.co/datasets/Howuhh/xland_minigrid/resolve/main/trivial_21k" in msg
    assert str(tmp_path / "data" / "trivial_21k") in msg
    assert not (tmp_path / "data").exists()  # nothing fetched, nothing created
    with pytest.raises(InvalidArgument, match="unknown XLand benchmark 'tiny'; registered: trivial-21k"):
        make_env(ENV, benchmark="tiny")
    # once the file is there (here: one of ours under xminigrid's file name) it is loaded
    (tmp_path / "data").mkdir()
    src = xr.generated_benchmark_path(10, chain_depth=1, seed=5)
    (tmp_path / "data" / "trivial_21k").write_bytes(src.read_bytes())
    env = make_env(ENV, benchmark="trivial-21k", ruleset_split="all")
    assert env.num_train_rulesets == 10 and env.benchmark_file == str(tmp_path / "data" / "trivial_21k")


def test_benchmark_path_loads_a_file_and_refuses_other_files(tmp_path):
    src = xr.generated_benchmark_path(12, chain_depth=2, seed=1)
    env = make_env(ENV, benchmark_path=str(src), ruleset_split="test", test_fraction=0.25)
    assert env.num_train_rulesets == env.num_eval_rulesets == 3
    bad = tmp_path / "bad.pkl.bz2"
    bad.write_bytes(b"not a benchmark")
    with pytest.raises(InvalidArgument, match="is not an XLand benchmark file"):
        make_env(ENV, benchmark_path=str(bad))
    with pytest.raises(InvalidArgument, match="not both"):
        make_env(ENV, benchmark="trivial-21k", benchmark_path=str(src))


# -- the Gymnasium adapter and jax_ppo ----------------------------------------------------------
@pytest.mark.slow  # compiles xminigrid's step (10-40 s on 2 busy cores)
def test_make_vec_runs_xland_as_the_minigrid_envs():
    venv = rewardlab.make_vec(ENV, 4, reward=["env"], num_rulesets=16, chain_depth=1)
    obs, info = venv.reset(seed=0)
    assert obs.shape == (4, 5, 5, 2) and info["agent_pos"].shape == (4, 2)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(250):  # past the 243-step time limit: every episode ends at least once
        obs, reward, term, trunc, info = venv.step(rng.integers(0, 6, 4))
        if (term | trunc).any():
            ended += int((term | trunc).sum())
            assert "is_success" in info["final_info"] and info["final_obs"].shape == obs.shape
    assert ended >= 4
    env = rewardlab.make(ENV, num_rulesets=16, chain_depth=1)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.slow
def test_jax_ppo_trains_on_generated_xland_through_rewardlab_run(tmp_path):
    """Run-through (no learning assertion): 2 seeds, 4 updates, evaluation on held-out rulesets."""
    code = main(["run", "experiments/jax_ppo_xland.yaml", "--seeds", "0,1",
                 "--set", f"log.dir={tmp_path / 'runs'}", "--set", "train.total_steps=1024",
                 "--set", "env.n_envs=8", "--set", "agent.params.n_steps=32",
                 "--set", "eval.every_steps=1024", "--set", "eval.episodes=8", "--set", "eval.final_episodes=8",
                 "--set", "log.checkpoint_every=1024", "--set", "env.kwargs.num_rulesets=32"])
    assert code == 0
    (run,) = (tmp_path / "runs").iterdir()
    for seed in (0, 1):
        final = json.loads((run / f"seed_{seed}" / "final_eval.json").read_text())
        assert final["episodes"] == 8 and 0.0 <= final["success_rate"] <= 1.0
        rows = [json.loads(line) for line in (run / f"seed_{seed}" / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows if r["kind"] == "train"] == [256, 512, 768, 1024]
        assert rows[-1]["kind"] == "final"
