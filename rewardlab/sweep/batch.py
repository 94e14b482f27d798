"""Batched sweeps (``sweep.batch: K``): K Optuna trials trained in one compiled program.

An agent that trains every run of an experiment in one program (``batched = True``, e.g.
``jax_ppo``) also trains named *reward variants* side by side (``reward.variants``). A batched
sweep uses that: a worker asks the study for K trials, turns each trial's sampled values into one
variant (``trial_0007: {potential.weight: 0.8}``), trains all K × seeds runs in one call of the
experiment runner, and tells each trial the mean over seeds of *its* variant's final true
(unshaped) return — the objective of an unbatched sweep.

Only numeric reward parameters can be batched: dimensions ``reward.terms.<name>.weight`` and
``reward.terms.<name>.params.<field>`` with numeric values (a variant changes numbers fed to the
compiled program, never its structure); ``check_batchable`` refuses anything else before a trial
runs. Trials of a batch are not pruned (they train in lockstep), a batch whose training crashes
fails all its trials with the error, and a killed batch's trials are retried from scratch.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

from rewardlab.config import ExperimentConfig, dump_config
from rewardlab.config.sweep import TERMS_PATH
from rewardlab.errors import ConfigError, RewardLabError
from rewardlab.sweep.study import (
    ATTR_CONFIG,
    ATTR_RETURN_STD,
    ATTR_RUN_PARENT,
    ATTR_SUCCESS,
    ATTR_VALUES,
    SweepPlan,
    TrialEvent,
    _finish,
    _heartbeat,
    _trial_config,
)

__all__ = ["check_batchable", "variant_overrides", "variant_name", "run_batch"]


def variant_name(number: int) -> str:
    """The variant (and run sub-directory) of trial ``number``."""
    return f"trial_{number:04d}"


def _variant_key(path: str) -> str | None:
    """``reward.terms.<term>.weight`` -> ``<term>.weight``; ``...<term>.params.<f>`` -> ``<term>.<f>``."""
    prefix = TERMS_PATH + "."
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix):].split(".")
    if len(parts) == 2 and parts[1] == "weight":
        return f"{parts[0]}.weight"
    if len(parts) == 3 and parts[1] == "params":
        return f"{parts[0]}.{parts[2]}"
    return None


def check_batchable(sweep: Any, cfg: ExperimentConfig) -> None:
    """Refuse a ``batch > 1`` sweep that one compiled program cannot train (a clear message, no trial run)."""
    from rewardlab.experiment.batched import is_batched

    if not is_batched(cfg.agent.name):
        raise ConfigError(f"sweep.batch: {sweep.batch} needs an agent that trains many runs in one program "
                          f"(jax_ppo); agent {cfg.agent.name!r} trains one run at a time (use batch: 1)")
    if cfg.reward.variants:
        raise ConfigError("sweep.batch: the sweep makes its own reward variants (one per trial); remove "
                          "reward.variants from the experiment")
    bad = []
    for path, spec in sweep.params.items():
        numeric = spec.choices is None or all(isinstance(c, int | float) and not isinstance(c, bool)
                                              for c in spec.choices)
        if _variant_key(path) is None or not numeric:
            bad.append(path)
    if bad:
        raise ConfigError(f"sweep.batch: {sweep.batch} trains trials as reward variants of one compiled program, "
                          "so only numeric reward parameters can be swept (reward.terms.<name>.weight or "
                          f"reward.terms.<name>.params.<field>); not: {', '.join(bad)} (use batch: 1)")


def variant_overrides(values: dict[str, Any]) -> dict[str, float]:
    """A trial's sampled ``{path: value}`` as a variant's ``{"<term>.<param>": value}``.

    >>> variant_overrides({"reward.terms.potential.weight": 0.5, "reward.terms.bonus.params.reward": 2})
    {'potential.weight': 0.5, 'bonus.reward': 2.0}
    """
    return {_variant_key(path): float(value) for path, value in values.items()}


def run_batch(plan: SweepPlan, study: Any, storage: Any, trials: list[Any],
              on_progress: Callable[[int, int, int, float | None], None] | None = None) -> list[TrialEvent]:
    """Train ``trials`` in one program and tell the study each one's value; one event per trial."""
    from optuna.trial import TrialState

    from rewardlab.experiment.runner import run_experiment

    t0 = time.time()
    events: list[TrialEvent] = []
    variants: dict[str, dict[str, float]] = {}
    members: list[tuple[Any, dict[str, Any]]] = []
    for trial in trials:
        try:
            cfg, values = _trial_config(plan, trial)
        except RewardLabError as e:
            events.append(_finish(study, trial, TrialState.FAIL, t0=t0, values={},
                                  error=f"invalid trial config: {e}"))
            continue
        trial.set_user_attr(ATTR_VALUES, values)
        trial.set_user_attr(ATTR_CONFIG, dump_config(cfg.model_copy(update={"sweep": None})))
        variants[variant_name(trial.number)] = variant_overrides(values)
        members.append((trial, values))
    if not members:
        return events
    first = members[0][0].number
    base = plan.cfg
    cfg = base.model_copy(update={
        "name": f"{plan.study}_batch{first:04d}", "sweep": None,
        "reward": base.reward.model_copy(update={"variants": variants}),
        "train": base.train.model_copy(update={"seeds": plan.seeds})})
    progress = None
    if on_progress is not None:
        progress = lambda label, step, total, sps, ret: on_progress(first, step, total, ret)  # noqa: E731
    try:
        with contextlib.ExitStack() as beats:
            for trial, _ in members:
                beats.enter_context(_heartbeat(storage, trial, plan.sweep.heartbeat_interval))
            summary = run_experiment(cfg, out=plan.dir / "trials" / f"batch_{first:04d}", on_progress=progress)
    except KeyboardInterrupt:
        # Not the trials' fault: fail them without an error and re-queue them (as an unbatched
        # sweep does); the next `rewardlab sweep` trains them again from the start.
        import optuna

        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=plan.sweep.max_retry)
        for trial, values in members:
            _finish(study, trial, TrialState.FAIL, t0=t0, values=values)
        frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
        for trial, _ in members:
            retry(study, frozen[trial.number])
        raise
    except Exception as e:  # a crashing batch fails its trials; the sweep goes on
        error = f"batch of trials {[t.number for t, _ in members]}: {type(e).__name__}: {e}"
        return events + [_finish(study, t, TrialState.FAIL, t0=t0, values=v, error=error) for t, v in members]
    for trial, values in members:
        run = summary.run_dir / variant_name(trial.number)
        result = json.loads((run / "summary.json").read_text())
        trial.set_user_attr(ATTR_RUN_PARENT, str(run))
        value = float(result["true_return_mean"])
        if not math.isfinite(value):
            events.append(_finish(study, trial, TrialState.FAIL, t0=t0, values=values,
                                  error=f"non-finite objective {value}"))
            continue
        if result["success_rate_mean"] is not None:
            trial.set_user_attr(ATTR_SUCCESS, result["success_rate_mean"])
        trial.set_user_attr(ATTR_RETURN_STD, result["true_return_std_over_seeds"])
        events.append(_finish(study, trial, TrialState.COMPLETE, t0=t0, values=values, value=value))
    return events
