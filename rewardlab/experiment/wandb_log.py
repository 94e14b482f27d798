"""Optional Weights & Biases logging for the runner (``log.wandb`` in an experiment file).

One W&B run per seed, grouped by the run directory's name, with the resolved config; every
row the runner writes to ``metrics.jsonl`` is logged at its step, and evaluation videos as
``eval/video``. ``mode: offline`` (the default) writes ``seed_<s>/wandb/offline-run-*`` and
needs no network or login; ``wandb sync <dir>`` uploads it later. A resumed seed starts a new
W&B run in the same group (W&B refuses steps that go back to the checkpoint's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.errors import ConfigError

__all__ = ["WandbLogger"]


class WandbLogger:
    """A W&B run for one seed; ``log``, ``video``, ``close``."""

    def __init__(self, cfg: Any, seed_dir: Path, *, group: str, name: str, config: dict[str, Any]):
        try:
            import wandb
        except ImportError as e:
            raise ConfigError("log.wandb needs the wandb package: pip install 'rewardlab[wandb]', "
                              "or remove log.wandb") from e
        self._wandb = wandb
        try:
            self.run = wandb.init(project=cfg.project, entity=cfg.entity, mode=cfg.mode, tags=list(cfg.tags),
                                  dir=str(seed_dir), group=group, name=name, config=config, reinit="create_new",
                                  settings=wandb.Settings(silent=True, console="off"))
        except Exception as e:  # noqa: BLE001 - a login or network problem in online mode, said in one line
            raise ConfigError(f"log.wandb: wandb.init failed ({type(e).__name__}: {e}); "
                              "use log.wandb.mode=offline to log without network") from e

    def log(self, step: int, values: dict[str, float]) -> None:
        if values:
            self.run.log(values, step=int(step))

    def video(self, step: int, path: Path, fps: int) -> None:
        self.run.log({"eval/video": self._wandb.Video(str(path), fps=fps, format="mp4")}, step=int(step))

    def close(self) -> None:
        self.run.finish()
        # finish() returns before W&B's service has written the offline run; stopping the
        # service flushes it, so the seed's run is on disk when the seed ends.
        self._wandb.teardown()
