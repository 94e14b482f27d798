"""``torch_threads``: torch's intra-op thread count for one block, restored after.

The count is process-wide; code that lowers it for its own small ops (an embedding model, the
DERL token policy, a learner sharing cores) must give it back, or every later torch op in the
process — the learner's included — runs with fewer threads and different float reductions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block and restore the previous count after."""
    import torch

    prev = torch.get_num_threads()
    if prev != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if prev != n:
            torch.set_num_threads(prev)
