"""``run_experiment``: train one agent per seed on the shaped env, log, evaluate, checkpoint.

Run directory (never reused; a name clash gets a suffix)::

    runs/<name>__<timestamp>/
      config.yaml            resolved config (defaults filled in)
      summary.json           final evaluation, mean ± std over seeds
      seed_<s>/
        status.json          running | interrupted | failed | done, last step, error
        metrics.jsonl        one line per training iteration / evaluation
        events.out.tfevents.*  TensorBoard: charts/, losses/, eval/, reward_terms/
        checkpoint/          latest resumable checkpoint (agent state + runner state)
        final_eval.json      true return and success rate over eval.final_episodes

``--resume DIR`` continues every unfinished seed from its checkpoint to the same total step
count: metrics after the checkpoint are dropped and re-logged, so nothing is lost or doubled.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rewardlab.errors import ConfigError, RewardLabError, RunDirError, RunStopped
from rewardlab.core import keys
from rewardlab.config import ExperimentConfig, dump_config, parse_config
from rewardlab.experiment.evaluate import EvalResult, evaluate

__all__ = ["run_experiment", "SeedResult", "RunSummary", "find_run_dir", "seed_dirs",
           "read_metrics"]

CONFIG_FILE, SUMMARY_FILE, STATUS_FILE = "config.yaml", "summary.json", "status.json"
METRICS_FILE, FINAL_FILE, CKPT_DIR = "metrics.jsonl", "final_eval.json", "checkpoint"


@dataclass
class SeedResult:
    seed: int
    run_dir: Path
    steps: int
    wall_time: float
    final: dict[str, Any]


@dataclass
class RunSummary:
    run_dir: Path
    seeds: list[SeedResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        rets = np.array([s.final["true_return_mean"] for s in self.seeds])
        succ = [s.final["success_rate"] for s in self.seeds if s.final["success_rate"] is not None]
        return {
            "true_return_mean": float(rets.mean()),
            "true_return_std_over_seeds": float(rets.std()),
            "success_rate_mean": float(np.mean(succ)) if succ else None,
            "success_rate_std_over_seeds": float(np.std(succ)) if succ else None,
            "seeds": {str(s.seed): s.final | {"steps": s.steps, "wall_time_s": round(s.wall_time, 1)}
                      for s in self.seeds},
        }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _new_run_dir(parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = parent / f"{name}__{stamp}"
    for i in range(1000):
        candidate = base if i == 0 else base.with_name(f"{base.name}_{i}")
        try:
            candidate.mkdir()  # atomic: a run never takes over another run's directory
            return candidate
        except FileExistsError:
            continue
    raise RewardLabError(f"could not create a fresh run directory under {parent}")


def find_run_dir(path: Path) -> Path:
    """The experiment directory of ``path`` (itself or the parent of a ``seed_*`` dir)."""
    path = Path(path)
    for candidate in (path, path.parent):
        if (candidate / CONFIG_FILE).is_file() and any(candidate.glob("seed_*")):
            return candidate
    raise RunDirError(
        f"{path} is not a rewardlab run directory (expected {CONFIG_FILE} and seed_* subdirectories, "
        "as written by `rewardlab run`)"
    )


def seed_dirs(path: Path) -> list[Path]:
    """The seed directories of a run (or the directory itself if it is one)."""
    path = Path(path)
    if (path / METRICS_FILE).is_file():
        return [path]
    dirs = sorted(p for p in path.glob("seed_*") if (p / METRICS_FILE).is_file())
    if not dirs:
        raise RunDirError(f"{path} has no {METRICS_FILE} (not a run directory written by `rewardlab run`)")
    return dirs


def read_metrics(seed_dir: Path) -> list[dict[str, Any]]:
    """The rows of a seed directory's metrics file, in order."""
    return [json.loads(line) for line in (Path(seed_dir) / METRICS_FILE).read_text().splitlines() if line]


class _Logger:
    """metrics.jsonl + TensorBoard, truncated at ``resume_step`` when resuming."""

    def __init__(self, seed_dir: Path, tensorboard: bool, resume_step: int | None):
        self.path = seed_dir / METRICS_FILE
        if resume_step is not None and self.path.exists():
            kept = [row for row in read_metrics(seed_dir) if row["step"] <= resume_step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
        self.file = self.path.open("a")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError(f"log.tensorboard needs the tensorboard package ({e}); pip install tensorboard "
                                  "or set log.tensorboard=false") from e
            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(str(seed_dir), purge_step=purge)

    def log(self, step: int, values: dict[str, float], kind: str = "train") -> None:
        clean = {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}
        self.file.write(json.dumps({"step": int(step), "kind": kind, **clean}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for k, v in clean.items():
                self.writer.add_scalar(k, v, int(step))

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


def _eval_metrics(res: EvalResult) -> dict[str, float]:
    out = {keys.EVAL_TRUE_RETURN: res.mean_return, keys.EVAL_EPISODE_LENGTH: float(np.mean(res.lengths))}
    if res.success_rate is not None:
        out[keys.EVAL_SUCCESS_RATE] = res.success_rate
    return out


class _SeedRun:
    """One seed: owns its envs, agent, logger and checkpoints."""

    def __init__(self, cfg: ExperimentConfig, seed: int, seed_dir: Path, on_progress: Callable | None,
                 on_eval: Callable | None = None):
        from rewardlab.agents import AGENTS
        from rewardlab.envs import make_vec

        self.cfg, self.seed, self.dir = cfg, seed, seed_dir
        self.on_progress, self.on_eval = on_progress, on_eval
        stack = cfg.reward.build_stack(cfg.agent.gamma)
        self.venv = make_vec(cfg.env.id, cfg.env.n_envs, reward=stack, **cfg.env.kwargs)
        self.eval_env = make_vec(cfg.env.id, cfg.eval.n_envs, **cfg.env.kwargs)
        self.agent = AGENTS.get(cfg.agent.name)(self.venv, gamma=cfg.agent.gamma, seed=seed,
                                                params=dict(cfg.agent.params))
        self.next_eval = cfg.eval.every_steps
        self.next_ckpt = cfg.log.checkpoint_every
        self.last_true_return: float | None = None
        self.t_start = time.time()
        self.elapsed_before = 0.0
        self.last_sps_t, self.last_sps_step = time.time(), 0

    # -- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        tmp = self.dir / (CKPT_DIR + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.agent.save(tmp)
        state = {"step": self.agent.num_timesteps, "next_eval": self.next_eval, "next_ckpt": self.next_ckpt,
                 "elapsed": self.elapsed()}
        _write_json(tmp / "runner_state.json", state)
        final = self.dir / CKPT_DIR
        old = self.dir / (CKPT_DIR + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> int:
        ckpt = self.dir / CKPT_DIR
        if not (ckpt / "runner_state.json").is_file():
            old = self.dir / (CKPT_DIR + ".old")  # a crash between the two renames
            if (old / "runner_state.json").is_file():
                ckpt = old
            else:
                return 0
        self.agent.load(ckpt)
        state = json.loads((ckpt / "runner_state.json").read_text())
        self.next_eval, self.next_ckpt = state["next_eval"], state["next_ckpt"]
        self.elapsed_before = state.get("elapsed", 0.0)
        return int(state["step"])

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.t_start

    # -- the training callback -----------------------------------------------------------
    def on_iteration(self, step: int, metrics: dict[str, float]) -> bool:
        now = time.time()
        values = dict(metrics)
        values[keys.SPS] = (step - self.last_sps_step) / max(now - self.last_sps_t, 1e-9)
        self.last_sps_t, self.last_sps_step = now, step
        ep = keys.episode_metrics(self.venv.pop_episodes())
        values.update(ep)
        if keys.TRUE_RETURN in ep:
            self.last_true_return = ep[keys.TRUE_RETURN]
        self.logger.log(step, values)
        if step >= self.next_eval:
            res = self.evaluate(self.cfg.eval.episodes)
            self.logger.log(step, _eval_metrics(res), kind="eval")
            while self.next_eval <= step:
                self.next_eval += self.cfg.eval.every_steps
            if self.on_eval:
                self.on_eval(step, _eval_metrics(res))  # may raise RunStopped (a pruned sweep trial)
        if step >= self.next_ckpt:
            while self.next_ckpt <= step:
                self.next_ckpt += self.cfg.log.checkpoint_every
            self.save_checkpoint()
            _write_json(self.dir / STATUS_FILE, {"status": "running", "step": step})
        if self.on_progress:
            self.on_progress(step, values[keys.SPS], self.last_true_return)
        return True

    def evaluate(self, episodes: int) -> EvalResult:
        return evaluate(self.agent.act, self.eval_env, episodes, seed=10_000 + self.seed,
                        deterministic=self.cfg.eval.deterministic)

    def run(self, resume: bool) -> SeedResult:
        start = self.load_checkpoint() if resume else 0
        self.last_sps_step = start
        self.logger = _Logger(self.dir, self.cfg.log.tensorboard, start if resume else None)
        _write_json(self.dir / STATUS_FILE, {"status": "running", "step": start})
        try:
            self.agent.learn(self.cfg.train.total_steps, self)
            final = self.evaluate(self.cfg.eval.final_episodes)
            self.logger.log(self.agent.num_timesteps, _eval_metrics(final), kind="final")
            result = {
                "true_return_mean": final.mean_return,
                "true_return_std": final.std_return,
                "success_rate": final.success_rate,
                "episode_length_mean": float(np.mean(final.lengths)),
                "episodes": int(len(final.returns)),
            }
            self.save_checkpoint()
            _write_json(self.dir / FINAL_FILE, result)
            _write_json(self.dir / STATUS_FILE, {"status": "done", "step": self.agent.num_timesteps})
            return SeedResult(self.seed, self.dir, self.agent.num_timesteps, self.elapsed(), result)
        except KeyboardInterrupt:
            _write_json(self.dir / STATUS_FILE, {"status": "interrupted", "step": self.agent.num_timesteps})
            raise
        except RunStopped as e:
            _write_json(self.dir / STATUS_FILE, {"status": "stopped", "step": self.agent.num_timesteps,
                                                 "reason": str(e)})
            raise
        except Exception as e:
            _write_json(self.dir / STATUS_FILE, {"status": "failed", "step": self.agent.num_timesteps,
                                                 "error": f"{type(e).__name__}: {e}"})
            raise
        finally:
            self.logger.close()
            self.venv.close()
            self.eval_env.close()


def run_experiment(cfg: ExperimentConfig | None = None, *, out: Path | None = None, resume: Path | None = None,
                   on_progress: Callable[[int, int, int, float, float | None], None] | None = None,
                   on_eval: Callable[[int, int, dict[str, float]], None] | None = None) -> RunSummary:
    """Run (or resume) an experiment; returns the per-seed final evaluations.

    ``on_progress(seed, step, total, sps, true_return)`` is called after every iteration and
    ``on_eval(seed, step, eval_metrics)`` after every periodic evaluation (``eval/`` keys of the
    unshaped env); it may raise ``RunStopped`` to end the run early (the seed's status.json says
    ``stopped``).
    """
    if resume is not None:
        run_dir = find_run_dir(resume)
        cfg = parse_config(yaml.safe_load((run_dir / CONFIG_FILE).read_text()), str(run_dir / CONFIG_FILE))
    else:
        if cfg is None:
            raise ValueError("run_experiment needs a config or a resume directory")
        run_dir = _new_run_dir(Path(out) if out else Path(cfg.log.dir), cfg.name)
        (run_dir / CONFIG_FILE).write_text(dump_config(cfg))
    from rewardlab.experiment.batched import is_batched, run_batched

    if is_batched(cfg.agent.name):  # all seeds in one compiled program (jax_ppo)
        return run_batched(cfg, run_dir, resume=resume is not None, on_progress=on_progress, on_eval=on_eval)
    summary = RunSummary(run_dir)
    for seed in cfg.train.seeds:
        seed_dir = run_dir / f"seed_{seed}"
        if resume is not None and (seed_dir / FINAL_FILE).is_file():
            final = json.loads((seed_dir / FINAL_FILE).read_text())
            status = json.loads((seed_dir / STATUS_FILE).read_text())
            summary.seeds.append(SeedResult(seed, seed_dir, status["step"], 0.0, final))
            continue
        seed_dir.mkdir(exist_ok=True)
        progress = None
        if on_progress is not None:
            progress = lambda step, sps, ret, _s=seed: on_progress(_s, step, cfg.train.total_steps, sps, ret)  # noqa: E731
        evals = None if on_eval is None else (lambda step, m, _s=seed: on_eval(_s, step, m))
        summary.seeds.append(_SeedRun(cfg, seed, seed_dir, progress, evals).run(resume=resume is not None))
    _write_json(run_dir / SUMMARY_FILE, summary.as_dict())
    return summary
