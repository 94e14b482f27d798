"""Checkpoints of the PPO core and its variants: one file per agent directory, one loader.

Every checkpoint is loaded with ``torch.load(..., weights_only=True)`` (``WEIGHTS_ONLY``): the
state holds only tensors and plain Python data (configs as dicts, RNG states), so nothing in a
checkpoint file can run code when it is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rewardlab.errors import InvalidArgument

__all__ = ["WEIGHTS_ONLY", "save_checkpoint", "load_checkpoint", "check_same_config"]

WEIGHTS_ONLY = True
"""how every checkpoint of the core is loaded (chosen once, here)"""

RUNTIME_FIELDS = ("torch_threads",)
"""config fields that may differ between the saving and the loading run"""


def save_checkpoint(state: dict[str, Any], path: Path | str, file: str) -> None:
    """Write ``state`` to ``path/file`` (the directory is created if missing)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(state, path / file)


def load_checkpoint(path: Path | str, file: str, label: str) -> dict[str, Any]:
    """The state saved in ``path/file``; ``label`` names the agent in the error when it is missing."""
    target = Path(path) / file
    if not target.is_file():
        raise InvalidArgument(f"{path} is not a {label} checkpoint directory (no {file})")
    return torch.load(target, weights_only=WEIGHTS_ONLY)


def check_same_config(saved: dict[str, Any], ours: dict[str, Any], path: Path | str, label: str) -> None:
    """Refuse a checkpoint whose config differs from ours (runtime-only fields excepted)."""
    diff = sorted(k for k, v in saved.items() if k not in RUNTIME_FIELDS and ours.get(k) != v)
    if diff:
        raise InvalidArgument(f"checkpoint {path} was saved with a different {label} config (fields: {diff})")
