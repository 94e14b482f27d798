"""``rewardlab run|sweep|check|list|plot|summary|compare|distance``: the command line.

Bad input (a malformed file, an unknown name, a bad value, a directory that is not a run)
prints one clear message and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from rewardlab.errors import ConfigError, RewardLabError

console = Console(stderr=True)


def _seeds(text: str) -> list[int]:
    from rewardlab.config.limits import MAX_SEED

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text[:80]!r}") from None
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        shown = str(bad[0]) if len(str(bad[0])) <= 30 else str(bad[0])[:27] + "..."
        raise argparse.ArgumentTypeError(f"seeds are integers from 0 to {MAX_SEED}, got {shown}")
    return seeds


def _plain(text: object) -> Text:
    """User text for rich, shown as written: ``[...]`` is not markup, ``:name:`` not an emoji."""
    return Text(str(text))


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from rewardlab.config import load_config
    from rewardlab.experiment.runner import run_experiment

    cfg = None
    if args.resume is None:
        if args.file is None:
            raise ConfigError("rewardlab run needs an experiment FILE (or --resume RUN_DIR)")
        overrides = list(args.set or [])
        if args.seeds is not None:
            overrides.append(f"train.seeds=[{','.join(map(str, args.seeds))}]")
        cfg, _ = load_config(args.file, overrides)
    elif args.file or args.set or args.seeds:
        console.print("[yellow]--resume continues with the run's stored config.yaml; FILE/--set/--seeds are ignored")

    from rewardlab.derl.loop import is_derl_dir

    if (cfg is not None and cfg.derl is not None) or (args.resume is not None and is_derl_dir(args.resume)):
        from rewardlab.derl.report import run_derl_cli

        return run_derl_cli(cfg, out=args.out, resume=args.resume, quiet=args.quiet)

    columns = [TextColumn("[bold]seed {task.fields[seed]}"), BarColumn(),
               TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
               TextColumn("{task.fields[sps]:>6.0f} SPS"), TextColumn("true return {task.fields[ret]}"),
               TimeElapsedColumn()]
    tasks: dict[int, int] = {}
    with Progress(*columns, console=console, disable=args.quiet) as progress:

        def on_progress(seed: int, step: int, total: int, sps: float, ret: float | None) -> None:
            if seed not in tasks:
                tasks[seed] = progress.add_task("train", total=total, seed=seed, sps=0.0, ret="-")
            progress.update(tasks[seed], completed=step, sps=sps, ret="-" if ret is None else f"{ret:.3f}")

        summary = run_experiment(cfg, out=args.out, resume=args.resume, on_progress=on_progress)
    out = Console()
    out.print(_plain(f"run directory: {summary.run_dir}"))
    variants = _variant_dirs(summary.run_dir)
    if variants:  # reward variants trained side by side: the comparison is the result
        from rewardlab.experiment.results import load_runs

        runs = [load_runs(summary.run_dir / v, name=v) for v in variants]
        _report_comparison(runs, summary.run_dir, per_seed=False)
        return 0
    result = summary.as_dict()
    for seed, r in result["seeds"].items():
        succ = "" if r["success_rate"] is None else f", success rate {r['success_rate']:.2f}"
        out.print(f"seed {seed}: true return {r['true_return_mean']:.3f} ± {r['true_return_std']:.3f}{succ} "
                  f"over {r['episodes']} eval episodes ({r['steps']:,} steps, {r['wall_time_s']:.0f} s)")
    succ = "" if result["success_rate_mean"] is None else (
        f", success rate {result['success_rate_mean']:.2f} ± {result['success_rate_std_over_seeds']:.2f}")
    out.print(f"final: true return {result['true_return_mean']:.3f} ± {result['true_return_std_over_seeds']:.3f}"
              f"{succ} (mean ± std over {len(result['seeds'])} seed(s))")
    return 0


def _variant_dirs(run_dir: Path) -> list[str]:
    """The reward variants of a batched run, in the file's order (``summary.json``), or []."""
    import json

    from rewardlab.experiment.runner import SUMMARY_FILE

    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()).get("variants") or {})


def _cmd_check(args: argparse.Namespace) -> int:
    from rewardlab.config import load_config
    from rewardlab.config.signatures import build_error
    from rewardlab.envs import make

    cfg, _ = load_config(args.file, list(args.set or []))
    stack = cfg.reward.build_stack(cfg.agent.gamma)
    try:
        env = make(cfg.env.id, **cfg.env.kwargs)
    except Exception as e:
        err = build_error(cfg.env.id, cfg.env.kwargs, e)
        if err is e:
            raise
        raise err from e
    env.close()
    Console().print(_plain(f"{args.file}: ok — env {cfg.env.id} ×{cfg.env.n_envs}, reward {stack!r}, "
                           f"agent {cfg.agent.name} (γ={cfg.agent.gamma}), {cfg.train.total_steps:,} steps × "
                           f"{len(cfg.train.seeds)} seed(s)"))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from rewardlab.sweep.report import trials_table, write_best, write_report
    from rewardlab.sweep.study import TrialEvent, counted_trials, open_study, plan_sweep, run_sweep

    overrides = list(args.set or [])
    plan = plan_sweep(args.file, overrides, trials=args.trials, storage=args.storage, study=args.study)
    out = Console(width=160)  # the trials table is wide
    if args.best is not None or args.report:
        study = open_study(plan, load_only=True)
        out.print(trials_table(study, plan))
        if args.best is not None:
            path = write_best(study, plan, Path(args.best) if args.best else None)
            out.print(f"best config: {path}  (run it: rewardlab run {path})")
        if args.report:
            files = write_report(study, plan)
            out.print(f"report: {', '.join(str(f) for f in files) or 'no plots (see NOTES.txt)'}")
            out.print(f"dashboard: optuna-dashboard {plan.storage}")
        return 0

    out.print(f"sweep {plan.study}: {plan.sweep.n_trials} trials, {args.workers} worker(s), "
              f"storage {plan.storage}, runs in {plan.dir}")
    columns = [TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f}/{task.total:,.0f}"), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=args.quiet) as progress:
        trials_bar = progress.add_task("trials", total=plan.sweep.n_trials, info="")
        steps_bar = progress.add_task("trial -", total=1, info="", visible=args.workers == 1)

        def on_trial(e: TrialEvent) -> None:
            value = "" if e.value is None else f" true return {e.value:.3f}"
            error = f" ({e.error})" if e.error else ""
            progress.console.print(f"trial {e.number}: {e.state}{value}{error} in {e.seconds:.0f} s — {e.values}")
            poll(None)

        def on_progress(number: int, step: int, total: int, ret: float | None) -> None:
            progress.update(steps_bar, description=f"trial {number}", completed=step, total=total,
                            info="" if ret is None else f"train true return {ret:.3f}")

        def poll(study) -> None:
            study = study or open_study(plan, load_only=True)
            done = [t for t in counted_trials(study) if t.state.is_finished()]
            best = max((t.value for t in done if t.value is not None), default=None)
            progress.update(trials_bar, completed=len(done), info="" if best is None else f"best {best:.3f}")

        run_sweep(plan, overrides, workers=args.workers, trials=args.trials, storage=args.storage,
                  study=args.study, on_trial=on_trial, on_progress=on_progress, poll=poll)
        poll(None)
    study = open_study(plan, load_only=True)
    out.print(trials_table(study, plan))
    out.print(f"best config: rewardlab sweep {args.file} --best   ·   plots: rewardlab sweep {args.file} --report"
              f"   ·   dashboard: optuna-dashboard {plan.storage}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from rewardlab.config.catalog import KINDS, catalog, markdown

    if args.markdown:
        print(markdown())
        return 0
    console = Console()
    for kind in [args.kind] if args.kind else KINDS:
        rows = catalog(kind, params=args.params)
        if not args.params:
            console.print(f"[bold]{kind}[/bold]: " + escape(", ".join(n for n, _ in rows)))
            continue
        table = Table(title=kind)
        table.add_column("name")
        table.add_column("parameters")
        for name, params in rows:
            table.add_row(escape(name), escape(params))
        console.print(table)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from rewardlab.experiment.plot import plot_runs

    out = plot_runs([Path(p) for p in args.runs], Path(args.out))
    Console().print(f"wrote {out}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from rich.table import Table

    from rewardlab.experiment.summary import summarize_run

    rows = [summarize_run(Path(p), args.late) for p in args.runs]
    table = Table(title=f"final evaluation and last {args.late:.0%} of training steps: IQM over seeds "
                  "[95% stratified-bootstrap CI]")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(r.get(c, "-")) for c in columns])
    Console(width=max(120, 24 * len(columns))).print(table)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from rewardlab.experiment import compare as C

    out = Console()
    if args.sources:
        if args.file or args.variant or args.set or args.seeds is not None:
            raise ConfigError("compare --from re-reports existing runs: give no FILE, --variant, --set or --seeds")
        runs, root = C.load_compare(args.sources)
        out_dir = args.out or root or Path(".")
    else:
        if args.file is None:
            raise ConfigError("rewardlab compare needs an experiment FILE (or --from DIR)")
        variants = [C.parse_variant(v) for v in args.variant or []]
        seeds = None if args.seeds is None else C.parse_seeds(args.seeds)
        plan = C.plan_compare(args.file, variants, seeds=seeds, out=args.out, base=not args.no_base,
                              overrides=list(args.set or []))
        out.print(f"compare {args.file}: {len(plan.variants)} variant(s) × {len(plan.seeds)} seed(s) "
                  f"{plan.seeds}, {args.workers} worker(s), runs in {plan.out}")
        for v in plan.variants:
            sets = " ".join("--set " + o for o in v.overrides) or "(the file as it is)"
            out.print(f"  {v.name}: {sets}", markup=False)  # [env] is YAML, not rich markup
        columns = [TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.completed:,.0f}/{task.total:,.0f}"), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn()]
        with Progress(*columns, console=console, disable=args.quiet) as progress:
            overall = progress.add_task("runs", total=len(plan.jobs), info="")
            bars: dict[tuple[str, int], int] = {}

            def on_event(e: C.JobEvent) -> None:
                key = (e.variant, e.seed)
                if e.state in ("started", "resumed", "progress"):
                    if key not in bars:
                        bars[key] = progress.add_task(f"{e.variant} seed {e.seed}", total=e.total or 1, info=e.state)
                    info = "" if e.true_return is None else f"train true return {e.true_return:.3f}"
                    progress.update(bars[key], completed=e.step, info=info or e.state)
                else:  # done | skipped
                    if key in bars:
                        progress.remove_task(bars.pop(key))
                    how = "finished earlier, skipped" if e.state == "skipped" else f"{e.seconds:.0f} s"
                    progress.console.print(f"{e.variant} seed {e.seed}: final true return {e.final:.3f} ({how})")
                    progress.advance(overall)

            C.run_compare(plan, workers=args.workers, on_event=on_event)
        runs, _ = C.load_compare([str(plan.out)])
        out_dir = plan.out
    _report_comparison(runs, Path(out_dir), reps=args.reps)
    return 0


def _report_comparison(runs: list, out_dir: Path, *, reps: int | None = None, per_seed: bool = True) -> None:
    """The comparison table (IQM [95% CI], P(improvement) over the first variant), plus
    ``results.json`` and ``compare.png`` in ``out_dir``: what ``compare`` and a variants run end with."""
    from rich.table import Table

    from rewardlab.experiment import compare as C
    from rewardlab.experiment.plot import plot_compare

    out = Console()
    rows = C.compare_results(runs, reps=reps)
    cells = C.format_table(rows)
    table = Table(title="final evaluation true (unshaped) return: IQM over seeds, stratified-bootstrap 95% CIs, "
                        f"probability of improvement over {rows[0].name!r}")
    for c in cells[0]:
        table.add_column(c)
    for r in cells[1:]:
        table.add_row(*r)
    Console(width=max(120, 18 * len(cells[0]))).print(table)
    if per_seed:
        for name, finals in C.finals_per_seed(rows).items():
            out.print(f"  {name}: per seed {finals}")
    out_dir.mkdir(parents=True, exist_ok=True)
    res = C.write_results(rows, out_dir / C.RESULTS_FILE, reps=reps)
    png = plot_compare(rows, out_dir / C.PNG_FILE, title=" vs ".join(r.name for r in rows))
    out.print(_plain(f"wrote {png} and {res}"))


def _distance_config(file: str, overrides: list[str], program: str | None):
    """An experiment's config for ``rewardlab distance``; ``program``: a DERL program over the file's
    ``derl.primitives`` replaces ``reward.terms``."""
    import json

    from rewardlab.config import load_config

    cfg, _ = load_config(file, overrides)
    if program is None:
        return cfg
    if cfg.derl is None:
        raise ConfigError(f"--program needs a derl: section with primitives in {file}")
    terms = [{"name": "derl_program", "params": {"program": program, "primitives": cfg.derl.primitive_specs()}}]
    return load_config(file, [*overrides, f"reward.terms={json.dumps(terms)}"])[0]


def _cmd_distance(args: argparse.Namespace) -> int:
    from rewardlab.metrics import ROLLOUT_POLICY, compare_rewards

    cfg_a = _distance_config(args.file_a, list(args.set_a or []), args.program_a)
    cfg_b = _distance_config(args.file_b, list(args.set_b or []), args.program_b)
    env_a, env_b = (cfg_a.env.id, cfg_a.env.kwargs), (cfg_b.env.id, cfg_b.env.kwargs)
    if env_a != env_b:
        raise ConfigError(f"both experiments must use the same env (a distance compares rewards on the same "
                          f"transitions): {args.file_a} has {env_a[0]} {env_a[1]}, "
                          f"{args.file_b} has {env_b[0]} {env_b[1]}")
    gamma = args.gamma
    if gamma is None:
        if cfg_a.agent.gamma != cfg_b.agent.gamma:
            raise ConfigError(f"the experiments' agent.gamma differ ({cfg_a.agent.gamma} vs {cfg_b.agent.gamma}): "
                              "pass --gamma for the distance")
        gamma = cfg_a.agent.gamma
    metrics = [m for spec in args.metric or ["epic"] for m in spec.split(",") if m]
    out = Console(soft_wrap=True, markup=False, highlight=False)
    for tag, file, cfg in (("A", args.file_a, cfg_a), ("B", args.file_b, cfg_b)):
        out.print(f"{tag}: {file} — reward {cfg.reward.build_stack(cfg.agent.gamma)!r}")
    results = compare_rewards(
        cfg_a.env.id, lambda: cfg_a.reward.build_stack(cfg_a.agent.gamma),
        lambda: cfg_b.reward.build_stack(cfg_b.agent.gamma), metrics=metrics, gamma=gamma, samples=args.samples,
        seed=args.seed, num_envs=cfg_a.env.n_envs, env_kwargs=cfg_a.env.kwargs, mean_samples=args.mean_samples,
        dard_samples=args.dard_samples, n_resamples=args.resamples)
    d = results[0].details
    out.print(f"coverage: {d['transitions']:,} transitions of {cfg_a.env.id} ({d['distinct_obs']:,} distinct "
              f"observations, {d['episodes_ended']} episode ends, {d['env_reward_nonzero']} non-zero env rewards) "
              f"under {ROLLOUT_POLICY}, seed {args.seed}; "
              f"γ = {gamma}; dones = 0 (infinite-horizon, as EPIC/DARD assume); 95% CI: percentile bootstrap "
              f"over transitions, {args.resamples} resamples")
    for r in results:
        out.print(str(r))
    extra = results[-1].details
    out.print(f"env-reward model: {extra['env_model_fallback']:,} of {extra['env_model_queries']:,} queries used the "
              "arrival fallback (transition never seen)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rewardlab", description="Reward design for reinforcement learning.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run an experiment file (one run per seed)")
    r.add_argument("file", nargs="?", help="experiment YAML")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    r.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1,2")
    r.add_argument("--out", type=Path, help="parent directory for the run directory (default: log.dir)")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a crashed or killed run")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser("check", help="validate an experiment file and build its env and reward")
    c.add_argument("file")
    c.add_argument("--set", action="append", metavar="KEY=VALUE")
    c.set_defaults(func=_cmd_check)

    sw = sub.add_parser("sweep", help="Optuna sweep over the file's sweep: section (maximises the true return)")
    sw.add_argument("file", help="experiment YAML with a sweep: section")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    sw.add_argument("--trials", type=int, help="trials to finish in total (default: sweep.n_trials)")
    sw.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    sw.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db (default: SQLite "
                    "in the sweep directory); every machine given the same URL and --study joins the study")
    sw.add_argument("--study", help="study name (default: sweep.study or the experiment name)")
    sw.add_argument("--best", nargs="?", const="", metavar="OUT",
                    help="write the best trial's config as runnable YAML (default: <sweep dir>/best.yaml)")
    sw.add_argument("--report", action="store_true", help="write PNG/HTML plots of the study")
    sw.add_argument("--quiet", action="store_true", help="no progress bars")
    sw.set_defaults(func=_cmd_sweep)

    ls = sub.add_parser("list", help="list registered envs, reward terms, potentials and agents")
    ls.add_argument("kind", nargs="?", choices=["envs", "terms", "potentials", "agents"])
    ls.add_argument("--params", action="store_true", help="each entry's parameters, from its signature")
    ls.add_argument("--markdown", action="store_true", help="all of it as docs/reference.md")
    ls.set_defaults(func=_cmd_list)

    pl = sub.add_parser("plot", help="plot learning curves (true vs shaped return) of run directories")
    pl.add_argument("runs", nargs="+", help="run directories (or seed_* directories)")
    pl.add_argument("--out", default="learning_curve.png", help="output PNG (default: learning_curve.png)")
    pl.set_defaults(func=_cmd_plot)

    sm = sub.add_parser("summary", help="compare run directories: final eval and late-training statistics")
    sm.add_argument("runs", nargs="+", help="run directories")
    sm.add_argument("--late", type=float, default=0.1, help="fraction of the last training iterations to average")
    sm.set_defaults(func=_cmd_summary)

    cp = sub.add_parser("compare", help="run variants of an experiment × seeds and compare their final true return "
                        "(IQM, 95%% CIs, probability of improvement) with a table and a PNG")
    cp.add_argument("file", nargs="?", help="experiment YAML; its own config is variant 'base' (unless --no-base)")
    cp.add_argument("--variant", action="append", metavar='NAME="--set KEY=VALUE ..."',
                    help="a variant: the file with these overrides (repeatable)")
    cp.add_argument("--seeds", help="seeds of every variant: 0-4, 0,1,2 or 0-2,7 (default: the file's train.seeds)")
    cp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override for every variant (repeatable)")
    cp.add_argument("--no-base", action="store_true", help="do not run the file as it is; the first --variant "
                    "is the baseline")
    cp.add_argument("--workers", type=int, default=1, help="runs at the same time, one process each (default 1)")
    cp.add_argument("--out", type=Path, help="output directory (default: <log.dir>/compare/<name>); rerunning "
                    "into the same directory skips finished runs and resumes interrupted ones")
    cp.add_argument("--from", dest="sources", nargs="+", metavar="DIR | NAME=RUN_DIR",
                    help="re-report without training: a compare output directory, or NAME=RUN_DIR items "
                    "(run directory, folder of them, or a quoted glob)")
    cp.add_argument("--reps", type=int, help="bootstrap replications of every interval (default 5000 for IQMs, "
                    "2000 for probabilities of improvement)")
    cp.add_argument("--quiet", action="store_true", help="no progress bars")
    cp.set_defaults(func=_cmd_compare)
    ds = sub.add_parser("distance", help="EPIC/DARD/STARC distance between two experiments' rewards on the "
                        "same rollouts (uniformly random actions), with a 95%% bootstrap CI")
    ds.add_argument("file_a", metavar="EXP_A.yaml")
    ds.add_argument("file_b", metavar="EXP_B.yaml", help="must use the same env (id and kwargs) as EXP_A")
    ds.add_argument("--metric", action="append", metavar="NAME", help="epic (default), dard, starc-epic-l2, "
                    "starc-dard-l1, starc-none-l2, raw-l2, ...; repeatable or comma-separated")
    ds.add_argument("--samples", type=int, default=2000, help="transitions to collect (default 2000)")
    ds.add_argument("--seed", type=int, default=0, help="seed of the env, the random actions and the bootstrap")
    ds.add_argument("--gamma", type=float, help="discount of the distance (default: the files' agent.gamma)")
    ds.add_argument("--mean-samples", type=int, default=256, help="EPIC: sampled (a, s') pairs (default 256)")
    ds.add_argument("--dard-samples", type=int, default=32, help="DARD: draws per transition (default 32)")
    ds.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ds.add_argument("--set-a", action="append", metavar="KEY=VALUE", help="override a value of EXP_A (repeatable)")
    ds.add_argument("--set-b", action="append", metavar="KEY=VALUE", help="override a value of EXP_B (repeatable)")
    ds.add_argument("--program-a", metavar="PROGRAM", help="EXP_A's reward is this DERL program over its "
                    "derl.primitives, e.g. 'add(env, step)'")
    ds.add_argument("--program-b", metavar="PROGRAM", help="the same for EXP_B")
    ds.set_defaults(func=_cmd_distance)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RewardLabError as e:
        # The message quotes user text (values, names, paths): printed as written, never as markup.
        console.print(Text.assemble(("error:", "bold red"), " ", str(e)), highlight=False)
        return 2
    except KeyboardInterrupt:
        hints = {"sweep": "run the same `rewardlab sweep` command again (the interrupted trial is re-queued)",
                 "compare": "run the same `rewardlab compare` command again (finished runs are skipped, "
                            "interrupted ones resume)"}
        hint = hints.get(args.command, "continue with `rewardlab run --resume RUN_DIR`")
        console.print(f"[yellow]interrupted[/]: {hint}")
        return 130


if __name__ == "__main__":
    sys.exit(main())
