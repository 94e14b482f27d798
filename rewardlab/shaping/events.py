"""Event terms in the spirit of MiniHack's ``RewardManager``, as composable terms.

Each event pays ``reward`` (default 1) on the step it happens, once per episode unless
``repeatable=True``. They read the documented ``info`` entries of the MiniHack family
(``message``, ``agent_pos``, ``chars``, ``inventory``); any env that provides these entries
works. Unlike MiniHack's events they never end the episode: termination stays with the env.

- ``message``: a game message containing one of ``text`` appeared;
- ``reach``: the agent stands on ``pos=[x, y]``, or on a cell that showed ``char`` before;
- ``pickup``: an inventory line containing ``item`` appeared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.core.terms import Term, require_info
from rewardlab.core.transition import Transition, select_info
from rewardlab.errors import InvalidArgument

__all__ = ["EventTerm", "MessageEvent", "ReachEvent", "PickupEvent"]


def _grown(arr: np.ndarray, n: int) -> np.ndarray:
    """``arr`` extended with False to at least ``n`` rows (terms used without ``bind``)."""
    if len(arr) >= n:
        return arr
    out = np.zeros(n, arr.dtype)
    out[: len(arr)] = arr
    return out


class EventTerm(Term):
    """Base of event terms: ``happened(t) -> bool array``; pays once per episode by default."""

    def __init__(self, reward: float = 1.0, repeatable: bool = False):
        if not np.isfinite(reward):
            raise InvalidArgument(f"event reward must be finite, got {reward}")
        self.reward, self.repeatable = float(reward), bool(repeatable)
        self._fired = np.zeros(0, bool)

    def bind(self, num_envs: int) -> None:
        self._fired = np.zeros(num_envs, bool)

    def _info(self, info: dict[str, Any], key: str) -> Any:
        return require_info(info, key, f"event term {self.name!r}")

    def reset(self, env_ids: np.ndarray) -> None:
        if len(self._fired):
            self._fired[env_ids] = False

    def happened(self, t: Transition) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, t: Transition) -> np.ndarray:
        self._fired = _grown(self._fired, int(np.max(t.env_ids)) + 1)
        hit = np.asarray(self.happened(t), bool)
        if not self.repeatable:
            hit &= ~self._fired[t.env_ids]
            self._fired[t.env_ids] |= hit
        return np.where(hit, self.reward, 0.0).astype(np.float32)


class MessageEvent(EventTerm):
    """Pays when the game message contains any of ``text``.

    >>> term = MessageEvent(text="key")
    >>> info = {"message": np.array(["You see here a key.", "It's a wall."], dtype=object)}
    >>> t = Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info)
    >>> term(t), term(t)  # not repeatable: once per episode
    (array([1., 0.], dtype=float32), array([0., 0.], dtype=float32))
    """

    name = "message"

    def __init__(self, text: str | list[str], reward: float = 1.0, repeatable: bool = False):
        super().__init__(reward, repeatable)
        self.texts = list(text) if isinstance(text, (list, tuple)) else [text]  # a bad type fails the check below
        if not self.texts or not all(isinstance(s, str) and s for s in self.texts):
            raise InvalidArgument(f"message text must be a non-empty string or list of strings, got {text!r}")

    def happened(self, t: Transition) -> np.ndarray:
        msgs = self._info(t.info, "message")
        return np.array([any(s in str(m) for s in self.texts) for m in msgs], bool)


class ReachEvent(EventTerm):
    """Pays when the agent stands on ``pos=[x, y]``, or on a cell that showed ``char``.

    >>> term = ReachEvent(pos=[3, 4])
    >>> info = {"agent_pos": np.array([[3, 4], [1, 1]])}
    >>> term(Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info))
    array([1., 0.], dtype=float32)
    """

    name = "reach"

    def __init__(self, pos: list[int] | None = None, char: str | None = None,
                 reward: float = 1.0, repeatable: bool = False):
        super().__init__(reward, repeatable)
        if (pos is None) == (char is None):
            raise InvalidArgument("reach needs exactly one of 'pos' ([x, y]) and 'char' (a map character)")
        if pos is not None and len(pos) != 2:
            raise InvalidArgument(f"reach pos must be [x, y], got {pos!r}")
        if char is not None and len(char) != 1:
            raise InvalidArgument(f"reach char must be one character, got {char!r}")
        self.pos = None if pos is None else np.asarray(pos, np.int64)
        self.char = None if char is None else ord(char)
        self._seen: np.ndarray | None = None  # per env: map cells that showed `char` before

    def _remember(self, chars: np.ndarray, env_ids: np.ndarray, fresh: bool = False) -> None:
        mask = np.asarray(chars) == self.char
        if self._seen is None or self._seen.shape[0] <= int(np.max(env_ids)):
            grown = np.zeros((int(np.max(env_ids)) + 1, *mask.shape[1:]), bool)
            if self._seen is not None:
                grown[: len(self._seen)] = self._seen
            self._seen = grown
        # Accumulate over the episode: a '>' covered by an object or a monster for a step
        # still counts as a cell that showed the char before.
        self._seen[env_ids] = mask if fresh else self._seen[env_ids] | mask

    def reset(self, env_ids: np.ndarray) -> None:
        super().reset(env_ids)
        ids = np.asarray(env_ids)
        if self._seen is not None and len(ids):
            self._seen[ids[ids < len(self._seen)]] = False

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        if self.char is not None and len(env_ids):
            self._remember(self._info(select_info(info, env_ids), "chars"), env_ids, fresh=True)

    def happened(self, t: Transition) -> np.ndarray:
        pos = np.asarray(self._info(t.info, "agent_pos")).reshape(t.num_envs, 2)
        if self.pos is not None:
            return (pos == self.pos).all(axis=1)
        chars = self._info(t.info, "chars")
        if self._seen is None or len(self._seen) <= int(np.max(t.env_ids)):
            self._remember(np.zeros_like(chars), t.env_ids)
        hit = self._seen[t.env_ids, pos[:, 1], pos[:, 0]]
        self._remember(chars, t.env_ids)
        return hit


class PickupEvent(EventTerm):
    """Pays when an inventory line containing ``item`` appears (e.g. ``item: key``).

    >>> term = PickupEvent(item="key")
    >>> info = {"inventory": np.array(["a - a dagger", "a - a dagger\\nf - a key"], dtype=object)}
    >>> term(Transition(None, None, None, np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), info))
    array([0., 1.], dtype=float32)
    """

    name = "pickup"

    def __init__(self, item: str, reward: float = 1.0, repeatable: bool = False):
        super().__init__(reward, repeatable)
        if not isinstance(item, str) or not item:
            raise InvalidArgument(f"pickup item must be a non-empty string, got {item!r}")
        self.item = item
        self._had = np.zeros(0, bool)

    def _has(self, inventory: np.ndarray) -> np.ndarray:
        return np.array([self.item in str(inv) for inv in inventory], bool)

    def observe_reset(self, obs: Any, info: dict, env_ids: np.ndarray) -> None:
        if len(env_ids):
            self._had = _grown(self._had, int(np.max(env_ids)) + 1)
            self._had[env_ids] = self._has(self._info(select_info(info, env_ids), "inventory"))

    def happened(self, t: Transition) -> np.ndarray:
        has = self._has(self._info(t.info, "inventory"))
        self._had = _grown(self._had, int(np.max(t.env_ids)) + 1)
        hit = has & ~self._had[t.env_ids]
        self._had[t.env_ids] = has
        return hit
