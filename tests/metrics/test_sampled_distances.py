"""Sample-based distances: they converge to the exact tabular ones as samples grow, remove
shaping exactly on any sample, and work on rollouts of a real registered env (API and CLI)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rewardlab.cli import main
from rewardlab.errors import InvalidArgument
from rewardlab.metrics import (
    compare_rewards,
    dard_canon_sampled,
    dard_distance,
    distance_from_canon,
    epic_canon_sampled,
    epic_distance,
    parse_metric,
    shape_reward,
    starc_distance,
    tabular_sampler,
)

GAMMA = 0.9
NS, NA = 4, 2


def small_mdp(seed: int = 0):
    rng = np.random.default_rng(seed)
    T = rng.dirichlet(np.ones(NS), size=(NS, NA))
    r1 = rng.normal(size=(NS, NA, NS))
    r2 = r1 + rng.normal(scale=1.0, size=r1.shape)
    return T, r1, r2


def sampled_distances(T, r1, r2, n: int, seed: int) -> dict[str, float]:
    """EPIC and DARD from n uniform (s, a, s') triples, EPIC means from n/4 uniform (a, s') pairs."""
    rng = np.random.default_rng(seed)
    both = lambda s, a, s2: np.stack([r1[s, a, s2], r2[s, a, s2]])  # noqa: E731
    s, a, s2 = rng.integers(0, NS, n), rng.integers(0, NA, n), rng.integers(0, NS, n)
    pairs_a, pairs_s = rng.integers(0, NA, max(n // 4, 1)), rng.integers(0, NS, max(n // 4, 1))
    c_epic = epic_canon_sampled(both, s, a, s2, pairs_a, pairs_s, GAMMA)
    c_dard = dard_canon_sampled(both, s, a, s2, tabular_sampler(T), GAMMA, n_samples=64, rng=rng)
    out = {}
    for name, c in (("epic", c_epic), ("dard", c_dard)):
        out[name] = distance_from_canon(c[0], c[1], parse_metric(name))
        out[f"starc-{name}-l2"] = distance_from_canon(c[0], c[1], parse_metric(f"starc-{name}-l2"))
    return out


def exact_distances(T, r1, r2) -> dict[str, float]:
    return {
        "epic": epic_distance(r1, r2, GAMMA),
        "dard": dard_distance(r1, r2, T, GAMMA),
        "starc-epic-l2": starc_distance(r1, r2, GAMMA, canon="epic"),
        "starc-dard-l2": starc_distance(r1, r2, GAMMA, canon="dard", transitions=T),
    }


def test_sampled_agrees_with_exact_as_samples_grow():
    T, r1, r2 = small_mdp()
    exact = exact_distances(T, r1, r2)
    errors = {}
    for n in (100, 10_000):
        # Mean absolute error over 5 independent sample sets.
        runs = [sampled_distances(T, r1, r2, n, seed) for seed in range(5)]
        errors[n] = {k: float(np.mean([abs(r[k] - exact[k]) for r in runs])) for k in exact}
    for k in exact:
        assert errors[10_000][k] < 0.02, (k, errors)
        assert errors[10_000][k] < errors[100][k], (k, errors)


def test_sampled_canonicalisation_removes_shaping_on_any_sample():
    T, r1, _ = small_mdp(1)
    rng = np.random.default_rng(1)
    shaped = 7.0 * shape_reward(r1, rng.normal(scale=5.0, size=NS), GAMMA)
    both = lambda s, a, s2: np.stack([r1[s, a, s2], shaped[s, a, s2]])  # noqa: E731
    s, a, s2 = rng.integers(0, NS, 30), rng.integers(0, NA, 30), rng.integers(0, NS, 30)
    c = epic_canon_sampled(both, s, a, s2, rng.integers(0, NA, 5), rng.integers(0, NS, 5), GAMMA)
    np.testing.assert_allclose(7.0 * c[0], c[1], atol=1e-9)
    c = dard_canon_sampled(both, s, a, s2, tabular_sampler(T), GAMMA, n_samples=3, rng=rng)
    np.testing.assert_allclose(7.0 * c[0], c[1], atol=1e-9)


def test_metric_names():
    assert parse_metric("starc-minimal-l2-linf").name == "starc-minimal-l2-linf"
    assert parse_metric("raw-l1").name == "raw-l1"
    with pytest.raises(InvalidArgument, match="unknown metric 'epik'; allowed: epic | dard"):
        parse_metric("epik")
    with pytest.raises(InvalidArgument, match="norm 'l3' must be l1, l2 or linf"):
        parse_metric("starc-epic-l3")


# ---- a real registered env ------------------------------------------------------------------

GRID = {"size": 4, "goal": (3, 3), "max_episode_steps": 30}
PHI = {"name": "potential", "params": {"potential": "rewardlab.envs.gridworld:goal_distance",
                                       "params": {"goal": [3, 3], "size": 4}}}
CORNER = {"name": "grid_cell", "params": {"cell": [0, 3], "bonus": 0.2}}


def test_stacks_on_gridworld_rollouts():
    metrics = ["epic", "dard", "starc-epic-l2", "starc-dard-l1", "raw-l2"]
    shaped = compare_rewards("toy/GridWorld-v0", ["env"], ["env", PHI], metrics=metrics, gamma=0.95, samples=3000,
                             env_kwargs=GRID, n_resamples=200)
    by_name = {r.metric: r for r in shaped}
    for name in ("epic", "dard", "starc-epic-l2", "starc-dard-l1"):
        assert by_name[name].value < 1e-5, by_name[name]
        assert by_name[name].ci_high < 1e-5, by_name[name]
    assert by_name["raw-l2"].value > 0.05  # the raw rewards do differ
    other = compare_rewards("toy/GridWorld-v0", ["env"], ["env", CORNER], metrics=metrics, gamma=0.95, samples=3000,
                            env_kwargs=GRID, n_resamples=200)
    for r in other:  # a bonus for standing in a corner changes incentives: clearly > 0
        assert r.value > 0.02 and r.ci_low > 0.01, r
    assert {r.metric: r.value for r in other}["epic"] > 0.1
    assert shaped[0].details["policy"] == "uniform random actions"


def test_a_term_with_memory_across_episodes_is_refused():
    novelty = {"name": "novelty", "params": {"key": "pos", "scope": "global"}}
    with pytest.raises(InvalidArgument, match="keeps memory across episodes"):
        compare_rewards("toy/GridWorld-v0", ["env"], ["env", novelty], samples=200, env_kwargs=GRID, n_resamples=10)


def test_minimal_canon_is_tabular_only():
    with pytest.raises(InvalidArgument, match="minimal canonicalisation needs the whole tabular reward"):
        compare_rewards("toy/GridWorld-v0", ["env"], ["env"], metrics=["starc-minimal-l2"], samples=50,
                        env_kwargs=GRID)


def _write(path, reward, env_kwargs=GRID, gamma=0.95):
    path.write_text(yaml.safe_dump({
        "name": path.stem, "env": {"id": "toy/GridWorld-v0", "n_envs": 4, "kwargs": dict(env_kwargs)},
        "reward": {"terms": reward}, "agent": {"name": "ppo", "gamma": gamma},
    }))
    return str(path)


def _distance_line(text: str, metric: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(metric + ":"))
    return float(line.split()[1])


def test_cli_distance(tmp_path, capsys):
    sparse = _write(tmp_path / "sparse.yaml", ["env"])
    shaped = _write(tmp_path / "shaped.yaml", ["env", PHI])
    corner = _write(tmp_path / "corner.yaml", ["env", CORNER])
    assert main(["distance", sparse, shaped, "--metric", "epic,starc-epic-l2", "--samples", "3000",
                 "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "uniform random actions" in out and "95% CI" in out
    assert _distance_line(out, "epic") < 1e-5 and _distance_line(out, "starc-epic-l2") < 1e-5
    assert main(["distance", sparse, corner, "--metric", "epic", "--samples", "3000", "--resamples", "200"]) == 0
    assert _distance_line(capsys.readouterr().out, "epic") > 0.1


def test_cli_refuses_different_envs_and_bad_metrics(tmp_path, capsys):
    a = _write(tmp_path / "a.yaml", ["env"])
    b = _write(tmp_path / "b.yaml", ["env"], env_kwargs={**GRID, "size": 5})
    assert main(["distance", a, b]) == 2
    assert "both experiments must use the same env" in capsys.readouterr().err
    c = _write(tmp_path / "c.yaml", ["env"], gamma=0.9)
    assert main(["distance", a, c]) == 2
    assert "pass --gamma" in capsys.readouterr().err
    assert main(["distance", a, a, "--metric", "pearson"]) == 2
    assert "unknown metric 'pearson'" in capsys.readouterr().err
    assert main(["distance", a, a, "--samples", "1"]) == 2
    assert "samples must be an integer >= 2, got 1" in capsys.readouterr().err
