"""The runner path of *batched* agents (``jax_ppo``): every seed in one compiled program.

A batched agent is a registered class with ``batched = True`` (``rewardlab.jax.trainer.JaxPPOTrainer``)
that trains all seeds at once in chunks of updates (see its docstring for the methods this
module calls). This module writes the same run directory as ``runner.run_experiment`` — per seed
``metrics.jsonl`` (training rows per update, ``eval`` rows, the ``final`` row), TensorBoard events,
``status.json``, ``final_eval.json``; ``summary.json`` — so ``rewardlab.results``, ``summary``,
``compare`` and ``plot`` read it like any run. One difference: the checkpoint holds all seeds
together, in ``<run>/checkpoint/`` with the same ``manifest.json`` as a seed's (a ``--resume``
checks it, then continues every seed from the last chunk).

With ``reward.variants`` (named overrides of numeric reward parameters, e.g. sparse / shaped /
a bonus) every variant trains every seed in the same program, and each variant gets its own run
directory inside the run, ``<run>/<variant>/`` (its resolved ``config.yaml``, ``seed_*``,
``summary.json``), so ``rewardlab summary <run>/sparse <run>/pbrs`` compares them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import ExperimentConfig, dump_config
from rewardlab.errors import ConfigError, RunDirError, RunStopped
from rewardlab.experiment.evaluate import EvalResult
from rewardlab.experiment.runner import (
    CKPT_DIR,
    CONFIG_FILE,
    FINAL_FILE,
    STATUS_FILE,
    SUMMARY_FILE,
    RunSummary,
    SeedResult,
    _eval_metrics,
    _Logger,
    _write_json,
    verify_checkpoint,
    write_manifest,
)

__all__ = ["is_batched", "run_batched", "VARIANT_FILE"]

VARIANT_FILE = "variant.json"
"""marks ``<run>/<variant>/``: a variant's own config and seeds, inside the run that trained it"""


def is_batched(agent_name: str) -> bool:
    """Whether the registered agent trains all seeds in one program (``batched = True``)."""
    from rewardlab.agents import AGENTS

    return bool(getattr(AGENTS.get(agent_name), "batched", False))


def _result(res: EvalResult) -> dict[str, Any]:
    return {"true_return_mean": res.mean_return, "true_return_std": res.std_return,
            "success_rate": res.success_rate, "episode_length_mean": float(np.mean(res.lengths)),
            "episodes": int(len(res.returns))}


def _save(trainer: Any, state: Any, run_dir: Path, runner_state: dict[str, Any]) -> None:
    tmp, final, old = run_dir / (CKPT_DIR + ".tmp"), run_dir / CKPT_DIR, run_dir / (CKPT_DIR + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save(state, tmp)
    _write_json(tmp / "runner_state.json", runner_state)
    write_manifest(tmp)  # last: a checkpoint without it is incomplete
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _load(trainer: Any, run_dir: Path) -> tuple[Any, dict[str, Any]] | None:
    """The last checkpoint, checked against its manifest (a damaged one is refused, not trained on)."""
    for ckpt in (run_dir / CKPT_DIR, run_dir / (CKPT_DIR + ".old")):  # .old: a crash between the renames
        if ckpt.is_dir():
            verify_checkpoint(ckpt, str(run_dir))
            return trainer.load(ckpt), json.loads((ckpt / "runner_state.json").read_text())
    return None


def _variant_config(cfg: ExperimentConfig, name: str, overrides: dict[str, float]) -> ExperimentConfig:
    """The experiment one variant is: ``cfg`` without variants, the overrides applied to its terms."""
    terms = [t.model_copy(deep=True) for t in cfg.reward.terms]
    by_name = {t.as_ or t.name: t for t in terms}
    for key, value in overrides.items():
        term, _, field = key.partition(".")
        if term not in by_name:
            raise ConfigError(f"reward.variants.{name}.{key}: no term {term!r}; terms: {', '.join(by_name)}")
        if field == "weight":
            by_name[term].weight = float(value)
        else:
            by_name[term].params[field] = value
    reward = cfg.reward.model_copy(update={"terms": terms, "variants": None})
    return cfg.model_copy(update={"name": f"{cfg.name}-{name}", "reward": reward})


def run_batched(cfg: ExperimentConfig, run_dir: Path, *, resume: bool,
                on_progress: Callable[[int, int, int, float, float | None], None] | None = None,
                on_eval: Callable[[int, int, dict[str, float]], None] | None = None) -> RunSummary:
    """Train every seed of ``cfg`` in one program, writing ``run_dir`` (see the module docstring)."""
    from rewardlab.agents import AGENTS

    if (run_dir / VARIANT_FILE).is_file():
        raise RunDirError(f"{run_dir} is one variant of the run {run_dir.parent}: resume that one")
    variants = getattr(cfg.reward, "variants", None)
    trainer = AGENTS.get(cfg.agent.name)(
        env_id=cfg.env.id, env_kwargs=dict(cfg.env.kwargs), n_envs=cfg.env.n_envs,
        reward_specs=[t.spec() for t in cfg.reward.terms], clip=cfg.reward.clip, gamma=cfg.agent.gamma,
        params=dict(cfg.agent.params), total_steps=cfg.train.total_steps, seeds=cfg.train.seeds,
        variants=variants)
    # One label and one seed directory per run: seed_<s>, or <variant>/seed_<s> with variants.
    seeds = [s if v is None else f"{v}/{s}" for v, s in trainer.runs]
    dirs = [run_dir / f"seed_{s}" if v is None else run_dir / v / f"seed_{s}" for v, s in trainer.runs]
    for name in variants or {}:
        (run_dir / name).mkdir(exist_ok=True)
        (run_dir / name / CONFIG_FILE).write_text(dump_config(_variant_config(cfg, name, variants[name])))
        _write_json(run_dir / name / VARIANT_FILE, {"variant": name, "overrides": variants[name]})
    for d in dirs:
        d.mkdir(exist_ok=True)
    per_update = trainer.steps_per_update
    chunk = max(1, min(cfg.log.checkpoint_every, cfg.eval.every_steps) // per_update)
    loaded = _load(trainer, run_dir) if resume else None
    if loaded is None:
        state, step = trainer.init(), 0
        rs = {"step": 0, "next_eval": cfg.eval.every_steps, "elapsed": 0.0}
    else:
        state, rs = loaded
        step = trainer.num_timesteps(state)
    loggers = [_Logger(d, cfg.log.tensorboard, step if resume else None) for d in dirs]
    t0 = time.time() - rs["elapsed"]
    last_return: list[float | None] = [None] * len(seeds)

    def status(status: str, **extra: Any) -> None:
        for d in dirs:
            _write_json(d / STATUS_FILE, {"status": status, "step": step, **extra})

    status("running")
    try:
        while step < trainer.total_steps:
            n = min(chunk, (trainer.total_steps - step) // per_update)
            state, rows = trainer.run_chunk(state, n)
            step = trainer.num_timesteps(state)
            for i, seed_rows in enumerate(rows):
                for row in seed_rows:
                    values = {k: v for k, v in row.items() if k != "step"}
                    loggers[i].log(row["step"], values)
                    if "charts/true_return" in values:
                        last_return[i] = values["charts/true_return"]
            if step >= rs["next_eval"]:
                for i, ev in enumerate(trainer.evaluate(state, cfg.eval.episodes, cfg.eval.deterministic)):
                    m = _eval_metrics(EvalResult(ev["returns"], ev["lengths"], ev["successes"]))
                    loggers[i].log(step, m, kind="eval")
                    if on_eval:
                        on_eval(seeds[i], step, m)  # may raise RunStopped
                while rs["next_eval"] <= step:
                    rs["next_eval"] += cfg.eval.every_steps
            rs.update(step=step, elapsed=time.time() - t0)
            _save(trainer, state, run_dir, rs)
            status("running")
            if on_progress:
                # One progress line for the program: aggregate SPS, the mean of the runs' last returns.
                sps = len(seeds) * n * per_update / max(trainer.last_chunk_seconds, 1e-9)
                known = [r for r in last_return if r is not None]
                label = seeds[0] if len(seeds) == 1 else f"all {len(seeds)}"
                on_progress(label, step, trainer.total_steps, sps, float(np.mean(known)) if known else None)
        summary = RunSummary(run_dir)
        finals = trainer.evaluate(state, cfg.eval.final_episodes, cfg.eval.deterministic)
        wall = time.time() - t0
        for i, (s, d, ev) in enumerate(zip(seeds, dirs, finals, strict=True)):
            res = EvalResult(ev["returns"], ev["lengths"], ev["successes"])
            loggers[i].log(step, _eval_metrics(res), kind="final")
            result = _result(res)
            _write_json(d / FINAL_FILE, result)
            summary.seeds.append(SeedResult(s, d, step, wall, result))
        status("done")
        batched = {"runs_in_one_program": len(seeds), "wall_time_s": round(wall, 1),
                   "compile_s": round(trainer.compile_seconds, 1)}
        if variants:
            per = {}
            for name in variants:
                sub = RunSummary(run_dir / name, [r for (v, _), r in zip(trainer.runs, summary.seeds, strict=True)
                                                  if v == name])
                per[name] = sub.as_dict()
                _write_json(run_dir / name / SUMMARY_FILE, per[name])
            _write_json(run_dir / SUMMARY_FILE, {"variants": per, "batched": batched})
        else:
            _write_json(run_dir / SUMMARY_FILE, summary.as_dict() | {"batched": batched})
        return summary
    except KeyboardInterrupt:
        status("interrupted")
        raise
    except RunStopped as e:
        status("stopped", reason=str(e))
        raise
    except Exception as e:
        status("failed", error=f"{type(e).__name__}: {e}")
        raise
    finally:
        for lg in loggers:
            lg.close()
