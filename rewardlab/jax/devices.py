"""Spread a batch of independent runs over the machine's devices.

A batched ``jax_ppo`` program is a ``vmap`` over runs (seeds × reward variants) that never talk
to each other, so its leading axis can be split across devices with no communication. On a GPU
host ``jax.devices()`` lists the GPUs; on a CPU host XLA shows one device unless asked for more,
and one CPU device runs one run-batch at a time on (mostly) one core. ``rewardlab.jax`` therefore
asks XLA, before JAX starts its CPU backend, for one host device per usable core
(``--xla_force_host_platform_device_count``; measured on 2 cores: 211k → 440k aggregate steps/s
for 16 CartPole runs, docs/jax.md). Set ``REWARDLAB_JAX_HOST_DEVICES=1`` (or your own
``XLA_FLAGS`` with that option) to keep one device. If JAX was already initialised when
``rewardlab.jax`` was imported, the flag has no effect and everything runs on one device.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["request_host_devices", "run_sharding", "use_compilation_cache", "DEFAULT_CACHE_DIR"]

DEFAULT_CACHE_DIR = "~/.cache/rewardlab/jax"
"""where compiled programs persist between runs unless ``JAX_COMPILATION_CACHE_DIR`` says otherwise"""

_FLAG = "--xla_force_host_platform_device_count"


def request_host_devices() -> None:
    """Add the host-device-count flag to ``XLA_FLAGS`` (no jax import; no-op if already set)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return
    from rewardlab.core.threads import usable_cores

    wanted = os.environ.get("REWARDLAB_JAX_HOST_DEVICES")
    try:
        n = int(wanted) if wanted else usable_cores()
    except ValueError:  # a typo in the variable: one device per core
        n = usable_cores()
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={n}".strip()


def run_sharding(num_runs: int) -> Any:
    """The sharding that splits a leading axis of ``num_runs`` over as many devices as divide it.

    A single sharding object serves every leaf whose first axis is the runs axis (states, keys,
    reward parameters, metrics). With one usable device it is a plain single-device placement.
    """
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    used = max(d for d in range(1, len(devices) + 1) if num_runs % d == 0)
    mesh = Mesh(np.array(devices[:used]), ("runs",))
    return NamedSharding(mesh, PartitionSpec("runs"))


def use_compilation_cache() -> None:
    """Keep compiled programs on disk between runs (a re-run of the same experiment skips its
    10–60 s compile), in ``JAX_COMPILATION_CACHE_DIR`` if set, else ``DEFAULT_CACHE_DIR``.
    Leaves a cache directory configured by the user alone."""
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(DEFAULT_CACHE_DIR))
