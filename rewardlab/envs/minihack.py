"""MiniHack / NLE family: ``rewardlab.make("minihack/Room-5x5")`` and friends.

``MiniHackAdapter`` turns a MiniHack/NLE env into a well-behaved Gymnasium env:

- **observations** from encoders an MLP/CNN can use: ``chars_crop`` (one-hot char classes of
  the 9×9 egocentric crop, ``(C, 9, 9)`` float32), ``glyphs_crop`` (glyph ids, ``(9, 9)``),
  ``blstats`` (log-scaled bottom-line stats, float32); any other MiniHack/NLE observation key
  (``glyphs``, ``chars``, ``colors``, ``message``, ``pixel``, ...) is passed through as MiniHack
  gives it. One key gives a Box, several a Dict; ``observation_keys=`` (MiniHack's name) is
  ``obs=``;
- **rendering**: ``render_mode="rgb_array"`` (frames drawn from the glyphs with MiniHack's 16×16
  tiles, the real final state included), ``"ansi"`` (the map as text), ``"human"`` (prints it;
  NetHackScore, which lacks the tty observations NLE prints from, prints the map text);
- **info** every step: ``agent_pos`` ([x, y]), ``message`` (str), ``chars`` (21×79 map),
  ``inventory`` (newline-joined item lines) for event terms and potentials, and
  ``is_success`` when an episode ends;
- **upstream defects fixed** (each tested): the time limit came back as
  ``terminated=True`` (now ``truncated`` only); ``reset(seed=...)`` did not seed NetHack's
  RNG (now the same seed gives the same episode); ``reset(options={})`` raised
  ``KeyError('wizkit_items')``; the last observation of an episode was the blank screen left
  after NLE quit the game (now the real final state).
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from rewardlab.errors import InvalidArgument

__all__ = ["MiniHackAdapter", "make_minihack", "TASKS", "CHAR_CLASSES", "ENCODERS", "RAW_KEYS", "ACTION_SETS",
           "RENDER_MODES"]

# Short name -> Gymnasium id registered by minihack / nle.
TASKS: dict[str, str] = {
    **{n: f"MiniHack-{n}-v0" for n in [
        "Room-5x5", "Room-15x15", "Room-Random-5x5", "Room-Random-15x15", "Room-Dark-5x5",
        "Room-Monster-5x5", "Room-Trap-5x5", "Room-Ultimate-5x5",
        "KeyRoom-Fixed-S5", "KeyRoom-S5", "KeyRoom-S15", "KeyRoom-Dark-S5",
        "Corridor-R2", "Corridor-R3", "Corridor-R5",
        "River", "River-Narrow", "River-Monster", "River-Lava",
        "MultiRoom-N2", "MultiRoom-N4", "MultiRoom-N6", "MultiRoom-N2-Locked",
    ]},
    "NetHackScore": "NetHackScore-v0",
}

# Char-class vocabulary of the one-hot encoder: similar-looking things share a class.
CHAR_CLASSES = ["unseen", "wall", "floor", "corridor", "closed_door", "agent", "stairs_down",
                "stairs_up", "water_lava", "tool_key", "object", "monster", "trap", "boulder",
                "feature", "other"]
_CHAR_TABLE = np.full(256, CHAR_CLASSES.index("other"), np.int64)
for _chars, _cls in [(" ", "unseen"), ("|-", "wall"), (".", "floor"), ("#", "corridor"),
                     ("+", "closed_door"), ("@", "agent"), (">", "stairs_down"), ("<", "stairs_up"),
                     ("}", "water_lava"), ("(", "tool_key"), (")[%?/=!\"*$", "object"),
                     ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ&;:'~", "monster"),
                     ("^", "trap"), ("0`", "boulder"), ("{_\\", "feature")]:
    for _c in _chars:
        _CHAR_TABLE[ord(_c)] = CHAR_CLASSES.index(_cls)

_ABORTED = -1  # NLE StepStatus.ABORTED: the episode hit NLE's step limit
_BROKEN_RENDER_MODES = ("full",)
CROP = 9  # egocentric crop side (MiniHack's default)
_PAD = CROP // 2
ENCODERS = ("chars_crop", "glyphs_crop", "blstats")
# MiniHack/NLE observation keys passed through unchanged (the encoder names above mean ours).
_NLE_KEYS = ("glyphs", "chars", "colors", "specials", "message", "program_state", "internal", "inv_glyphs",
             "inv_strs", "inv_letters", "inv_oclasses", "screen_descriptions", "tty_chars", "tty_colors",
             "tty_cursor", "misc")
_MINIHACK_KEYS = ("colors_crop", "specials_crop", "tty_chars_crop", "tty_colors_crop", "screen_descriptions_crop",
                  "pixel", "pixel_crop")
RAW_KEYS = _NLE_KEYS + _MINIHACK_KEYS
_BASE_KEYS = ("chars", "glyphs", "blstats", "message", "inv_strs")  # what the adapter itself reads
RENDER_MODES = ("human", "ansi", "rgb_array", "pixel")
TILE = 16  # MiniHack's tile side in pixels
_TILES: tuple[np.ndarray, np.ndarray] | None = None


def _tile_tables() -> tuple[np.ndarray, np.ndarray]:
    """MiniHack's tile images ``(n_tiles, 16, 16, 3)`` and its glyph -> tile table, loaded once."""
    global _TILES
    if _TILES is None:
        import pickle
        from pathlib import Path

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # minihack imports the deprecated pkg_resources
            import minihack.tiles as tiles_pkg
        tiles = pickle.loads((Path(tiles_pkg.__file__).parent / "tiles.pkl").read_bytes())
        table = np.zeros((max(tiles) + 1, TILE, TILE, 3), np.uint8)
        for i, tile in tiles.items():
            table[i] = tile
        _TILES = table, np.asarray(tiles_pkg.glyph2tile, np.int64)
    return _TILES


def glyphs_to_rgb(glyphs: np.ndarray) -> np.ndarray:
    """An RGB frame ``(16·H, 16·W, 3)`` of a glyph map, as MiniHack's ``GlyphMapper.to_rgb``
    draws it (same tiles, same layout) without its per-cell Python loop."""
    tiles, glyph2tile = _tile_tables()
    h, w = glyphs.shape
    return tiles[glyph2tile[glyphs]].transpose(0, 2, 1, 3, 4).reshape(h * TILE, w * TILE, 3)


def _action_sets() -> dict[str, tuple]:
    from nle import nethack

    moves = tuple(nethack.CompassDirection)
    C = nethack.Command
    return {
        "nav": moves,
        "nav_apply": moves + (C.PICKUP, C.APPLY),
        "basic": moves + (C.PICKUP, C.APPLY, C.SEARCH, C.EAT, C.OPEN, C.KICK, C.INVENTORY,
                          nethack.MiscDirection.DOWN, nethack.MiscDirection.WAIT),
    }


ACTION_SETS = ("nav", "nav_apply", "basic", "default")


class MiniHackAdapter(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Encoded observations, extra info and the upstream fixes (see module doc)."""

    def __init__(self, env: gym.Env, obs: tuple[str, ...] = ("chars_crop",), render_mode: str | None = None):
        obs = (obs,) if isinstance(obs, str) else tuple(obs)
        # Recorded so ``env.spec`` can rebuild the adapter (Gymnasium's env checker needs it).
        # render_mode is not: it is the env's kwarg (``spec.make(render_mode=...)`` sets it there).
        gym.utils.RecordConstructorArgs.__init__(self, obs=obs)
        super().__init__(env)
        inner_spaces = getattr(env.observation_space, "spaces", {})
        bad = [k for k in obs if k not in ENCODERS and k not in inner_spaces]
        if bad or not obs:
            raise InvalidArgument(f"unknown MiniHack observation encoder {bad or obs!r}; valid: {', '.join(ENCODERS)} "
                                  f"(rewardlab's encodings) or MiniHack's raw keys {', '.join(RAW_KEYS)}")
        self.encoders = obs
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise InvalidArgument(f"render_mode {render_mode!r} is not one of {', '.join(RENDER_MODES)}")
        # None: NLE's own mode (what gym.make gave it). NLE's "full" mode crashes under NumPy 2
        # (``uint8 & ~8`` overflows in nle.nethack.tty_render): advertise only the modes that work.
        self._render_mode = render_mode
        self.metadata = {**env.metadata, "render_modes": list(RENDER_MODES)}
        self._last_raw: dict[str, np.ndarray] | None = None
        nle = env.unwrapped
        self._keys = {k: i for i, k in enumerate(nle._observation_keys)}
        spaces: dict[str, gym.Space] = {
            "chars_crop": gym.spaces.Box(0.0, 1.0, (len(CHAR_CLASSES), CROP, CROP), np.float32),
            "glyphs_crop": gym.spaces.Box(0, 5976, (CROP, CROP), np.int64),
            "blstats": gym.spaces.Box(-np.inf, np.inf, (27,), np.float32),
        }
        spaces.update({k: inner_spaces[k] for k in obs if k not in ENCODERS})
        self.observation_space = spaces[obs[0]] if len(obs) == 1 else gym.spaces.Dict({k: spaces[k] for k in obs})
        self._nethack_rng = np.random.default_rng()
        # Upstream fix: NLE returns views of buffers it reuses, and when an episode ends it quits
        # the game inside step(), overwriting them: the final obs/info showed an empty map with
        # the agent at [0, 0]. Keep a copy of the real final observation before NLE quits.
        self._final_raw: dict[str, np.ndarray] | None = None
        quit_game = getattr(nle, "_quit_game", None)
        if quit_game is not None:
            def quit_keeping_final_obs(observation, done):
                self._final_raw = {k: np.array(v) for k, v in nle._get_observation(observation).items()}
                return quit_game(observation, done)

            nle._quit_game = quit_keeping_final_obs
        self._onehot_ids = np.arange(len(CHAR_CLASSES))[:, None, None]
        self._pad_buffers: dict[tuple, np.ndarray] = {}
        self._inv_raw: np.ndarray | None = None
        self._inv_text = ""

    # -- observation encoding ------------------------------------------------------------
    def _crop(self, grid: np.ndarray, x: int, y: int, fill: int) -> np.ndarray:
        # A persistent padded buffer per grid kind: np.pad per step cost more than the game step.
        key = (grid.dtype.str, fill)
        buf = self._pad_buffers.get(key)
        if buf is None:
            buf = np.full((grid.shape[0] + 2 * _PAD, grid.shape[1] + 2 * _PAD), fill, grid.dtype)
            self._pad_buffers[key] = buf
        buf[_PAD:-_PAD, _PAD:-_PAD] = grid
        return buf[y : y + CROP, x : x + CROP]

    def _encode(self, raw: dict[str, np.ndarray]) -> Any:
        x, y = int(raw["blstats"][0]), int(raw["blstats"][1])
        out: dict[str, np.ndarray] = {}
        for k in self.encoders:
            if k == "chars_crop":
                crop = _CHAR_TABLE[self._crop(raw["chars"], x, y, ord(" "))]
                out[k] = (crop[None] == self._onehot_ids).astype(np.float32)
            elif k == "glyphs_crop":
                out[k] = self._crop(raw["glyphs"], x, y, 0).astype(np.int64)
            elif k == "blstats":
                b = raw["blstats"].astype(np.float32)
                out[k] = np.sign(b) * np.log1p(np.abs(b))
            else:  # MiniHack's own array; NLE reuses its buffers, so a copy
                out[k] = np.array(raw[k])
        return out[self.encoders[0]] if len(self.encoders) == 1 else out

    def _info(self, raw: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        info["agent_pos"] = raw["blstats"][:2].astype(np.int64)
        info["message"] = bytes(raw["message"]).split(b"\0", 1)[0].decode("latin-1")
        info["chars"] = raw["chars"].copy()
        inv = raw["inv_strs"]
        if self._inv_raw is None or not np.array_equal(inv, self._inv_raw):
            # The inventory rarely changes: decode it only when its bytes do.
            self._inv_raw = inv.copy()
            self._inv_text = "\n".join(bytes(r).split(b"\0", 1)[0].decode("latin-1") for r in inv if r[0] != 0)
        info["inventory"] = self._inv_text
        return info

    # -- rendering -----------------------------------------------------------------------
    @property
    def render_mode(self) -> str | None:
        return self._render_mode if self._render_mode is not None else self.env.render_mode

    def _map_text(self) -> str:
        return "\n".join(bytes(row).decode("latin-1") for row in self._last_raw["chars"])

    def render(self):
        """``rgb_array``: an RGB frame of the map; ``ansi``: the map as text; ``human``: prints
        it (NLE's tty view where the env has it); ``pixel``: NLE's own tile renderer."""
        mode = self.render_mode
        if mode in ("rgb_array", "ansi", "human") and self._last_raw is None:
            raise gym.error.ResetNeeded("render() before reset()")
        if mode == "rgb_array":
            return glyphs_to_rgb(self._last_raw["glyphs"])
        if mode == "ansi":
            return self._map_text()
        if mode == "human" and "tty_chars" not in self._keys:
            print(self._map_text())  # NLE would index tty_chars, which this env does not observe
            return None
        return self.env.render()

    # -- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._nethack_rng = np.random.default_rng(seed)
        # Upstream fix: NLE's reset(seed=) seeds only Gymnasium's RNG. Seed NetHack's own core,
        # display and level-generator RNGs from ours, every episode, so a seed fixes the run.
        core, disp, lgen, grid = (int(s) for s in self._nethack_rng.integers(0, 2**31 - 1, size=4))
        nle = self.env.unwrapped
        minigrid_env = getattr(nle, "minigrid_env", None)
        if minigrid_env is None:
            nle.seed(core, disp, reseed=False, lgen=lgen)
        else:
            # Upstream fix: MiniGridHack.seed (MultiRoom) calls minigrid_env.seed(), which
            # Gymnasium envs no longer have, and drops lgen. Seed NLE past it and the MiniGrid
            # layout generator through reset(seed=): its next reset draws the layout.
            from nle.env.base import NLE

            NLE.seed(nle, core, disp, reseed=False, lgen=lgen)
            minigrid_env.reset(seed=grid)
        # Upstream fix: NLE indexes options["wizkit_items"] unconditionally.
        inner_options = {"wizkit_items": options["wizkit_items"]} if options and "wizkit_items" in options else None
        raw, info = self.env.reset(seed=seed, options=inner_options)
        self._last_raw = raw
        return self._encode(raw), self._info(raw, info)

    def step(self, action):
        self._final_raw = None
        raw, reward, done, truncated, info = self.env.step(action)
        if self._final_raw is not None:  # NLE quit the game in this step: use the state before
            raw, self._final_raw = self._final_raw, None
        # Upstream fix: at its time limit NLE ends the game (done=True) with end_status ABORTED
        # (-1), and its own truncated flag lags one step behind; the MDP did not end there,
        # so it is a truncation only.
        truncated = bool(truncated) or int(info.get("end_status", 0)) == _ABORTED
        terminated = bool(done) and not truncated
        self._last_raw = raw
        info = self._info(raw, info)
        if terminated or truncated:
            status = info.get("end_status")
            info["is_success"] = bool(terminated and status is not None and int(status) == 2)
        return self._encode(raw), float(reward), terminated, bool(truncated), info


def make_minihack(task: str, obs: tuple[str, ...] | list[str] | str | None = None, actions: str = "default",
                  max_episode_steps: int | None = None, *, observation_keys: tuple[str, ...] | list[str] | None = None,
                  render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """Build ``minihack/<task>``: a MiniHack/NLE env behind ``MiniHackAdapter``.

    ``obs`` (or MiniHack's name for it, ``observation_keys``) lists the observation keys:
    rewardlab's encodings (``chars_crop``, ``glyphs_crop``, ``blstats``; default
    ``chars_crop``) or MiniHack's raw ones (``glyphs``, ``pixel``, ...). ``render_mode`` is
    one of ``RENDER_MODES`` (default: NLE's ``human``)."""
    if task not in TASKS:
        from rewardlab.errors import UnknownNameError

        raise UnknownNameError("MiniHack task", task, TASKS)
    if observation_keys is not None:
        if obs is not None:
            raise InvalidArgument("give the observation keys once: obs= or observation_keys= (MiniHack's name), "
                                  f"not both (got obs={obs!r}, observation_keys={observation_keys!r})")
        obs = observation_keys
    obs = ("chars_crop",) if obs is None else ((obs,) if isinstance(obs, str) else tuple(obs))
    bad = [k for k in obs if k not in ENCODERS and k not in RAW_KEYS]
    if bad or not obs:
        raise InvalidArgument(f"unknown MiniHack observation encoder {bad or obs!r}; valid: {', '.join(ENCODERS)} "
                              f"(rewardlab's encodings) or MiniHack's raw keys {', '.join(RAW_KEYS)}")
    if task == "NetHackScore" and any(k in _MINIHACK_KEYS for k in obs):
        raise InvalidArgument(f"NetHackScore is plain NLE: {[k for k in obs if k in _MINIHACK_KEYS]} are MiniHack-only "
                              f"keys; valid: {', '.join(ENCODERS + _NLE_KEYS)}")
    if render_mode in _BROKEN_RENDER_MODES:
        raise InvalidArgument(f"render_mode {render_mode!r} is broken upstream (NLE + NumPy 2); "
                              f"use one of {', '.join(RENDER_MODES)}")
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise InvalidArgument(f"render_mode {render_mode!r} is not one of {', '.join(RENDER_MODES)}")
    if task.startswith("MultiRoom"):
        try:
            import minigrid  # noqa: F401
        except ImportError as e:
            raise InvalidArgument(f"minihack/{task} is built from a MiniGrid layout and needs the minigrid package: "
                                  "pip install 'rewardlab[minihack]'") from e
    if actions not in ACTION_SETS:
        raise InvalidArgument(f"unknown MiniHack action set {actions!r}; valid: {', '.join(ACTION_SETS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minihack imports the deprecated pkg_resources
        import minihack  # noqa: F401  (registers MiniHack ids)
        import nle  # noqa: F401  (registers NetHack ids)
    raw_keys = _BASE_KEYS + tuple(k for k in obs if k not in ENCODERS and k not in _BASE_KEYS)
    if actions != "default":
        kwargs["actions"] = _action_sets()[actions]
    if max_episode_steps is not None and max_episode_steps < 1:
        raise InvalidArgument(f"max_episode_steps must be >= 1, got {max_episode_steps}")
    # Moon phase (luck) comes from the wall clock unless fixed: same seed, same game on any date.
    kwargs.setdefault("fix_moon_phase", True)
    if render_mode == "pixel":  # NLE's own renderer
        kwargs["render_mode"] = "pixel"
    env = gym.make(TASKS[task], observation_keys=raw_keys, **kwargs)
    if max_episode_steps is not None:
        # gym.make(max_episode_steps=) would only add a TimeLimit *on top of* NLE's own step
        # limit (100 on Room-5x5), so a longer limit was silently cut short. Set NLE's limit.
        env.unwrapped._max_episode_steps = int(max_episode_steps)
    # gym.make adds PassiveEnvChecker/OrderEnforcing; our adapter sits on top.
    return MiniHackAdapter(env, obs, render_mode=render_mode)
