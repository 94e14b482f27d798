"""``torch_threads``: set and restored in the main thread; never touched from a background thread,
where a restore could land inside the main thread's own block."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from rewardlab.core.threads import torch_threads  # noqa: E402


def test_main_thread_block_sets_and_restores_the_count():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_a_background_thread_leaves_the_main_threads_count_alone():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    seen: list[int] = []
    inside, release = threading.Event(), threading.Event()

    def background():
        with torch_threads(other):
            seen.append(torch.get_num_threads())
            inside.set()
            release.wait(5)

    t = threading.Thread(target=background)
    t.start()
    assert inside.wait(5)
    assert torch.get_num_threads() == before and seen == [before]  # the block ran with the main count
    with torch_threads(other):  # the main thread's own block, while the background block is open
        release.set()
        t.join(5)
        assert torch.get_num_threads() == other  # the background block's exit restored nothing
    assert torch.get_num_threads() == before
