"""``run_experiment``: train one agent per seed on the shaped env, log, evaluate, checkpoint.

Run directory (never reused; a name clash gets a suffix)::

    runs/<name>__<timestamp>/
      config.yaml            resolved config (defaults filled in)
      summary.json           final evaluation, mean ± std over seeds
      seed_<s>/
        status.json          running | interrupted | failed | done, last step, last checkpoint step, error
        metrics.jsonl        one line per training iteration / evaluation
        events.out.tfevents.*  TensorBoard: charts/, losses/, eval/, reward_terms/ (eval/video with log.video)
        videos/              with log.video: <eval|final>_step_<n>.mp4, one evaluation episode each
        wandb/               with log.wandb: the W&B run (offline-run-* in offline mode)
        checkpoint/          latest resumable checkpoint (agent state + runner state + manifest.json)
        final_eval.json      true return and success rate over eval.final_episodes

``--resume DIR`` continues every unfinished seed from its checkpoint to the same total step
count: metrics after the checkpoint (and the ``final`` row of an unfinished final evaluation)
are dropped and re-logged, so nothing is lost or doubled. The checkpoint is verified first:
``manifest.json`` (written last) holds every file's size and SHA-256, and ``runner_state.json``
the number of metrics rows it covers. A damaged checkpoint, a missing one where ``status.json``
says one was written, or metrics rows lost before the checkpoint stop ``--resume`` with a
``RunDirError`` naming the seed and the file — the seed is never started over silently and
``metrics.jsonl`` is left as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.config import ExperimentConfig, dump_config, parse_config
from rewardlab.core import keys
from rewardlab.errors import ConfigError, RewardLabError, RunDirError, RunStopped
from rewardlab.experiment.evaluate import EvalResult, evaluate

__all__ = ["run_experiment", "SeedResult", "RunSummary", "find_run_dir", "seed_dirs",
           "read_metrics", "write_manifest", "verify_checkpoint"]

CONFIG_FILE, SUMMARY_FILE, STATUS_FILE = "config.yaml", "summary.json", "status.json"
METRICS_FILE, FINAL_FILE, CKPT_DIR = "metrics.jsonl", "final_eval.json", "checkpoint"
STATE_FILE, MANIFEST_FILE = "runner_state.json", "manifest.json"


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


def _write_json(path: Path, data: dict[str, Any], *, sync: bool = False) -> None:
    """Write ``path`` atomically (a temporary file renamed over it); ``sync``: flushed to disk first."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        f.write(json.dumps(data, indent=2))
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object written by the runner, or a ``RunDirError`` naming the file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path}: {what} cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: {what} is not a JSON object")
    return data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        os.fsync(f.fileno())  # on disk before the manifest that vouches for it
    return h.hexdigest()


def write_manifest(ckpt: Path) -> None:
    """Write ``ckpt/manifest.json``: size and SHA-256 of every other file (call it last)."""
    files = {p.relative_to(ckpt).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(ckpt.rglob("*")) if p.is_file() and p.name != MANIFEST_FILE}
    _write_json(ckpt / MANIFEST_FILE, {"files": files}, sync=True)


def verify_checkpoint(ckpt: Path, label: str) -> None:
    """Refuse (``RunDirError``, prefixed ``label``) a checkpoint whose files differ from its manifest."""
    name = ckpt.name

    def fail(problem: str) -> RunDirError:
        return RunDirError(f"{label}: {problem}; refusing to resume from a damaged checkpoint")

    manifest = ckpt / MANIFEST_FILE
    if not manifest.is_file():
        raise fail(f"{name}/{MANIFEST_FILE} is missing (the checkpoint is incomplete, or was written by an older "
                   "rewardlab)")
    try:
        files = json.loads(manifest.read_text())["files"]
        entries = [(str(rel), int(m["bytes"]), str(m["sha256"])) for rel, m in files.items()]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise fail(f"{name}/{MANIFEST_FILE} cannot be read ({type(e).__name__})") from None
    if STATE_FILE not in files:
        raise fail(f"{name}/{MANIFEST_FILE} does not list {STATE_FILE}")
    for rel, size, digest in entries:
        path = ckpt / rel
        if not path.is_file():
            raise fail(f"{name}/{rel} is missing (its manifest lists it)")
        actual = path.stat().st_size
        if actual != size:
            raise fail(f"{name}/{rel}: {actual} bytes, the manifest says {size} (truncated or damaged)")
        if _sha256(path) != digest:
            raise fail(f"{name}/{rel} does not match its checksum in the manifest (damaged)")


def _new_run_dir(parent: Path, name: str) -> Path:
    if not name or Path(name).name != name or name in (".", "..") or "\\" in name:
        # The config refuses such names (ExperimentConfig.name); a run directory never leaves ``parent``.
        raise RunDirError(f"run name {name!r} must be one directory name inside {parent}")
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
    """The experiment directory of ``path`` (itself or the parent of a ``seed_*`` dir); a run with
    reward variants keeps its seeds in ``<variant>/seed_*``."""
    path = Path(path)
    for candidate in (path, path.parent):
        if (candidate / CONFIG_FILE).is_file() and (any(candidate.glob("seed_*")) or any(candidate.glob("*/seed_*"))):
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


def _kept_lines(path: Path, resume_step: int, expect_rows: int | None) -> tuple[list[bytes], bool]:
    """The lines of ``metrics.jsonl`` a resume from ``resume_step`` keeps (verbatim) and whether
    any are dropped: rows up to the step, except ``final`` rows (an unfinished final evaluation is
    redone) and a last line cut short by a kill. ``expect_rows``: how many the checkpoint covers."""
    lines = path.read_bytes().splitlines(keepends=True)
    partial = bool(lines) and not lines[-1].endswith(b"\n")
    kept: list[bytes] = []
    for i, line in enumerate(lines[:-1] if partial else lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            step, kind = int(row["step"]), row.get("kind", "train")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RunDirError(f"{path}: {METRICS_FILE} line {i} is not JSON with a step ({line[:60]!r}); refusing "
                              "to resume (it would rewrite the file)") from None
        if step <= resume_step and kind != "final":
            kept.append(line)
    if expect_rows is not None and len(kept) != expect_rows:
        raise RunDirError(f"{path}: {METRICS_FILE} has {len(kept)} rows up to the checkpoint at step {resume_step}, "
                          f"the checkpoint was written after {expect_rows}; refusing to resume (rows were lost or "
                          "the file was edited)")
    return kept, len(kept) != len(lines)


class _Logger:
    """metrics.jsonl + TensorBoard, truncated at ``resume_step`` when resuming (see ``_kept_lines``).

    ``rows`` counts the training and evaluation rows in the file (not ``final`` ones): a
    checkpoint records it and a resume checks it (``expect_rows``)."""

    def __init__(self, seed_dir: Path, tensorboard: bool, resume_step: int | None, *,
                 expect_rows: int | None = None, wandb: Any = None):
        self.path = seed_dir / METRICS_FILE
        self.wandb = wandb  # a WandbLogger (log.wandb) or None
        self.rows = 0
        if resume_step is not None and self.path.exists():
            kept, dropped = _kept_lines(self.path, resume_step, expect_rows)
            if dropped:  # atomically: a kill now leaves the old file or the new one, never a half
                tmp = self.path.with_suffix(".jsonl.tmp")
                with tmp.open("wb") as f:
                    f.writelines(kept)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            self.rows = len(kept)
        elif expect_rows:
            raise RunDirError(f"{self.path} is missing; the checkpoint was written after {expect_rows} rows: "
                              "refusing to resume (it would leave a gap)")
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
        self.rows += kind != "final"
        if self.writer is not None:
            for k, v in clean.items():
                self.writer.add_scalar(k, v, int(step))
        if self.wandb is not None:
            self.wandb.log(step, clean)

    def video(self, step: int, frames: np.ndarray, path: Path, fps: int) -> None:
        """An evaluation video, already written to ``path``: to TensorBoard and W&B as ``eval/video``."""
        if self.writer is not None:
            from rewardlab.experiment.video import tensorboard_video

            # what SummaryWriter.add_video does, with a GIF encoder that works with moviepy 2
            self.writer._get_file_writer().add_summary(tensorboard_video("eval/video", frames, fps), int(step))
        if self.wandb is not None:
            self.wandb.video(step, path, fps)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.close()


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
        from rewardlab.config.signatures import build_error

        self.video = None
        if cfg.log.video:  # first: an env that cannot draw frames stops the run before anything is built
            from rewardlab.experiment.video import VideoRecorder

            self.video = VideoRecorder(cfg.env.id, dict(cfg.env.kwargs), seed_dir / "videos", cfg.log.video_fps)
        stack = cfg.reward.build_stack(cfg.agent.gamma)
        try:
            self.venv = make_vec(cfg.env.id, cfg.env.n_envs, reward=stack, **cfg.env.kwargs)
            self.eval_env = make_vec(cfg.env.id, cfg.eval.n_envs, **cfg.env.kwargs)
        except Exception as e:
            err = build_error(cfg.env.id, cfg.env.kwargs, e)
            if err is e:
                raise
            raise err from e
        self.agent = AGENTS.get(cfg.agent.name)(self.venv, gamma=cfg.agent.gamma, seed=seed,
                                                params=dict(cfg.agent.params))
        self.next_eval = cfg.eval.every_steps
        self.next_ckpt = cfg.log.checkpoint_every
        self.checkpoint_step: int | None = None  # the step of the last checkpoint written (status.json)
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
                 "elapsed": self.elapsed(), "metrics_rows": self.logger.rows}
        _write_json(tmp / STATE_FILE, state)
        write_manifest(tmp)  # last: a checkpoint without it is incomplete
        final = self.dir / CKPT_DIR
        old = self.dir / (CKPT_DIR + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> tuple[int, int | None]:
        """Restore the verified checkpoint; ``(step, metrics rows it covers)``, ``(0, None)`` when
        none was ever written. Refuses (``RunDirError``) a damaged one, or a missing one that
        ``status.json`` (or the metrics, when it is gone) says was written."""
        ckpt = self.dir / CKPT_DIR
        if not ckpt.is_dir() and (self.dir / (CKPT_DIR + ".old")).is_dir():
            ckpt = self.dir / (CKPT_DIR + ".old")  # a crash between the two renames: the previous one
        label = str(self.dir)
        advice = f"to start this seed over, delete {self.dir} (its metrics go with it)"
        if not ckpt.is_dir():
            evidence = self._checkpoint_evidence()
            if evidence is None:
                return 0, None
            raise RunDirError(f"{label}: no checkpoint to resume from, but {evidence}; refusing to start the seed "
                              f"over (it would rewrite {METRICS_FILE}): {advice}")
        try:
            verify_checkpoint(ckpt, label)
        except RunDirError as e:
            raise RunDirError(f"{e}: {advice}") from None
        state = _read_json(ckpt / STATE_FILE, "the runner state")
        try:
            step, rows = int(state["step"]), state.get("metrics_rows")
            self.next_eval, self.next_ckpt = int(state["next_eval"]), int(state["next_ckpt"])
            self.elapsed_before = float(state.get("elapsed", 0.0))
        except (KeyError, TypeError, ValueError) as e:
            raise RunDirError(f"{label}: {ckpt.name}/{STATE_FILE} lacks {e}: {advice}") from None
        try:
            self.agent.load(ckpt)
        except RewardLabError as e:
            raise RunDirError(f"{label}: {e}") from e
        except Exception as e:  # what the agent's format raises on a file the manifest still vouches for
            raise RunDirError(f"{label}: {ckpt.name} could not be loaded ({type(e).__name__}: {e})") from e
        self.checkpoint_step = step
        return step, None if rows is None else int(rows)

    def _checkpoint_evidence(self) -> str | None:
        """Why a checkpoint should exist although there is none, or None (nothing was saved)."""
        status_path = self.dir / STATUS_FILE
        try:
            status = json.loads(status_path.read_text()) if status_path.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            status = None
        if isinstance(status, dict):
            step = status.get("checkpoint_step")
            return None if step is None else f"{STATUS_FILE} says one was written at step {step}"
        metrics = self.dir / METRICS_FILE
        if metrics.is_file() and metrics.read_bytes().strip():
            return f"{STATUS_FILE} is missing or unreadable and {METRICS_FILE} has rows"
        return None

    def _status(self, status: str, step: int, **extra: Any) -> None:
        data: dict[str, Any] = {"status": status, "step": step}
        if self.checkpoint_step is not None:
            data["checkpoint_step"] = self.checkpoint_step
        _write_json(self.dir / STATUS_FILE, data | extra)

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
            self.record_video(step, "eval")
            while self.next_eval <= step:
                self.next_eval += self.cfg.eval.every_steps
            if self.on_eval:
                self.on_eval(step, _eval_metrics(res))  # may raise RunStopped (a pruned sweep trial)
        if step >= self.next_ckpt:
            while self.next_ckpt <= step:
                self.next_ckpt += self.cfg.log.checkpoint_every
            self.save_checkpoint()
            self.checkpoint_step = step
            self._status("running", step)
        if self.on_progress:
            self.on_progress(step, values[keys.SPS], self.last_true_return)
        return True

    def evaluate(self, episodes: int) -> EvalResult:
        return evaluate(self.agent.act, self.eval_env, episodes, seed=10_000 + self.seed,
                        deterministic=self.cfg.eval.deterministic)

    def record_video(self, step: int, kind: str) -> None:
        """With log.video: the evaluation's first episode (its env's seed), as MP4 + eval/video."""
        if self.video is None:
            return
        frames = self.video.record(self.agent.act, seed=10_000 + self.seed, deterministic=self.cfg.eval.deterministic)
        path = self.video.write(f"{kind}_step_{step}", frames)
        self.logger.video(step, frames, path, self.cfg.log.video_fps)

    def _wandb(self) -> Any:
        """With log.wandb: this seed's W&B run (grouped by the run directory), else None."""
        if self.cfg.log.wandb is None:
            return None
        from rewardlab.experiment.wandb_log import WandbLogger

        run_name = self.dir.parent.name
        return WandbLogger(self.cfg.log.wandb, self.dir, group=run_name, name=f"{run_name}/{self.dir.name}",
                           config=self.cfg.model_dump(mode="json", by_alias=True) | {"seed": self.seed})

    def run(self, resume: bool) -> SeedResult:
        start, rows = self.load_checkpoint() if resume else (0, None)
        self.last_sps_step = start
        self.logger = _Logger(self.dir, self.cfg.log.tensorboard, start if resume else None, expect_rows=rows,
                              wandb=self._wandb())
        self._status("running", start)
        try:
            self.agent.learn(self.cfg.train.total_steps, self)
            final = self.evaluate(self.cfg.eval.final_episodes)
            self.logger.log(self.agent.num_timesteps, _eval_metrics(final), kind="final")
            self.record_video(self.agent.num_timesteps, "final")
            result = {
                "true_return_mean": final.mean_return,
                "true_return_std": final.std_return,
                "success_rate": final.success_rate,
                "episode_length_mean": float(np.mean(final.lengths)),
                "episodes": int(len(final.returns)),
            }
            self.save_checkpoint()
            self.checkpoint_step = self.agent.num_timesteps
            _write_json(self.dir / FINAL_FILE, result)
            self._status("done", self.agent.num_timesteps)
            return SeedResult(self.seed, self.dir, self.agent.num_timesteps, self.elapsed(), result)
        except KeyboardInterrupt:
            self._status("interrupted", self.agent.num_timesteps)
            raise
        except RunStopped as e:
            self._status("stopped", self.agent.num_timesteps, reason=str(e))
            raise
        except Exception as e:
            self._status("failed", self.agent.num_timesteps, error=f"{type(e).__name__}: {e}")
            raise
        finally:
            self.logger.close()
            self.venv.close()
            self.eval_env.close()
            if self.video is not None:
                self.video.close()


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
        from rewardlab.config.loader import load_file

        run_dir = find_run_dir(resume)
        cfg = parse_config(load_file(run_dir / CONFIG_FILE), str(run_dir / CONFIG_FILE))
    else:
        if cfg is None:
            raise ValueError("run_experiment needs a config or a resume directory")
        from rewardlab.experiment.batched import is_batched

        if is_batched(cfg.agent.name) and (cfg.log.video or cfg.log.wandb is not None):
            raise ConfigError(f"log.video / log.wandb are not supported for agent {cfg.agent.name!r} (all seeds in "
                              "one compiled program); set log.video=false and remove log.wandb")
        run_dir = _new_run_dir(Path(out) if out else Path(cfg.log.dir), cfg.name)
        (run_dir / CONFIG_FILE).write_text(dump_config(cfg))
    from rewardlab.experiment.batched import is_batched, run_batched

    if is_batched(cfg.agent.name):  # all seeds in one compiled program (jax_ppo)
        return run_batched(cfg, run_dir, resume=resume is not None, on_progress=on_progress, on_eval=on_eval)
    summary = RunSummary(run_dir)
    for seed in cfg.train.seeds:
        seed_dir = run_dir / f"seed_{seed}"
        if resume is not None and (seed_dir / FINAL_FILE).is_file():
            final = _read_json(seed_dir / FINAL_FILE, "the final evaluation")
            status = _read_json(seed_dir / STATUS_FILE, "the seed's status")
            summary.seeds.append(SeedResult(seed, seed_dir, int(status.get("step", 0)), 0.0, final))
            continue
        seed_dir.mkdir(exist_ok=True)
        progress = None
        if on_progress is not None:
            progress = lambda step, sps, ret, _s=seed: on_progress(_s, step, cfg.train.total_steps, sps, ret)  # noqa: E731
        evals = None if on_eval is None else (lambda step, m, _s=seed: on_eval(_s, step, m))
        summary.seeds.append(_SeedRun(cfg, seed, seed_dir, progress, evals).run(resume=resume is not None))
    _write_json(run_dir / SUMMARY_FILE, summary.as_dict())
    return summary
