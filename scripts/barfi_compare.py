"""Compare primary-only, naive (env + aux), BARFI implicit and BARFI first-order on one or more
BARFI experiment files, through the real runner; plot the true-return curves and print a table.

Each file must have a ``barfi`` term; its ``aux`` spec defines the naive variant. Every variant
is the same file with ``reward.terms`` (and ``name``) overridden, run with
``rewardlab.experiment.runner.run_experiment`` (equivalent to ``rewardlab run FILE --set ...``).

    python scripts/barfi_compare.py experiments/barfi_cartpole.yaml [more.yaml ...] \
        [--out docs/methods] [--runs runs/barfi_compare] [--reuse] \
        [--variants barfi_implicit,barfi_first_order] [--set KEY=VALUE ...] [--tag alpha3]

Writes ``<out>/barfi_<name>.png`` per file (IQM over seeds with 95% bootstrap CI bands of the
periodic evaluation's true return and of the training episodes' true return) and prints a Markdown
table of final evaluations: per seed, mean ± std, and the IQM with its 95% CI. Loading, seed
alignment, the late-training window and the statistics come from ``rewardlab.results``.
``--reuse`` plots existing run directories instead of running again.
``--set`` overrides the experiment file before the variants are built (e.g.
``reward.terms.barfi.params.neumann_alpha=3.0``); ``--tag`` is appended to the experiment
name (run directories and PNG), so such a comparison does not overwrite the default one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rewardlab import results as R
from rewardlab.config import apply_overrides, parse_config
from rewardlab.core import keys
from rewardlab.experiment.runner import find_run_dir, run_experiment

VARIANTS = ("primary", "naive", "barfi_implicit", "barfi_first_order")
COLORS = {"primary": "tab:gray", "naive": "tab:red", "barfi_implicit": "tab:blue", "barfi_first_order": "tab:green"}


def variant_terms(data: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    barfi = next((t for t in data["reward"]["terms"] if isinstance(t, dict) and t.get("name") == "barfi"), None)
    if barfi is None:
        raise SystemExit("the experiment file needs a 'barfi' reward term")
    aux = barfi["params"]["aux"]
    aux = {"name": aux} if isinstance(aux, str) else dict(aux)
    if variant == "primary":
        return [{"name": "env"}]
    if variant == "naive":
        return [{"name": "env"}, aux]
    params = dict(barfi["params"], method=variant.removeprefix("barfi_"))
    return [{"name": "barfi", "params": params}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/methods"))
    ap.add_argument("--runs", type=Path, default=Path("runs/barfi_compare"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--reuse", action="store_true", help="plot the newest existing run of each variant")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value of every file (repeatable)")
    ap.add_argument("--tag", default="", help="suffix for the experiment name, run directories and PNG")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = ["| experiment | variant | final eval true return per seed | mean ± std | IQM [95% CI] | training true "
             "return, last 10% of steps | learned φ₁ / φ₂ / γ_φ (mean over seeds, last iteration) | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for file in args.files:
        data = apply_overrides(yaml.safe_load(file.read_text()), args.overrides)
        base = data["name"] + (f"_{args.tag}" if args.tag else "")
        runs: dict[str, Path] = {}
        for variant in variants:
            name = f"{base}__{variant}"
            if args.reuse:
                found = sorted(args.runs.glob(f"{name}__*"))
                if not found:
                    raise SystemExit(f"--reuse: no run of {name} under {args.runs}")
                runs[variant], wall = find_run_dir(found[-1]), float("nan")  # not measured: shown as –
            else:
                d = json.loads(json.dumps(data))
                d["name"], d["reward"]["terms"] = name, variant_terms(data, variant)
                cfg = parse_config(d, f"{file} [{variant}]")
                t0 = time.time()
                runs[variant] = run_experiment(cfg, out=args.runs).run_dir
                wall = time.time() - t0
            seeds = R.load_runs(runs[variant], name=variant)
            finals = seeds.finals()
            iqm = R.iqm_ci(finals)
            late = seeds.late(keys.TRUE_RETURN)
            learned = "–"
            if variant.startswith("barfi"):
                learned = " / ".join(
                    f"{np.mean([s.series(keys.TERM_PREFIX + 'barfi/' + k)[1][-1] for s in seeds.seeds]):.2f}"
                    for k in ("aux_weight", "bias", "discount"))
            wall_text = "–" if np.isnan(wall) else f"{wall:.0f}"
            table.append(f"| {base} | {variant} | {', '.join(f'{x:.2f}' for x in finals)} | "
                         f"**{np.mean(finals):.2f} ± {np.std(finals):.2f}** | "
                         f"{iqm.value:.2f} [{iqm.low:.2f}, {iqm.high:.2f}] | "
                         f"{np.nanmean(late):.2f} ± {np.nanstd(late):.2f} | {learned} | {wall_text} |")
            print(table[-1], flush=True)

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for variant, run_dir in runs.items():
            seeds = R.load_runs(run_dir, name=variant)
            for ax, key, kinds in ((axes[0], keys.EVAL_TRUE_RETURN, R.EVAL_KINDS),
                                   (axes[1], keys.TRUE_RETURN, R.TRAIN_KINDS)):
                # smooth the noisy per-iteration episode means of training (trailing window)
                smooth = 1 if kinds == R.EVAL_KINDS else max(1, len(seeds.seeds[0].series(key)[0]) // 25)
                steps, m, lo, hi = R.iqm_curve(seeds.curves(key, kinds, smooth=smooth))
                ax.plot(steps, m, label=variant, color=COLORS.get(variant))
                ax.fill_between(steps, lo, hi, alpha=0.2, color=COLORS.get(variant))
        n_seeds = len(R.load_runs(next(iter(runs.values()))))
        axes[0].set_title(f"{base}: evaluation true return (IQM, 95% CI, {n_seeds} seeds)")
        axes[1].set_title("training episodes' true return (smoothed)")
        for ax in axes:
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
        axes[0].legend()
        fig.tight_layout()
        args.out.mkdir(parents=True, exist_ok=True)
        png = args.out / f"barfi_{base.removeprefix('barfi_')}.png"
        fig.savefig(png, dpi=90)
        plt.close(fig)
        print(f"wrote {png}", flush=True)
    print("\n".join(table))


if __name__ == "__main__":
    main()
