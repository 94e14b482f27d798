"""Named potentials for MiniHack tasks (registered in ``rewardlab.shaping.potential``).

They read the MiniHack adapter's info (``agent_pos``, ``chars``, ``inventory``), so they work
with any observation encoder. Distances are Chebyshev (NetHack moves diagonally) and capped,
so Φ stays bounded; a target that is not on the visible map counts as the cap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rewardlab.core.terms import require_info
from rewardlab.errors import InvalidArgument

__all__ = ["stairs_distance", "keyroom_progress"]


def _need(info: dict | None, key: str) -> np.ndarray:
    return np.asarray(require_info(info, key, "MiniHack potentials", " - use a minihack/... env"))


_SMALL_BATCH = 32  # up to this many envs, scanning the map bytes per env beats NumPy's calls
_UINT8 = np.dtype(np.uint8)


def _distance_to(chars: np.ndarray, pos: np.ndarray, char: str, cap: float) -> np.ndarray:
    """Chebyshev distance from each env's agent to the nearest visible ``char`` (≤ cap)."""
    n, h, w = chars.shape
    if n <= _SMALL_BATCH and chars.dtype == _UINT8:
        return _distance_to_small(chars, pos, char, cap)
    return _distance_to_batch(chars, pos, char, cap)


def _distance_to_small(chars: np.ndarray, pos: np.ndarray, char: str, cap: float) -> np.ndarray:
    """``_distance_to`` for a few envs: one ``bytes.find`` (memchr) walk over the batch's map
    bytes, hit by hit, with integer arithmetic in Python; two NumPy calls in all. Potentials run
    right after a NetHack step has flushed the CPU caches, where each of ``_distance_to_batch``'s
    ~15 NumPy calls costs a few µs; the values are the same (integers, then one float32 cast)."""
    n, h, w = chars.shape
    size = h * w
    find = chars.tobytes().find
    code = ord(char)
    best = [cap] * n
    xy = pos.tolist()
    j = find(code)
    while j >= 0:
        i, rest = divmod(j, size)
        y, x = divmod(rest, w)
        px, py = xy[i]
        d = max(abs(x - px), abs(y - py))
        if d < best[i]:
            best[i] = d
        j = find(code, j + 1)
    return np.array(best, np.float32)  # each int or float rounded to float32 once, as astype does


def _distance_to_batch(chars: np.ndarray, pos: np.ndarray, char: str, cap: float) -> np.ndarray:
    n, h, w = chars.shape
    mask = chars.reshape(n, h * w) == ord(char)
    first = mask.argmax(axis=1)  # flat index of the first hit per env (0 when none)
    found = mask[np.arange(n), first]
    if mask.sum(axis=1).max(initial=0) <= 1:
        # Common case (one staircase, one key): no per-hit bookkeeping needed.
        y, x = np.divmod(first, w)
        d = np.maximum(np.abs(x - pos[:, 0]), np.abs(y - pos[:, 1]))
        return np.where(found, np.minimum(d, cap), cap).astype(np.float32)
    out = np.full(n, cap, np.float32)
    env, rem = np.divmod(np.flatnonzero(mask), h * w)
    y, x = np.divmod(rem, w)
    d = np.maximum(np.abs(x - pos[env, 0]), np.abs(y - pos[env, 1])).astype(np.float32)
    np.minimum.at(out, env, d)
    return out


def stairs_distance(cap: float = 20.0) -> Callable:
    """Φ(s) = −d(agent, '>') / cap: rises as the agent nears the down staircase."""
    if cap <= 0:
        raise InvalidArgument(f"cap must be > 0, got {cap}")

    def phi(obs, info):
        chars, pos = _need(info, "chars"), _need(info, "agent_pos")
        dist = _distance_to(chars, pos, ">", cap)
        return np.divide(dist, -cap, out=dist)  # = -dist / cap, bit for bit (IEEE division is sign-symmetric)

    phi.rowwise = True  # each env's value reads only its own row (see rewardlab.shaping.potential)
    return phi


def keyroom_progress(cap: float = 20.0) -> Callable:
    """Staged Φ for KeyRoom: stage (0 no key, 1 key held, 2 door open) minus 2, minus the
    distance to the stage's target (key '(', closed door '+', stairs '>') / cap. Each stage outweighs
    any distance, so Φ rises with progress, from about −3 to 0 next to the stairs.
    """
    if cap <= 0:
        raise InvalidArgument(f"cap must be > 0, got {cap}")

    def phi(obs, info):
        chars, pos = _need(info, "chars"), _need(info, "agent_pos")
        inventory = _need(info, "inventory")
        has_key = np.array(["key" in str(s) for s in inventory])
        flat = chars.reshape(len(chars), -1)
        door_closed = (flat == ord("+")).any(axis=1)
        stairs_seen = (flat == ord(">")).any(axis=1)
        # No '+' on the map does not mean the door is open: it may not have been seen yet.
        # Without the key the stage is 0; with it, the door counts as open once it is gone
        # and the stairs behind it are in view.
        stage = np.where(~has_key, 0, np.where(~door_closed & stairs_seen, 2, 1))
        targets = {0: "(", 1: "+", 2: ">"}
        dist = np.full(len(chars), cap, np.float32)
        for s, ch in targets.items():
            rows = stage == s
            if rows.any():
                dist[rows] = _distance_to(chars[rows], pos[rows], ch, cap)
        # Shifted so Φ ≤ 0 and Φ ≈ 0 next to the stairs: Φ(terminal) = 0 then costs almost
        # nothing on the success step (an unshifted Φ = 2 there would be a −2 cliff).
        return stage - 2.0 - dist / cap

    phi.rowwise = True
    return phi
