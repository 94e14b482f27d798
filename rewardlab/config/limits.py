"""The bounds an experiment file is held to, in one place (``docs/experiments.md`` lists them).

File reading (``rewardlab.config.loader``): ``MAX_FILE_BYTES``, ``MAX_DEPTH``, ``MAX_NODES``.
Values (``rewardlab.config.schema``): ``MAX_SEED``, ``MAX_STEPS``, ``MAX_EPISODES``, ``MAX_ENVS``,
``MAX_WEIGHT``, ``MAX_REWARD``, ``MAX_NAME``. Every integer anywhere must fit 64 bits and every
float must be finite (``rewardlab.config.loader.check_plain_data``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_FILE_BYTES", "MAX_DEPTH", "MAX_NODES", "MAX_SEED", "MAX_STEPS", "MAX_EPISODES", "MAX_ENVS",
           "MAX_WEIGHT", "MAX_REWARD", "MAX_NAME", "INT64"]

MAX_FILE_BYTES = 1 << 20
"""1 MiB: the largest file in ``experiments/`` is ~2 KB; a bigger file is a mistake (or an attack)"""
MAX_DEPTH = 32
"""nesting levels of mappings/lists; real experiments use ≤ 8 (``sweep.params`` inside a term's params)"""
MAX_NODES = 100_000
"""values in a document after YAML alias expansion; real experiments have < 1,000"""

MAX_SEED = 2**31 - 1
"""seeds are 0..2³¹−1: the runner seeds evaluation with ``10000 + seed`` and vector envs with
``seed + i``, and the result must stay inside NumPy's legacy ``2³²`` range (SB3 calls
``np.random.seed``), so every library takes it"""
MAX_STEPS = 10**12
"""environment steps (``train.total_steps``, ``eval.every_steps``, ``log.checkpoint_every``):
10¹² is 11 days at a million steps per second (the JAX path's order of magnitude); more is a typo"""
MAX_EPISODES = 10**6
"""evaluation episodes (``eval.episodes``, ``eval.final_episodes``)"""
MAX_ENVS = 1024
"""parallel envs (``env.n_envs``, ``eval.n_envs``)"""
MAX_WEIGHT = 1e6
"""|weight| of a reward term: rewards are float32 (about 7 significant digits); a weight beyond 10⁶
swamps every other term and overflows float32 long before a term's value does"""
MAX_REWARD = float(np.finfo(np.float32).max)
"""|bound| of ``reward.clip``: the reward total is float32"""
MAX_NAME = 100
"""characters of an experiment ``name`` (run directories are ``<name>__<timestamp>``) and of a
registered env/term/agent name"""
INT64 = (-(2**63), 2**63 - 1)
"""the range every integer in a file must fit"""
