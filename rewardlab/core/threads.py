"""``torch_threads``: torch's intra-op thread count for one block, restored after.

The count is process-wide; code that lowers it for its own small ops (an embedding model, the
DERL token policy, a learner sharing cores) must give it back, or every later torch op in the
process — the learner's included — runs with fewer threads and different float reductions.

Only the main thread changes it. A block in a background thread (ONI's asynchronous annotator
embedding messages) runs with the count the main thread set: were it to set and restore the
count itself, its restore could land inside the learner's own block and change the learner's
thread count mid-training.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["torch_threads", "usable_cores", "usable_core_ids"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block and restore the previous count after (in the
    main thread; elsewhere the block runs with the main thread's count, see the module docstring)."""
    import torch

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    prev = torch.get_num_threads()
    if prev != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if prev != n:
            torch.set_num_threads(prev)


def usable_core_ids() -> list[int] | None:
    """The ids of the cores this process may run on (its CPU affinity), sorted; ``None`` where the
    platform does not say (not Linux), which also means a process cannot be pinned to one."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    ids = usable_core_ids()
    return max(1, len(ids) if ids is not None else os.cpu_count() or 1)
