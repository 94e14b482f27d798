"""Running a sweep: the Optuna study, its storage, and the workers that claim and run trials.

Contents: ``SweepPlan`` / ``plan_sweep`` (an experiment file's sweep, resolved), ``open_study``,
``run_worker`` (one process claiming trials until the study has ``n_trials``), ``run_sweep``
(``--workers K`` processes), ``counted_trials`` and ``trial_value``.

Every trial is an ordinary run of ``rewardlab.experiment.runner`` in
``<sweep dir>/trials/trial_<number>/``; its objective is the mean over seeds of the final
evaluation's true (unshaped) return, and each periodic evaluation is reported to the pruner.

Exactly ``n_trials`` trials, over any number of workers and machines: a worker claims a trial
under a lock (``pg_advisory_lock`` on PostgreSQL, a lock file beside an SQLite database), so
two workers never both take the last slot. Running trials send heartbeats; a trial whose
worker was killed goes stale, is marked FAIL and re-queued (Optuna's retry callback), and the
retry resumes the killed run directory from its last checkpoint when it runs on the same host.
A trial that crashes (NaN reward, an exception in a term) is FAIL with its error message in
the user attribute ``error``, counts as done, and the sweep goes on. With ``sweep.batch: K`` a
worker claims up to K trials and trains them in one program (``rewardlab.sweep.batch``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import socket
import threading
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.config import ExperimentConfig, dump_config, load_config, parse_config
from rewardlab.config.sweep import SweepConfig, check_space
from rewardlab.errors import ConfigError, RewardLabError, RunStopped
from rewardlab.sweep.space import sample

__all__ = ["SweepPlan", "plan_sweep", "open_study", "run_worker", "run_sweep", "counted_trials", "trial_value",
           "TrialEvent"]

log = logging.getLogger(__name__)

# user attributes of a trial (shown in optuna-dashboard)
ATTR_ERROR = "error"            # why a trial failed
ATTR_CONFIG = "config"          # the trial's resolved experiment YAML (``--best`` writes it)
ATTR_VALUES = "values"          # the sampled values, as the config holds them (lists not labels)
ATTR_RUN_PARENT = "run_parent"  # the directory holding the trial's run directory
ATTR_HOST = "host"
ATTR_SUCCESS = "success_rate"
ATTR_RETURN_STD = "true_return_std_over_seeds"


@dataclass
class SweepPlan:
    """An experiment file's sweep, with the command line's overrides applied."""

    file: Path
    base: dict[str, Any]     # raw experiment mapping (with ``--set`` applied)
    cfg: ExperimentConfig    # the validated base experiment
    sweep: SweepConfig
    dir: Path
    storage: str
    study: str

    @property
    def seeds(self) -> list[int]:
        k = self.sweep.seeds_per_trial
        return list(self.cfg.train.seeds) if k is None else list(range(k))


def plan_sweep(file: str | Path, overrides: list[str] | None = None, *, trials: int | None = None,
               storage: str | None = None, study: str | None = None) -> SweepPlan:
    """Read an experiment file with a ``sweep:`` section; command-line values win over the file's."""
    cfg, raw = load_config(file, overrides)
    if cfg.sweep is None:
        raise ConfigError(f"{file} has no sweep: section (see docs/sweeps.md for the search-space format)")
    sweep = cfg.sweep.model_copy(update={"n_trials": trials} if trials is not None else {})
    if sweep.n_trials < 1:
        raise ConfigError(f"--trials must be ≥ 1, got {sweep.n_trials}")
    check_space(sweep, raw)
    if sweep.batch > 1:
        from rewardlab.sweep.batch import check_batchable

        check_batchable(sweep, cfg)
    name = study or sweep.study or cfg.name
    sweep_dir = Path(sweep.dir) if sweep.dir else Path(cfg.log.dir) / "sweeps" / name
    sweep_dir = sweep_dir.resolve()
    url = storage or sweep.storage or f"sqlite:///{sweep_dir / 'study.db'}"
    return SweepPlan(Path(file), raw, cfg, sweep, sweep_dir, url, name)


# -- storage, sampler, pruner --------------------------------------------------------------
def _storage(plan: SweepPlan) -> Any:
    import optuna

    engine: dict[str, Any] = {}
    if plan.storage.startswith("sqlite"):
        plan.dir.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": 120}}  # several local workers share one file
    else:
        engine = {"pool_pre_ping": True}
    sweep = plan.sweep
    try:
        return optuna.storages.RDBStorage(
            plan.storage, engine_kwargs=engine, heartbeat_interval=sweep.heartbeat_interval,
            grace_period=sweep.grace_period or 3 * sweep.heartbeat_interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=sweep.max_retry))
    except Exception as e:  # a bad URL, a server that is down, a missing driver
        raise ConfigError(f"cannot open sweep storage {plan.storage!r}: {type(e).__name__}: {e}") from None


def _sampler(plan: SweepPlan, seed: int | None) -> Any:
    import optuna

    s = plan.sweep
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.n_startup_trials)
    # A batch asks for several trials before any is told: the constant liar keeps TPE from
    # proposing the same point for all of them.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, constant_liar=s.batch > 1)


def _pruner(plan: SweepPlan) -> Any:
    import optuna

    s, cfg = plan.sweep, plan.cfg
    if s.pruner == "none":
        return optuna.pruners.NopPruner()
    if s.pruner == "hyperband":
        # Resource = environment steps over the trial's seeds (see _report_step).
        return optuna.pruners.HyperbandPruner(min_resource=cfg.eval.every_steps,
                                              max_resource=cfg.train.total_steps * len(plan.seeds))
    return optuna.pruners.MedianPruner(n_startup_trials=s.n_startup_trials, n_warmup_steps=cfg.eval.every_steps)


def open_study(plan: SweepPlan, *, seed: int | None = 0, load_only: bool = False) -> Any:
    """The plan's study (created on first use; direction fixed to maximise)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # We send heartbeats ourselves around ask/tell (see _heartbeat).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    # Workers starting together would race to create the schema and the study: serialise.
    with _claim_lock(plan):
        storage = _storage(plan)
        if load_only:
            try:
                return optuna.load_study(study_name=plan.study, storage=storage)
            except KeyError:
                raise ConfigError(f"no study {plan.study!r} in {plan.storage} (run `rewardlab sweep {plan.file}` "
                                  "first)") from None
        study = optuna.create_study(study_name=plan.study, storage=storage, direction="maximize",
                                    sampler=_sampler(plan, seed), pruner=_pruner(plan), load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(f"study {plan.study!r} in {plan.storage} minimises; rewardlab sweeps maximise the "
                          "true return (use another --study name)")
    return study


# -- counting and claiming -----------------------------------------------------------------
def counted_trials(study: Any) -> list[Any]:
    """Trials that count toward ``n_trials``: finished, running or queued, and failed trials
    that crashed on their own (``error`` set). A trial failed because its worker was killed
    does not count: its retry does.
    """
    return _counted(study.get_trials(deepcopy=False))


def _counted(trials: list[Any]) -> list[Any]:
    from optuna.trial import TrialState

    return [t for t in trials if not (t.state == TrialState.FAIL and ATTR_ERROR not in t.user_attrs)]


@contextlib.contextmanager
def _claim_lock(plan: SweepPlan) -> Iterator[None]:
    """Serialise trial claims across workers (and machines, with PostgreSQL)."""
    if plan.storage.startswith("sqlite:///"):
        path = Path(plan.storage[len("sqlite:///"):] + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    elif plan.storage.startswith("postgresql"):
        import sqlalchemy

        key = zlib.crc32(b"rewardlab-sweep")  # one key: the schema is shared by all studies
        try:
            engine = sqlalchemy.create_engine(plan.storage, poolclass=sqlalchemy.pool.NullPool)
            conn = engine.connect()
        except Exception as e:  # a bad URL, a server that is down, a missing driver
            raise ConfigError(f"cannot open sweep storage {plan.storage!r}: {type(e).__name__}: {e}") from None
        with conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        engine.dispose()
    else:
        warnings.warn(f"no cross-worker lock for {plan.storage.split(':')[0]}: the study may finish up to "
                      "workers-1 trials more than n_trials", stacklevel=2)
        yield


def _claim(plan: SweepPlan, study: Any) -> tuple[Any | None, bool]:
    """``(trial, busy)``: a new or re-queued trial, or None; ``busy`` when others still run."""
    import optuna
    from optuna.trial import TrialState

    with _claim_lock(plan):
        optuna.storages.fail_stale_trials(study)  # killed workers' trials -> FAIL + a WAITING retry
        trials = study.get_trials(deepcopy=False)  # one read serves all three questions
        waiting = any(t.state == TrialState.WAITING for t in trials)
        busy = any(t.state == TrialState.RUNNING for t in trials)
        if waiting or len(_counted(trials)) < plan.sweep.n_trials:
            trial = study.ask()
            # A RUNNING trial with no heartbeat at all never goes stale: beat once right away,
            # so a worker killed before its heartbeat thread starts still has its trial retried.
            study._storage.record_heartbeat(trial._trial_id)
            return trial, busy
    return None, busy


# -- one trial -----------------------------------------------------------------------------
@dataclass
class TrialEvent:
    """What a worker reports after each trial (for progress display)."""

    number: int
    state: str            # COMPLETE, PRUNED or FAIL
    value: float | None
    values: dict[str, Any]
    error: str | None
    seconds: float


def trial_value(result: dict[str, Any]) -> float:
    """The objective, from a run's ``summary.json`` mapping: the mean over seeds of the final
    evaluation's true (unshaped) return — never the shaped return."""
    return float(result["true_return_mean"])


def _report_step(plan: SweepPlan, seed: int, step: int) -> int:
    # Seeds run one after another; seed i's evaluations come after all of seed i-1's steps,
    # so every trial reports at the same steps and the pruner compares like with like.
    return plan.seeds.index(seed) * plan.cfg.train.total_steps + step


@contextlib.contextmanager
def _heartbeat(storage: Any, trial: Any, interval: float) -> Iterator[None]:
    # Optuna's own heartbeat thread only runs inside study.optimize; with ask/tell we send our
    # own. ``_trial_id`` is the storage key of the trial (Optuna has no public accessor).
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a blip in the database must not kill the trial
                storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat-trial-{trial.number}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _trial_config(plan: SweepPlan, trial: Any) -> tuple[ExperimentConfig, dict[str, Any]]:
    data, values = sample(trial, plan.sweep, plan.base)
    data["name"] = f"{plan.study}_trial{trial.number}"
    data.setdefault("train", {})["seeds"] = plan.seeds
    return parse_config(data, f"{plan.file} (trial {trial.number}: {values})"), values


def _previous_run(trial: Any) -> Path | None:
    """The run directory a re-queued trial resumes: its killed predecessor's, on this host."""
    from rewardlab.experiment.runner import find_run_dir

    # A fresh trial has no user attributes yet; a retry carries its predecessor's.
    parent = trial.user_attrs.get(ATTR_RUN_PARENT)
    if not parent:
        return None
    if trial.user_attrs.get(ATTR_HOST) != socket.gethostname():
        return None
    runs = sorted(Path(parent).glob("*__*")) if Path(parent).is_dir() else []
    if not runs:
        return None
    try:
        return find_run_dir(runs[-1])
    except RewardLabError:
        return None


def _finish(study: Any, trial: Any, state: Any, *, t0: float, values: dict[str, Any],
            value: float | None = None, error: str | None = None) -> TrialEvent:
    """Tell the study how ``trial`` ended (``error``: why it failed, kept as a user attribute)."""
    if error is not None:
        trial.set_user_attr(ATTR_ERROR, error)
    study.tell(trial, value, state=state)
    return TrialEvent(trial.number, state.name, value, values, error, time.time() - t0)


def _run_trial(plan: SweepPlan, study: Any, storage: Any, trial: Any,
               on_progress: Callable | None) -> TrialEvent:
    import optuna
    from optuna.trial import TrialState

    from rewardlab.experiment.runner import run_experiment

    t0 = time.time()
    values: dict[str, Any] = {}

    def finish(state: Any, value: float | None = None, error: str | None = None) -> TrialEvent:
        return _finish(study, trial, state, t0=t0, values=values, value=value, error=error)

    try:
        cfg, values = _trial_config(plan, trial)
    except RewardLabError as e:
        return finish(TrialState.FAIL, error=f"invalid trial config: {e}")
    trial.set_user_attr(ATTR_VALUES, values)
    previous = _previous_run(trial)
    if previous is None:
        parent = plan.dir / "trials" / f"trial_{trial.number:04d}"
        parent.mkdir(parents=True, exist_ok=True)
        trial.set_user_attr(ATTR_RUN_PARENT, str(parent))
        trial.set_user_attr(ATTR_HOST, socket.gethostname())
        trial.set_user_attr(ATTR_CONFIG, dump_config(cfg.model_copy(update={"sweep": None})))

    def on_eval(seed: int, step: int, metrics: dict[str, float]) -> None:
        from rewardlab.core import keys

        step = _report_step(plan, seed, step)
        trial.report(metrics[keys.EVAL_TRUE_RETURN], step)
        if trial.should_prune():
            raise RunStopped(f"pruned by the {plan.sweep.pruner} pruner at step {step:,}")

    progress = None
    if on_progress is not None:
        progress = lambda seed, step, total, sps, ret: on_progress(  # noqa: E731
            trial.number, _report_step(plan, seed, step), total * len(plan.seeds), ret)
    try:
        with _heartbeat(storage, trial, plan.sweep.heartbeat_interval):
            if previous is not None:
                log.info("trial %d resumes %s", trial.number, previous)
                summary = run_experiment(resume=previous, on_progress=progress, on_eval=on_eval)
            else:
                summary = run_experiment(cfg, out=plan.dir / "trials" / f"trial_{trial.number:04d}",
                                         on_progress=progress, on_eval=on_eval)
    except RunStopped:
        return finish(TrialState.PRUNED)
    except KeyboardInterrupt:
        # Not the trial's fault: fail it without an error and re-queue it, so the next
        # `rewardlab sweep` resumes its run directory.
        study.tell(trial, state=TrialState.FAIL)
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=plan.sweep.max_retry)(study, frozen)
        raise
    except RewardLabError as e:
        return finish(TrialState.FAIL, error=f"{type(e).__name__}: {e}")
    except Exception as e:  # a crashing term or agent must not end the sweep
        log.debug("trial %d crashed:\n%s", trial.number, traceback.format_exc())
        return finish(TrialState.FAIL, error=f"{type(e).__name__}: {e}")
    result = summary.as_dict()
    value = trial_value(result)
    if not math.isfinite(value):
        return finish(TrialState.FAIL, error=f"non-finite objective {value}")
    if result["success_rate_mean"] is not None:
        trial.set_user_attr(ATTR_SUCCESS, result["success_rate_mean"])
    trial.set_user_attr(ATTR_RETURN_STD, result["true_return_std_over_seeds"])
    return finish(TrialState.COMPLETE, value)


# -- workers -------------------------------------------------------------------------------
def run_worker(plan: SweepPlan, *, workers: int = 1,
               on_trial: Callable[[TrialEvent], None] | None = None,
               on_progress: Callable[[int, int, int, float | None], None] | None = None) -> int:
    """Claim and run trials until the study has ``n_trials``; returns how many this worker ran.

    It waits while other workers' trials are still running: one of them may have been killed,
    and its retry is then run here.
    """
    # One worker on its own is reproducible; parallel trials interleave anyway, so each
    # worker then gets its own seed.
    seed = plan.sweep.seed if workers == 1 else None
    study = open_study(plan, seed=seed)
    storage = study._storage  # the RDBStorage we built (Optuna exposes no public accessor)
    ran = 0
    while True:
        trial, busy = _claim(plan, study)
        if trial is None:
            if not busy:
                return ran
            time.sleep(min(plan.sweep.heartbeat_interval, 5))
            continue
        if plan.sweep.batch > 1:  # up to `batch` trials, trained in one program
            from rewardlab.sweep.batch import run_batch

            trials = [trial]
            while len(trials) < plan.sweep.batch and (more := _claim(plan, study)[0]) is not None:
                trials.append(more)
            events = run_batch(plan, study, storage, trials, on_progress)
        else:
            events = [_run_trial(plan, study, storage, trial, on_progress)]
        ran += len(events)
        for event in events:
            if on_trial is not None:
                on_trial(event)


def _worker_process(file: str, overrides: list[str], trials: int | None, storage: str | None,
                    study: str | None, workers: int) -> None:
    plan = plan_sweep(file, overrides, trials=trials, storage=storage, study=study)
    run_worker(plan, workers=workers)


def run_sweep(plan: SweepPlan, overrides: list[str], *, workers: int = 1, trials: int | None = None,
              storage: str | None = None, study: str | None = None,
              on_trial: Callable[[TrialEvent], None] | None = None,
              on_progress: Callable[[int, int, int, float | None], None] | None = None,
              poll: Callable[[Any], None] | None = None) -> None:
    """Run the sweep here (one worker) or in ``workers`` processes; ``poll(study)`` is called
    every second while child processes work (for a progress display)."""
    if workers < 1:
        raise ConfigError(f"--workers must be ≥ 1, got {workers}")
    if workers == 1:
        run_worker(plan, on_trial=on_trial, on_progress=on_progress)
        return
    import multiprocessing as mp

    study_obj = open_study(plan, seed=None)  # create it once, before the workers race to
    ctx = mp.get_context("spawn")  # torch and NLE do not survive fork with threads
    procs = [ctx.Process(target=_worker_process, name=f"rewardlab-sweep-worker-{i}",
                         args=(str(plan.file), overrides, trials, storage, study, workers))
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            if poll is not None:
                poll(study_obj)
            time.sleep(1.0)
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
        raise
    failed = [p.name for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise RewardLabError(f"sweep workers exited with an error: {failed} (their trials are re-queued; "
                             "run the same command again to continue)")
