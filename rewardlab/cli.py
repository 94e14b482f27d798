"""``rewardlab run|sweep|check|list|plot|summary|compare``: the command line.

Bad input (a malformed file, an unknown name, a bad value, a directory that is not a run)
prints one clear message and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from rewardlab.errors import ConfigError, RewardLabError

console = Console(stderr=True)


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds expects comma-separated integers, got {text!r}") from None


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
    result = summary.as_dict()
    out = Console()
    out.print(f"run directory: {summary.run_dir}")
    for seed, r in result["seeds"].items():
        succ = "" if r["success_rate"] is None else f", success rate {r['success_rate']:.2f}"
        out.print(f"seed {seed}: true return {r['true_return_mean']:.3f} ± {r['true_return_std']:.3f}{succ} "
                  f"over {r['episodes']} eval episodes ({r['steps']:,} steps, {r['wall_time_s']:.0f} s)")
    succ = "" if result["success_rate_mean"] is None else (
        f", success rate {result['success_rate_mean']:.2f} ± {result['success_rate_std_over_seeds']:.2f}")
    out.print(f"final: true return {result['true_return_mean']:.3f} ± {result['true_return_std_over_seeds']:.3f}"
              f"{succ} (mean ± std over {len(result['seeds'])} seed(s))")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from rewardlab.envs import make
    from rewardlab.config import load_config

    cfg, _ = load_config(args.file, list(args.set or []))
    stack = cfg.reward.build_stack(cfg.agent.gamma)
    env = make(cfg.env.id, **cfg.env.kwargs)
    env.close()
    Console().print(f"{args.file}: ok — env {cfg.env.id} ×{cfg.env.n_envs}, reward {stack!r}, "
                    f"agent {cfg.agent.name} (γ={cfg.agent.gamma}), {cfg.train.total_steps:,} steps × "
                    f"{len(cfg.train.seeds)} seed(s)")
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
    from rich.table import Table

    from rewardlab.experiment import compare as C
    from rewardlab.experiment.plot import plot_compare

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
    rows = C.compare_results(runs, reps=args.reps)
    cells = C.format_table(rows)
    table = Table(title="final evaluation true (unshaped) return: IQM over seeds, stratified-bootstrap 95% CIs, "
                        f"probability of improvement over {rows[0].name!r}")
    for c in cells[0]:
        table.add_column(c)
    for r in cells[1:]:
        table.add_row(*r)
    Console(width=max(120, 18 * len(cells[0]))).print(table)
    for name, finals in C.finals_per_seed(rows).items():
        out.print(f"  {name}: per seed {finals}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = C.write_results(rows, out_dir / C.RESULTS_FILE, reps=args.reps)
    png = plot_compare(rows, out_dir / C.PNG_FILE, title=" vs ".join(r.name for r in rows))
    out.print(f"wrote {png} and {res}")
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RewardLabError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
        return 2
    except KeyboardInterrupt:
        hint = {"sweep": "run the same `rewardlab sweep` command again (the interrupted trial is re-queued)",
                "compare": "run the same `rewardlab compare` command again (finished runs are skipped, "
                           "interrupted ones resume)"}.get(args.command, "continue with `rewardlab run --resume RUN_DIR`")
        console.print(f"[yellow]interrupted[/]: {hint}")
        return 130


if __name__ == "__main__":
    sys.exit(main())
