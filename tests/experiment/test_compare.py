"""``rewardlab compare``: variants × seeds through the runner, the table = rliable on the run dirs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_config_and_cli import BASE, run_cli, write

from rewardlab.errors import ConfigError
from rewardlab.experiment.compare import parse_seeds, parse_variant

PENALTY = "penalty=--set reward.terms.step_penalty.params.value=0.5 --set agent.gamma=0.9"


def rliable_iqm(x, reps):
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(0)  # rliable 1.2 draws bootstrap indices from the global RNG
    p, ci = rly.get_interval_estimates({"k": np.asarray(x)[:, None]}, lambda s: np.array([metrics.aggregate_iqm(s)]),
                                       reps=reps)
    return p["k"][0], ci["k"][0][0], ci["k"][1][0]


def rliable_poi(x, y, reps):
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(0)
    p, ci = rly.get_interval_estimates({"k": (np.asarray(x)[:, None], np.asarray(y)[:, None])},
                                       metrics.probability_of_improvement, reps=reps)
    return float(np.ravel(p["k"])[0]), *np.ravel(ci["k"])[:2]


def finals_of(folder):
    dirs = sorted(folder.glob("*/seed_*"), key=lambda d: int(d.name.split("_")[1]))
    return [json.loads((d / "final_eval.json").read_text())["true_return_mean"] for d in dirs]


def test_compare_table_is_rliable_on_the_run_dirs_and_rerun_skips(tmp_path, capsys):
    file = write(tmp_path, {**BASE, "train": {"total_steps": 256}})
    out = tmp_path / "cmp"
    argv = ["compare", file, "--variant", PENALTY, "--seeds", "0-2", "--out", out, "--reps", "500", "--quiet"]
    code, text = run_cli(capsys, *argv)
    assert code == 0, text
    assert json.loads((out / "compare.json").read_text())["variants"][1] == {
        "name": "penalty", "overrides": ["reward.terms.step_penalty.params.value=0.5", "agent.gamma=0.9"]}
    base, pen = finals_of(out / "base"), finals_of(out / "penalty")
    assert len(base) == len(pen) == 3
    res = json.loads((out / "results.json").read_text())
    rows = {v["name"]: v for v in res["variants"]}
    for name, finals in (("base", base), ("penalty", pen)):
        iqm, lo, hi = rliable_iqm(finals, 500)
        got = rows[name]["final_true_return_iqm"]
        assert (got["value"], got["low"], got["high"]) == pytest.approx((iqm, lo, hi))
        assert f"{name} │ 3 │ {iqm:.3f} │ [{lo:.3f}, {hi:.3f}]".split() == \
            text[text.index(f"{name} │ 3"):].split()[:8]
    p, lo, hi = rliable_poi(pen, base, 500)
    got = rows["penalty"]["probability_of_improvement"]
    assert (got["value"], got["low"], got["high"]) == pytest.approx((p, lo, hi))
    assert f"{p:.2f} │ [{lo:.2f}, {hi:.2f}]" in text
    assert rows["base"]["probability_of_improvement"] is None and "(baseline)" in text
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # the penalty variant's config really has the overrides
    import yaml

    cfg = yaml.safe_load(next((out / "penalty").glob("*/config.yaml")).read_text())
    assert cfg["agent"]["gamma"] == 0.9 and cfg["train"]["seeds"] in ([0], [1], [2])
    assert cfg["reward"]["terms"][1]["params"]["value"] == 0.5

    # the same command again: nothing retrains, the table is the same
    mtimes = {p: p.stat().st_mtime for p in out.glob("*/*/seed_*/final_eval.json")}
    code, again = run_cli(capsys, *argv)
    assert code == 0 and again.count("finished earlier, skipped") == 6
    assert {p: p.stat().st_mtime for p in out.glob("*/*/seed_*/final_eval.json")} == mtimes
    table = again[again.index("final evaluation true"):again.index("wrote")]
    assert table in text
    # --from re-reports without training, and NAME=RUN_DIR items work too
    code, from_dir = run_cli(capsys, "compare", "--from", out, "--reps", "500")
    assert code == 0 and table in from_dir
    code, named = run_cli(capsys, "compare", "--from", f"b={out / 'base'}", f"p={out / 'penalty' / '*'}",
                          "--out", tmp_path / "named", "--reps", "500")
    assert code == 0 and f"p │ 3 │ {rows['penalty']['final_true_return_iqm']['value']:.3f}" in named
    assert (tmp_path / "named" / "compare.png").is_file()

    # a changed variant into the same directory is refused, not mixed in
    code, msg = run_cli(capsys, "compare", file, "--variant", "penalty=--set agent.gamma=0.8", "--seeds", "0",
                        "--out", out, "--quiet")
    assert code == 2 and "holds variant 'penalty', seed 0 with a different config (sections agent" in msg


def test_compare_resumes_an_interrupted_run(tmp_path, capsys):
    file = write(tmp_path, {**BASE, "train": {"total_steps": 256}})
    out = tmp_path / "cmp"
    argv = ["compare", file, "--seeds", "0", "--out", out, "--reps", "200", "--quiet", "--no-base",
            "--variant", "only=--set agent.gamma=0.95"]
    assert run_cli(capsys, *argv)[0] == 0
    seed_dir = next(out.glob("only/*/seed_0"))
    (seed_dir / "final_eval.json").unlink()   # as if killed before the final evaluation
    (seed_dir / "status.json").write_text(json.dumps({"status": "interrupted", "step": 128}))
    code, text = run_cli(capsys, *argv)
    assert code == 0 and "only seed 0: final true return" in text and "skipped" not in text
    assert len(list(out.glob("only/*"))) == 1  # resumed in place, no second run directory
    assert (seed_dir / "final_eval.json").is_file()


@pytest.mark.parametrize(("variant", "message"), [
    ("--set reward.terms=[env]", "expected NAME=\"--set KEY=VALUE"),
    ("sparse", "expected NAME=\"--set KEY=VALUE"),
    ("sparse=reward.terms=[env]", "unexpected 'reward.terms=[env]'"),
    ("sparse=--set", "--set at the end has no KEY=VALUE"),
    ("sparse=--set reward.terms", "--set expects KEY=VALUE, got 'reward.terms'"),
    ("a/b=--set x=1", "must be letters, digits"),
    ("sparse=--set 'unclosed", "cannot split"),
])
def test_malformed_variants(variant, message):
    with pytest.raises(ConfigError) as e:
        parse_variant(variant)
    assert message in str(e.value)


@pytest.mark.parametrize(("text", "seeds"), [("0-4", [0, 1, 2, 3, 4]), ("0,1,2", [0, 1, 2]), ("3", [3]),
                                             ("0-1, 5", [0, 1, 5]), ("1,1,0-1", [1, 0])])
def test_seed_ranges(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["4-2", "a", "0-", "", "1,,2", "-1"])
def test_bad_seed_ranges(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


@pytest.mark.parametrize(("extra", "message"), [
    (["--variant", "x=--set agent.nonsense=1"], "variant 'x'"),
    (["--variant", "x=--set agent.nonsense=1"], "agent.nonsense"),
    (["--variant", "x=--set reward.terms.nope.weight=2"], "no list item named 'nope'"),
    (["--variant", "base=--set agent.gamma=0.5"], "'base' is the file as it is"),
    (["--variant", "x=--set agent.gamma=0.5", "--variant", "x=--set agent.gamma=0.6"], "duplicate name"),
    (["--variant", "x="], "no --set, so it is the same as 'base'"),
    (["--seeds", "2-1"], "is empty"),
    (["--workers", "0", "--variant", "x=--set agent.gamma=0.5"], "--workers must be ≥ 1"),
])
def test_compare_bad_input_is_one_message(tmp_path, capsys, extra, message):
    file = write(tmp_path, BASE)
    code, text = run_cli(capsys, "compare", file, "--out", tmp_path / "o", "--quiet", *extra)
    assert code == 2 and message in text, text
    assert not list((tmp_path / "o").glob("*/*")), "nothing ran"


def test_compare_from_a_non_compare_dir(tmp_path, capsys):
    code, text = run_cli(capsys, "compare", "--from", tmp_path)
    assert code == 2 and "is not a `rewardlab compare` directory" in text


@pytest.mark.slow  # two spawned processes each import torch and SB3
def test_compare_with_two_worker_processes(tmp_path, capsys):
    file = write(tmp_path, {**BASE, "train": {"total_steps": 256}})
    out = tmp_path / "cmp"
    code, text = run_cli(capsys, "compare", file, "--variant", PENALTY, "--seeds", "0", "--workers", "2",
                         "--out", out, "--reps", "200")
    assert code == 0, text
    assert "base seed 0: final true return" in text and "penalty seed 0: final true return" in text
    assert finals_of(out / "base") and finals_of(out / "penalty")
    assert (out / "compare.png").is_file()
