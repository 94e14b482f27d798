"""SARM vs a frame-index-label model: progress quality on held-out demos of different lengths.

For each seed, both models (``rewardlab.imitation.sarm.train_sarm``, same MLPs and budget) are
trained on the successful annotated demos of ``generate_demos(TRAIN_MIX, seed=0)``
(``manipulation/ReachSequence-v0``): SARM on stage + τ labels from the subtask annotations,
the baseline on τ = t/(T − 1) (one stage). Held-out demos (``generate_demos(TEST_MIX, seed=1)``:
fast clean demos ≈ 75 steps and slow ones ≈ 160) measure, per seed:

- ``rank``: Spearman rank correlation of predicted progress with the true geometric task progress
  (``info["task_progress"]``), averaged over the held-out demos;
- ``stage_acc``: the fraction of frames whose stage is right (the baseline's stage is the SARM
  prior's bin its progress falls in — the best a one-stage model can do with the same priors);
- ``mae``: mean absolute error of predicted vs true progress.

Aggregates: IQM and stratified-bootstrap 95% CIs over seeds from ``rewardlab.results``. The plot
shows predicted progress over time for one fast and one slow held-out demo (seed 0's models).

    OMP_NUM_THREADS=1 nice .venv/bin/python scripts/sarm_progress.py --seeds 0 1 2 3 4 --steps 600 \
        --plot docs/methods/sarm_progress.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TRAIN_MIX = {"clean": 10, "slow": 10, "noisy": 10}
TEST_MIX = {"clean": 5, "slow": 5}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def evaluate(model, demos, names, sarm_bps) -> dict[str, float]:
    from rewardlab.imitation.sarm import frame_labels

    rank, acc, mae = [], [], []
    for d in demos:
        stage, _, prog = model.predict(model.windows(d.obs))
        if model.num_stages == 1:
            stage = np.clip(np.searchsorted(sarm_bps, prog, side="right") - 1, 0, len(sarm_bps) - 2)
        true_stage = frame_labels(len(d.obs), d.subtasks, names)[0]
        rank.append(spearman(prog, d.progress))
        acc.append(float(np.mean(stage == true_stage)))
        mae.append(float(np.mean(np.abs(prog - d.progress))))
    return {"rank": float(np.mean(rank)), "stage_acc": float(np.mean(acc)), "mae": float(np.mean(mae))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=600, help="Adam steps per model")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from rewardlab import results as R
    from rewardlab.imitation.sarm import SARMConfig, train_sarm
    from rewardlab.imitation.sarm_demos import generate_demos

    torch.set_num_threads(1)
    train = generate_demos(TRAIN_MIX, seed=0).select(success_only=True)
    test = generate_demos(TEST_MIX, seed=1)
    scores: dict[str, dict[str, list[float]]] = {"sarm": {}, "frame_index": {}}
    first: dict[str, object] = {}
    for seed in args.seeds:
        sarm = train_sarm(train.demos, train.names, SARMConfig(steps=args.steps), seed=seed)
        base = train_sarm(train.demos, train.names, SARMConfig(labels="frame_index", steps=args.steps), seed=seed)
        for name, m in (("sarm", sarm), ("frame_index", base)):
            res = evaluate(m, test.demos, test.names, sarm.bps)
            for k, v in res.items():
                scores[name].setdefault(k, []).append(v)
            first.setdefault(name, m)
            print(f"seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)
    print(f"\nheld-out demo lengths: {[d.length for d in test.demos]}")
    print("| model | rank corr. | stage acc. | MAE |\n|---|---|---|---|")
    for name in scores:
        cells = [str(R.iqm_ci(np.array(scores[name][k]))) for k in ("rank", "stage_acc", "mae")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for k in ("rank", "stage_acc"):
        print(f"P(sarm > frame_index) on {k}: "
              f"{R.probability_of_improvement(np.array(scores['sarm'][k]), np.array(scores['frame_index'][k]))}")
    if args.json:
        args.json.write_text(json.dumps(scores, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fast = min((d for d in test.demos if d.style == "clean"), key=lambda d: d.length)
        slow = max((d for d in test.demos if d.style == "slow"), key=lambda d: d.length)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        for ax, d, title in ((axes[0], fast, "fast (clean)"), (axes[1], slow, "slow")):
            t = np.arange(d.length)
            ax.plot(t, d.progress, "k--", label="true task progress")
            ax.plot(t, first["sarm"].episode_progress(d.obs), label="SARM")
            ax.plot(t, first["frame_index"].episode_progress(d.obs), label="frame-index labels")
            for _, _, end in d.subtasks[:-1]:
                ax.axvline(end, color="grey", lw=0.5)
            ax.set_title(f"held-out {title} demo, {d.length} frames")
            ax.set_xlabel("step")
        axes[0].set_ylabel("progress")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
