"""``AlfWorldEnv``: ALFWorld text games (our generated corpus) as a Gymnasium env.

Two game engines play the same game files:

- ``engine="textworld"``: ALFWorld's text engine, textworld's ``PddlEnv`` wrapped in ALFWorld's
  ``AlfredDemangler`` and ``AlfredInfos`` (what ``AlfredTWEnv`` builds), the reference;
- ``engine="native"``: ``native.NativeEngine``, the alfred PDDL domain and its grammar as a
  Python state machine, with the same feedback, admissible commands (same order), ``won`` and
  facts as the reference (``tests/envs/test_alfworld_native.py`` and
  ``scripts/alfworld_native_diff.py`` replay trajectories through both and compare every step).

On top of the engine:

- ``obs_mode="tokens"`` (RL agents): a ``Dict`` of hashed word ids — ``obs`` (the last
  feedback), ``goal`` (the task sentence), ``commands`` (``num_slots`` admissible-command
  slots) — and ``action_mask`` (1 on filled slots); the action is ``Discrete(num_slots)``.
- ``obs_mode="text"`` (LLM agents): the observation is the feedback text and the action a
  command string.
- Bad actions: a masked slot (tokens mode) or a command that is not admissible (text mode) is
  a no-op: the game does not change, the feedback is ``"Nothing happens."``, reward 0 and
  ``info["invalid_command"] = True`` (the ``alfworld/invalid_command`` term penalises it).
  An action outside ``[0, num_slots)`` or of the wrong type raises ``InvalidArgument``.
- Reward 1 when the game is won (``terminated``); ``max_steps`` truncates.
- ``info``: ``admissible_commands``, ``won``, ``is_success``, ``invalid_command``,
  ``new_subgoals`` / ``subgoals_achieved`` / ``num_subgoals`` (goal-relevant PDDL facts that
  became true, see ``subgoal_flags``), ``goal``, ``task``, ``gamefile``; reset info also
  ``walkthrough`` (the planner's solution stored in the game).
- ``fast_text`` (default on, textworld engine only): textworld's text-template parsing is
  cached (``speedups``), the same texts several times faster; ``fast_text=False`` runs textworld
  untouched.
"""

from __future__ import annotations

import json
import re
import string
import zlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rewardlab.envs.alfworld import speedups
from rewardlab.envs.alfworld.generate import TASK_TYPES, GenSettings, ensure_corpus, import_alfworld
from rewardlab.envs.alfworld.native import NativeEngine, NativeState
from rewardlab.errors import InvalidArgument

__all__ = ["AlfWorldEnv", "make_alfworld", "ENV_TASKS", "ENGINES", "tokenize", "subgoal_flags"]

ENV_TASKS: dict[str, tuple[str, ...]] = {
    "PickAndPlace-v0": ("pick_and_place",),
    "Clean-v0": ("clean",),
    "Heat-v0": ("heat",),
    "Cool-v0": ("cool",),
    "LookAtInLight-v0": ("look_at_obj_in_light",),
    "PickTwo-v0": ("pick_two",),
    "All-v0": tuple(TASK_TYPES),
}
"""registered task name -> task types of its games"""
NOTHING_HAPPENS = "Nothing happens."
ENGINES = ("native", "textworld")
"""game engines: the native simulator (default) and textworld's, the reference"""
_WORD = re.compile(r"[a-z]+|\d+")


def tokenize(text: str, vocab_size: int, length: int) -> np.ndarray:
    """Hashed word ids of ``text`` (lower-cased words and numbers, crc32 mod ``vocab_size - 1``,
    shifted by one: 0 is padding), cut or zero-padded to ``length``.

    >>> tokenize("Go to cabinet 1", 1000, 6)
    array([145, 379, 798,  93,   0,   0])
    """
    ids = [zlib.crc32(w.encode()) % (vocab_size - 1) + 1 for w in _WORD.findall(text.lower())][:length]
    out = np.zeros(length, np.int64)
    out[: len(ids)] = ids
    return out


def _facts(state: Any) -> set[tuple[str, ...]]:
    if isinstance(state, NativeState):
        return state["facts"]
    return {(f.name, *(a.name for a in f.arguments)) for f in state["_facts"]}


def subgoal_flags(facts: set[tuple[str, ...]], task: str, params: dict[str, str], won: bool) -> list[bool]:
    """Goal-relevant facts of the PDDL state, in task order; the last flag is the goal itself.

    - pick_and_place: holds a target object; goal.
    - clean / heat / cool: holds a target object; a target object is clean / hot / cool; goal.
    - pick_two: holds a target object; one target object in a goal receptacle; goal.
    - look_at_obj_in_light: holds a target object; the lamp is switched on; goal.
    """
    otype = params["object_target"].lower() + "type"
    targets = {f[1] for f in facts if f[0] == "objecttype" and f[2] == otype}
    held = any(f[0] == "holds" and f[2] in targets for f in facts)
    flags = [held]
    if task in ("clean", "heat", "cool"):
        fact = {"clean": "isclean", "heat": "ishot", "cool": "iscool"}[task]
        flags.append(any((fact, o) in facts for o in targets))
    elif task == "pick_two":
        rtype = params["parent_target"].lower() + "type"
        receps = {f[1] for f in facts if f[0] == "receptacletype" and f[2] == rtype}
        flags.append(any(f[0] == "inreceptacle" and f[1] in targets and f[2] in receps for f in facts))
    elif task == "look_at_obj_in_light":
        flags.append(any(f[0] == "istoggled" for f in facts))
    flags.append(bool(won))
    return flags


class AlfWorldEnv(gym.Env):
    """One ALFWorld task family over a generated game corpus (see the module docstring).

    >>> import rewardlab
    >>> env = rewardlab.make("alfworld/PickAndPlace-v0", games_per_type=2, max_steps=10)
    >>> obs, info = env.reset(seed=0)
    >>> obs["commands"].shape, int(obs["action_mask"].sum()) == len(info["admissible_commands"])
    ((40, 8), True)
    >>> for cmd in info["walkthrough"]:
    ...     obs, r, term, trunc, info = env.step(info["admissible_commands"].index(cmd))
    >>> r, term, info["won"], info["subgoals_achieved"], info["num_subgoals"]
    (1.0, True, True, 2, 2)
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        task_types: tuple[str, ...] = ("pick_and_place",),
        *,
        split: str = "train",
        obs_mode: str = "tokens",
        max_steps: int = 50,
        num_slots: int = 40,
        vocab_size: int = 4096,
        obs_len: int = 64,
        goal_len: int = 12,
        cmd_len: int = 8,
        max_games: int | None = None,
        corpus_seed: int = 0,
        games_per_type: int = 20,
        heldout_per_type: int = 5,
        max_receptacles: int = 6,
        num_distractors: int = 2,
        closed_containers: bool = True,
        data_dir: str | None = None,
        cache_games: int = 64,
        fast_text: bool = True,
        engine: str = "native",
        render_mode: str | None = None,
    ):
        if split not in ("train", "heldout"):
            raise InvalidArgument(f"alfworld split must be 'train' or 'heldout', got {split!r}")
        if obs_mode not in ("tokens", "text"):
            raise InvalidArgument(f"alfworld obs_mode must be 'tokens' or 'text', got {obs_mode!r}")
        for name, v, lo in (("max_steps", max_steps, 1), ("num_slots", num_slots, 2), ("vocab_size", vocab_size, 16),
                            ("obs_len", obs_len, 1), ("goal_len", goal_len, 1), ("cmd_len", cmd_len, 1),
                            ("cache_games", cache_games, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise InvalidArgument(f"alfworld {name} = {v!r} is invalid; allowed: an integer >= {lo}")
        if max_games is not None and (not isinstance(max_games, int) or max_games < 1):
            raise InvalidArgument(f"alfworld max_games = {max_games!r} is invalid; allowed: None or an integer >= 1")
        if engine not in ENGINES:
            raise InvalidArgument(f"alfworld engine must be one of {list(ENGINES)}, got {engine!r}")
        if render_mode not in (None, "ansi"):
            raise InvalidArgument(f"alfworld render_mode must be None or 'ansi', got {render_mode!r}")
        self.settings = GenSettings(seed=corpus_seed, games_per_type=games_per_type,
                                    heldout_per_type=heldout_per_type, task_types=tuple(task_types),
                                    max_receptacles=max_receptacles, num_distractors=num_distractors,
                                    closed_containers=closed_containers)
        self.corpus, manifest = ensure_corpus(self.settings, data_dir)
        self.games = [g for g in manifest["games"] if g["split"] == split][: max_games or None]
        if not self.games:
            raise InvalidArgument(f"the alfworld corpus {self.corpus} has no {split} games for {task_types} "
                                  f"(games_per_type={games_per_type}, heldout_per_type={heldout_per_type})")
        self.split, self.obs_mode, self.max_steps, self.render_mode = split, obs_mode, max_steps, render_mode
        self.num_slots, self.vocab_size = num_slots, vocab_size
        self.obs_len, self.goal_len, self.cmd_len = obs_len, goal_len, cmd_len
        if obs_mode == "tokens":
            v = vocab_size - 1
            self.observation_space = spaces.Dict({
                "obs": spaces.Box(0, v, (obs_len,), np.int64),
                "goal": spaces.Box(0, v, (goal_len,), np.int64),
                "commands": spaces.Box(0, v, (num_slots, cmd_len), np.int64),
                "action_mask": spaces.Box(0, 1, (num_slots,), np.int8),
            })
            self.action_space = spaces.Discrete(num_slots)
        else:
            charset = string.printable
            self.observation_space = spaces.Text(max_length=8192, charset=charset)
            self.action_space = spaces.Text(max_length=256, charset=charset)
        self.cache_games, self.fast_text, self.engine = cache_games, bool(fast_text), engine
        self._engines: dict[str, tuple[Any, dict[str, str], list[str]]] = {}
        self._tw: Any = None
        self._walkthrough: list[str] = []
        self._state: Any = None
        self._game: dict[str, Any] = {}
        self._gamefile = ""
        self._params: dict[str, str] = {}
        self._steps = 0
        self._achieved: list[bool] = []
        self._cmd_cache: dict[str, np.ndarray] = {}
        self._text = ""

    # -- engine ----------------------------------------------------------------------------
    def _new_engine(self) -> Any:
        if self.engine == "native":
            return NativeEngine()
        import_alfworld()
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        from textworld.envs.pddl import PddlEnv

        if self.fast_text:  # cache textworld's template parsing (same text, see speedups.py)
            speedups.install()
        infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
        return AlfredInfos(AlfredDemangler(shuffle=False)(PddlEnv(infos)))

    def _load(self, game: dict[str, Any]) -> None:
        # Parsing a game costs ~0.5 s in textworld: each game keeps its own loaded engine.
        path = str(self.corpus / game["path"])
        if path not in self._engines:
            if len(self._engines) >= self.cache_games:
                self._engines.pop(next(iter(self._engines)))[0].close()
            engine = self._new_engine()
            engine.load(path)
            traj = json.loads((Path(path).parent / "traj_data.json").read_text())
            walkthrough = json.loads(Path(path).read_text()).get("walkthrough", [])
            self._engines[path] = (engine, traj["pddl_params"], walkthrough)
        self._tw, self._params, self._walkthrough = self._engines[path]
        self._game, self._gamefile = game, path

    # -- observations ----------------------------------------------------------------------
    def _cmd_tokens(self, cmd: str) -> np.ndarray:
        toks = self._cmd_cache.get(cmd)
        if toks is None:
            toks = self._cmd_cache[cmd] = tokenize(cmd, self.vocab_size, self.cmd_len)
        return toks

    def _observation(self, feedback: str) -> Any:
        if self.obs_mode == "text":
            return feedback
        cmds = self._state["admissible_commands"][: self.num_slots]
        commands = np.zeros((self.num_slots, self.cmd_len), np.int64)
        mask = np.zeros(self.num_slots, np.int8)
        for i, c in enumerate(cmds):
            commands[i] = self._cmd_tokens(c)
        mask[: len(cmds)] = 1
        return {"obs": tokenize(feedback, self.vocab_size, self.obs_len), "goal": self._goal_tokens,
                "commands": commands, "action_mask": mask}

    def _info(self, invalid: bool, new: int) -> dict[str, Any]:
        won = bool(self._state["won"])
        return {
            "admissible_commands": list(self._state["admissible_commands"][: self.num_slots]),
            "won": won,
            "is_success": won,
            "invalid_command": invalid,
            "new_subgoals": new,
            "subgoals_achieved": int(sum(self._achieved)),
            "num_subgoals": len(self._achieved),
            "goal": self._game["goal"],
            "task": self._game["task"],
            "gamefile": self._gamefile,
        }

    def _update_subgoals(self) -> int:
        flags = subgoal_flags(_facts(self._state), self._game["task"], self._params, self._state["won"])
        new = [f and not a for f, a in zip(flags, self._achieved, strict=True)]
        self._achieved = [f or a for f, a in zip(flags, self._achieved, strict=True)]
        return int(sum(new))

    # -- gym API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options and "game" in options:
            idx = int(options["game"])
            if not 0 <= idx < len(self.games):
                raise InvalidArgument(f"options['game'] = {idx} is out of range; this env has {len(self.games)} games")
        else:
            idx = int(self.np_random.integers(len(self.games)))
        self._load(self.games[idx])
        self._state = self._tw.reset()
        self._steps = 0
        self._achieved = [False] * len(subgoal_flags(set(), self._game["task"], self._params, False))
        self._update_subgoals()
        self._goal_tokens = tokenize(self._game["goal"], self.vocab_size, self.goal_len)
        self._text = self._state.feedback
        info = self._info(False, 0)
        info["walkthrough"] = list(self._walkthrough)
        return self._observation(self._text), info

    def step(self, action: Any):
        if self._state is None:
            raise InvalidArgument("call reset() before step()")
        cmds = self._state["admissible_commands"][: self.num_slots]
        if self.obs_mode == "tokens":
            if not isinstance(action, (int, np.integer)) and not (isinstance(action, np.ndarray) and action.ndim == 0):
                raise InvalidArgument(f"alfworld action must be a slot index (int), got {type(action).__name__}")
            a = int(action)
            if not 0 <= a < self.num_slots:
                raise InvalidArgument(f"alfworld action {a} is outside the slots [0, {self.num_slots})")
            command = cmds[a] if a < len(cmds) else None
        else:
            if not isinstance(action, str):
                raise InvalidArgument(
                    f"alfworld text-mode action must be a command string, got {type(action).__name__}")
            command = action.strip() if action.strip() in cmds else None
        self._steps += 1
        if command is None:
            # A no-op: the game state does not change (what textworld does for unknown commands).
            feedback, invalid, new = NOTHING_HAPPENS, True, 0
        else:
            self._state, _, _ = self._tw.step(command)
            feedback, invalid = self._state.feedback, False
            new = self._update_subgoals()
        self._text = feedback
        won = bool(self._state["won"])
        truncated = not won and self._steps >= self.max_steps
        return self._observation(feedback), float(won), won, truncated, self._info(invalid, new)

    def render(self) -> str | None:
        return self._text if self.render_mode == "ansi" else None

    def close(self) -> None:
        for engine, _, _ in self._engines.values():
            engine.close()
        self._engines.clear()
        self._tw = None
        self._state = None


def make_alfworld(task: str, **kwargs: Any) -> AlfWorldEnv:
    """Factory of the registered ``alfworld/<Task>-v0`` envs (``kwargs``: see ``AlfWorldEnv``)."""
    if task not in ENV_TASKS:
        raise InvalidArgument(f"unknown alfworld task {task!r}; allowed: {list(ENV_TASKS)}")
    try:
        return AlfWorldEnv(ENV_TASKS[task], **kwargs)
    except TypeError as e:
        raise InvalidArgument(f"alfworld/{task}: {e}") from e
