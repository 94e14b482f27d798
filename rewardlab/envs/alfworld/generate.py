"""ALFWorld-style game generator: PDDL problems for the six ALFWorld task types, offline.

The ``alfworld`` wheel ships the PDDL domain, the text grammar and the AI2-THOR floor-plan
layouts (which object types and which receptacles each room has), but not the game files. This
module writes games in ALFWorld's on-disk format from those layouts::

    <corpus>/<split>/<task_type>/<FloorPlanN>-<id>/game.tw-pddl   # pddl_domain, grammar, pddl_problem,
                                                                  # solvable, walkthrough
    <corpus>/<split>/<task_type>/<FloorPlanN>-<id>/traj_data.json # task_type, pddl_params, scene
    <corpus>/manifest.json                                        # settings + every game's path

Contents:

- ``TASK_TYPES``: the six ALFWorld task types (short name -> ALFWorld name);
- ``GenSettings``: the difficulty knobs (receptacles, distractors, closed containers), seed,
  games per type and split;
- ``sample_task``: one game (problem text, goal text, pddl_params) from a seeded RNG;
- ``generate_corpus``: write and validate a corpus (every game is solved by the PDDL planner,
  whose walkthrough is stored in the game and replayed to ``won`` before the game is kept);
- ``ensure_corpus``: the corpus of given settings under the data dir, generated on first use;
- ``default_data_dir`` and the CLI ``python -m rewardlab.envs.alfworld.generate``.

Held-out games come from rooms never used for training: floor plans whose number ends in 1–5
(``FloorPlan1..5``, ``201..205``, ...) are ``heldout``, all others ``train``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.errors import InvalidArgument

__all__ = ["TASK_TYPES", "GenSettings", "sample_task", "generate_corpus", "ensure_corpus", "default_data_dir",
           "import_alfworld", "layout_dir", "main"]

TASK_TYPES: dict[str, str] = {
    "pick_and_place": "pick_and_place_simple",
    "clean": "pick_clean_then_place_in_recep",
    "heat": "pick_heat_then_place_in_recep",
    "cool": "pick_cool_then_place_in_recep",
    "look_at_obj_in_light": "look_at_obj_in_light",
    "pick_two": "pick_two_obj_and_place",
}
"""short name -> ALFWorld's task type name (the ``task_type`` of ``traj_data.json``)"""
SPLITS = ("train", "heldout")
MANIFEST = "manifest.json"
GENERATOR_VERSION = 2  # bump when the generated games change (the corpus hash includes it)

# Goal-text templates (the first of ALFWorld's templates per task type).
_GOAL_TEXT = {
    "pick_and_place": "put a {obj} in {recep}",
    "clean": "put a clean {obj} in {recep}",
    "heat": "put a hot {obj} in {recep}",
    "cool": "put a cool {obj} in {recep}",
    "look_at_obj_in_light": "look at {obj} under the {toggle}",
    "pick_two": "put two {obj} in {recep}",
}
# The state change each task needs, as (action class of VAL_ACTION_OBJECTS, appliance, fact).
_STATE_CHANGE = {"clean": ("Cleanable", "SinkBasin", "isClean"), "heat": ("Heatable", "Microwave", "isHot"),
                 "cool": ("Coolable", "Fridge", "isCool")}
_LAMPS = ("DeskLamp", "FloorLamp")
# ALFRED's receptacle table lists no receptacle for lamps; ALFWorld's games stand them on furniture.
_LAMP_RECEPTACLES = {"Desk", "SideTable", "Dresser", "DiningTable", "CoffeeTable", "TVStand", "Shelf"}
# Layout receptacle names that ALFRED calls by their basin.
_RECEPTACLE_ALIASES = {"Sink": "SinkBasin", "Bathtub": "BathtubBasin"}


def import_alfworld() -> Any:
    """Import ``alfworld`` with ``ALFWORLD_DATA`` pointing at our data dir (alfworld creates
    that directory on import; without the variable it would write to ``~/.cache/alfworld``)."""
    os.environ.setdefault("ALFWORLD_DATA", str(default_data_dir() / "alfworld_data"))
    try:
        import alfworld.info
    except ImportError as e:
        raise ImportError("the alfworld envs need the alfworld extra: pip install 'rewardlab[alfworld]'") from e
    return alfworld


def default_data_dir() -> Path:
    """``$REWARDLAB_ALFWORLD_DIR``, else ``~/.cache/rewardlab/alfworld``."""
    return Path(os.environ.get("REWARDLAB_ALFWORLD_DIR", Path.home() / ".cache" / "rewardlab" / "alfworld"))


def layout_dir() -> Path:
    import_alfworld()
    import alfworld.gen

    return Path(alfworld.gen.__file__).parent / "layouts"


@dataclass(frozen=True)
class GenSettings:
    """Settings of a corpus; the corpus directory name is a hash of them."""

    seed: int = 0
    """master seed: every game's RNG is derived from it, so the corpus is reproducible"""
    games_per_type: int = 20
    """games of each task type per split"""
    heldout_per_type: int = 5
    """held-out games of each task type (from held-out floor plans)"""
    task_types: tuple[str, ...] = tuple(TASK_TYPES)
    """short task type names (keys of ``TASK_TYPES``)"""
    max_receptacles: int = 6
    """receptacles per game (those the task needs, then random ones of the room), >= 2"""
    num_distractors: int = 2
    """extra objects of other types placed in the receptacles"""
    closed_containers: bool = True
    """openable receptacles (fridge, cabinets, drawers, ...) start closed; False: they start open"""

    def __post_init__(self) -> None:
        checks = [
            ("seed", isinstance(self.seed, int) and self.seed >= 0, "an integer >= 0"),
            ("games_per_type", isinstance(self.games_per_type, int) and self.games_per_type >= 0, "an integer >= 0"),
            ("heldout_per_type", isinstance(self.heldout_per_type, int) and self.heldout_per_type >= 0,
             "an integer >= 0"),
            ("max_receptacles", isinstance(self.max_receptacles, int) and self.max_receptacles >= 2,
             "an integer >= 2 (a task needs at least a source and a target receptacle)"),
            ("num_distractors", isinstance(self.num_distractors, int) and 0 <= self.num_distractors <= 20,
             "an integer in [0, 20]"),
            ("closed_containers", isinstance(self.closed_containers, bool), "true or false"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise InvalidArgument(f"GenSettings.{name} = {getattr(self, name)!r} is invalid; allowed: {allowed}")
        object.__setattr__(self, "task_types", tuple(self.task_types))
        bad = [t for t in self.task_types if t not in TASK_TYPES]
        if bad or not self.task_types:
            raise InvalidArgument(f"GenSettings.task_types: unknown {bad or 'empty list'}; allowed: {list(TASK_TYPES)}")

    def digest(self) -> str:
        blob = json.dumps({**dataclasses.asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]


# ======================================================================================
# Layouts and sampling
# ======================================================================================


@dataclass
class Room:
    name: str
    objects: list[str]  # object types present (pickupable, non-receptacle)
    receptacles: list[str]  # receptacle types, one entry per instance


def _constants() -> Any:
    import_alfworld()
    import alfworld.gen.constants as c

    return c


def load_rooms() -> list[Room]:
    """Every floor plan of the wheel as a ``Room`` (sorted by floor-plan number)."""
    c = _constants()
    static = set(c.RECEPTACLES) - set(c.MOVABLE_RECEPTACLES)
    rooms = []
    d = layout_dir()
    for objf in sorted(d.glob("FloorPlan*-objects.json"), key=lambda p: int(p.name[9:].split("-")[0])):
        name = objf.name.split("-")[0]
        openf = d / f"{name}-openable.json"
        if not openf.is_file():
            continue
        types = json.loads(objf.read_text())
        receps = [_RECEPTACLE_ALIASES.get(k.split("|")[0], k.split("|")[0]) for k in json.loads(openf.read_text())]
        receps = sorted(r for r in receps if r in static)
        objects = sorted({t for t in types if t in c.OBJECTS and t not in static
                          and any(_can_contain(c, r, t) for r in receps)})
        rooms.append(Room(name, objects, receps))
    return rooms


def split_of(room: str) -> str:
    """``heldout`` for floor plans whose number ends in 1..5 (mod 100), else ``train``."""
    return "heldout" if 1 <= int(room.removeprefix("FloorPlan")) % 100 <= 5 else "train"


def _can_contain(c: Any, recep: str, obj: str) -> bool:
    if obj in _LAMPS:
        return recep in _LAMP_RECEPTACLES
    return obj in c.VAL_RECEPTACLE_OBJECTS.get(recep, ())


def _choose(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def sample_task(room: Room, task: str, rng: np.random.Generator, settings: GenSettings) -> dict[str, Any] | None:
    """One game of ``task`` in ``room``, or None if the room cannot host it.

    Returns ``{"problem", "goal_text", "pddl_params"}``. The target object starts in a
    receptacle other than the goal receptacle; the task's appliance (sink basin, microwave,
    fridge) or lamp is always among the receptacles.
    """
    c = _constants()
    objs = list(room.objects)
    rtypes = sorted(set(room.receptacles))
    need_app = _STATE_CHANGE.get(task)
    if need_app:
        if need_app[1] not in rtypes:
            return None
        objs = [o for o in objs if o in c.VAL_ACTION_OBJECTS[need_app[0]]]
    toggle = None
    if task == "look_at_obj_in_light":
        lamps = [t for t in _LAMPS if t in objs]
        if not lamps:
            return None
        toggle = _choose(rng, lamps)
        objs = [o for o in objs if o not in _LAMPS]
    # (object, goal receptacle, source receptacle) triples the room supports
    options = []
    for o in objs:
        sources = [r for r in rtypes if _can_contain(c, r, o)]
        goals = [None] if task == "look_at_obj_in_light" else [r for r in rtypes if _can_contain(c, r, o)
                                                              and (not need_app or r != need_app[1])]
        for g in goals:
            srcs = [s for s in sources if s != g]
            if srcs:
                options.append((o, g, srcs))
    if not options:
        return None
    obj, goal_r, srcs = _choose(rng, options)
    # Receptacle instances: the ones the task needs first, then random others of the room.
    pool = list(room.receptacles)
    chosen: list[str] = []

    def take(rtype: str) -> None:
        if rtype in chosen:  # e.g. the source is the appliance itself
            return
        pool.remove(rtype)
        chosen.append(rtype)

    src = _choose(rng, srcs)
    take(src)
    if goal_r is not None:
        take(goal_r)
    if need_app:
        take(need_app[1])
    lamp_recep = None
    if toggle is not None:
        lamp_sources = [r for r in set(pool) | set(chosen) if _can_contain(c, r, toggle)]
        if not lamp_sources:
            return None
        lamp_recep = _choose(rng, sorted(lamp_sources))
        take(lamp_recep)
    rng.shuffle(pool)
    while len(chosen) < settings.max_receptacles and pool:
        chosen.append(pool.pop())
    # Instance ids: Type_bar_k (k counts instances of a type)
    counts: dict[str, int] = {}
    recep_ids: list[tuple[str, str]] = []
    basins = {v: k for k, v in _RECEPTACLE_ALIASES.items()}
    for r in chosen:
        counts[r] = counts.get(r, 0) + 1
        # ALFRED ids of basins are "Sink|...|SinkBasin"; ALFWorld's demangler names them "sinkbasin".
        rid = f"{basins[r]}_bar_{counts[r]}_bar_{r}" if r in basins else f"{r}_bar_{counts[r]}"
        recep_ids.append((rid, r))

    def ids_of(rtype: str) -> list[str]:
        return [i for i, t in recep_ids if t == rtype]

    # Objects: the target (two for pick_two), the lamp, distractors of other types.
    placements: list[tuple[str, str, str]] = []  # (object id, type, receptacle id)
    ocount: dict[str, int] = {}

    def place(otype: str, rid: str) -> None:
        ocount[otype] = ocount.get(otype, 0) + 1
        placements.append((f"{otype}_bar_{ocount[otype]}", otype, rid))

    place(obj, _choose(rng, ids_of(src)))
    if task == "pick_two":
        second = [i for i, t in recep_ids if _can_contain(c, t, obj) and t != goal_r]
        place(obj, _choose(rng, second))
    if toggle is not None:
        place(toggle, _choose(rng, ids_of(lamp_recep)))
    others = [o for o in room.objects if o not in (obj, toggle) and o not in _LAMPS]
    for _ in range(settings.num_distractors):
        if not others:
            break
        o = _choose(rng, others)
        spots = [i for i, t in recep_ids if _can_contain(c, t, o)]
        if spots:
            place(o, _choose(rng, spots))
    problem = _problem_text(c, task, recep_ids, placements, obj, goal_r, toggle, settings, rng)
    fmt = {"obj": obj.lower(), "recep": (goal_r or "").lower(), "toggle": (toggle or "").lower()}
    return {
        "problem": problem,
        "goal_text": _GOAL_TEXT[task].format(**fmt),
        "pddl_params": {"object_target": obj, "parent_target": goal_r or "", "toggle_target": toggle or "",
                        "mrecep_target": "", "object_sliced": False},
    }


def _problem_text(c: Any, task: str, recep_ids: list[tuple[str, str]], placements: list[tuple[str, str, str]],
                  obj: str, goal_r: str | None, toggle: str | None, settings: GenSettings,
                  rng: np.random.Generator) -> str:
    loc_of = {rid: f"loc_bar_{k}" for k, (rid, _) in enumerate(recep_ids)}
    otypes = sorted({t for _, t, _ in placements})
    rtypes = sorted({t for _, t in recep_ids})
    decl = ["agent1 - agent", "loc_bar_start - location"]
    decl += [f"{loc} - location" for loc in loc_of.values()]
    decl += [f"{rid} - receptacle" for rid, _ in recep_ids]
    decl += [f"{oid} - object" for oid, _, _ in placements]
    decl += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    init = ["(atLocation agent1 loc_bar_start)"]
    for rid, rt in recep_ids:
        init += [f"(receptacleAtLocation {rid} {loc_of[rid]})", f"(receptacleType {rid} {rt}Type)"]
        if rt in c.OPENABLE_CLASS_SET:
            init.append(f"(openable {rid})")
            if not settings.closed_containers:
                init.append(f"(opened {rid})")
    for oid, ot, rid in placements:
        init += [f"(objectType {oid} {ot}Type)", f"(inReceptacle {oid} {rid})",
                 f"(objectAtLocation {oid} {loc_of[rid]})"]
        if ot in _LAMPS:
            init.append(f"(toggleable {oid})")
        else:
            init.append(f"(pickupable {oid})")
        for cls, fact in (("Cleanable", "cleanable"), ("Heatable", "heatable"), ("Coolable", "coolable")):
            if ot in c.VAL_ACTION_OBJECTS[cls]:
                init.append(f"({fact} {oid})")
    for rt in rtypes:
        for ot in otypes:
            if _can_contain(c, rt, ot):
                init.append(f"(canContain {rt}Type {ot}Type)")
    goal = _goal_pddl(task, obj, goal_r, toggle)
    nl = "\n        "
    return (f"(define (problem plan_{task})\n    (:domain alfred)\n    (:objects\n        {nl.join(decl)}\n    )\n"
            f"    (:init\n        {nl.join(init)}\n    )\n    (:goal {goal})\n)\n")


def _goal_pddl(task: str, obj: str, goal_r: str | None, toggle: str | None) -> str:
    """The goal of each task type, as ALFWorld's goal library states it."""
    if task == "pick_and_place":
        body = f"(inReceptacle ?o ?r) (objectType ?o {obj}Type) (receptacleType ?r {goal_r}Type)"
        return f"(exists (?r - receptacle) (exists (?o - object) (and {body})))"
    if task in _STATE_CHANGE:
        cls, _, fact = _STATE_CHANGE[task]
        able = {"Cleanable": "cleanable", "Heatable": "heatable", "Coolable": "coolable"}[cls]
        body = (f"({able} ?o) (objectType ?o {obj}Type) (receptacleType ?r {goal_r}Type) ({fact} ?o) "
                f"(inReceptacle ?o ?r)")
        return f"(exists (?r - receptacle) (exists (?o - object) (and {body})))"
    if task == "pick_two":
        return (f"(exists (?r - receptacle) (exists (?o1 - object) (and (objectType ?o1 {obj}Type) "
                f"(receptacleType ?r {goal_r}Type) (inReceptacle ?o1 ?r) (exists (?o2 - object) "
                f"(and (not (= ?o1 ?o2)) (objectType ?o2 {obj}Type) (inReceptacle ?o2 ?r))))))")
    if task == "look_at_obj_in_light":
        return (f"(and (exists (?ot - object ?r - receptacle ?a - agent ?l - location) (and "
                f"(objectType ?ot {toggle}Type) (toggleable ?ot) (isToggled ?ot) (receptacleAtLocation ?r ?l) "
                f"(atLocation ?a ?l) (inReceptacle ?ot ?r))) (exists (?o - object ?a - agent) "
                f"(and (objectType ?o {obj}Type) (holds ?a ?o))))")
    raise InvalidArgument(f"unknown task type {task!r}; allowed: {list(TASK_TYPES)}")


# ======================================================================================
# Writing and validating
# ======================================================================================


def _game_logic() -> tuple[str, str]:
    alfworld = import_alfworld()
    info = alfworld.info
    return Path(info.ALFRED_PDDL_PATH).read_text(), Path(info.ALFRED_TWL2_PATH).read_text()


class _Validator:
    """Loads a game in ALFWorld's text engine, asks the planner for a walkthrough and replays it."""

    def __init__(self) -> None:
        import_alfworld()
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
        from textworld.envs.pddl import PddlEnv

        from rewardlab.envs.alfworld import speedups

        speedups.install()  # same engine output, faster; and keeps sys.argv intact
        # The engine AlfredTWEnv plays (with its demangled names: "cabinet 1", not "cabinet_bar_1").
        infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["walkthrough"])
        self.env = AlfredDemangler(shuffle=False)(PddlEnv(infos))

    def walkthrough(self, data: dict[str, Any]) -> list[str] | None:
        try:
            self.env.load(data)
            state = self.env.reset()
            plan = list(state["extra.walkthrough"] or [])
        except Exception:  # noqa: BLE001  (the planner fails on an unsolvable or malformed problem)
            return None
        if not plan:
            return None
        for cmd in plan:
            if cmd not in state["admissible_commands"]:
                return None
            state, _, done = self.env.step(cmd)
        return plan if state["won"] else None


def _game_seed(seed: int, split: str, task: str, index: int, attempt: int) -> int:
    return zlib.crc32(f"{seed}/{split}/{task}/{index}/{attempt}".encode())


def generate_corpus(out: Path | str, settings: GenSettings, *, verbose: bool = False) -> dict[str, Any]:
    """Write ``settings``' games under ``out`` and return the manifest (also written to disk).

    Each game is sampled with its own RNG seeded from ``(seed, split, task, index, attempt)``
    and kept only if the planner solves it and its walkthrough, replayed in ``PddlEnv``, wins.
    """
    out = Path(out)
    domain, grammar = _game_logic()
    rooms = load_rooms()
    validator = _Validator()
    games: list[dict[str, Any]] = []
    rejected = 0
    for split in SPLITS:
        n = settings.games_per_type if split == "train" else settings.heldout_per_type
        split_rooms = [r for r in rooms if split_of(r.name) == split]
        for task in settings.task_types:
            made = 0
            for index in range(n):
                for attempt in range(200):
                    rng = np.random.default_rng(_game_seed(settings.seed, split, task, index, attempt))
                    room = _choose(rng, split_rooms)
                    spec = sample_task(room, task, rng, settings)
                    if spec is None:
                        continue
                    data = {"pddl_domain": domain, "grammar": grammar.replace("UNKNOWN GOAL", spec["goal_text"]),
                            "pddl_problem": spec["problem"], "solvable": True}
                    plan = validator.walkthrough(data)
                    if plan is None:
                        rejected += 1
                        continue
                    data["walkthrough"] = plan
                    rel = Path(split) / task / f"{room.name}-{index:03d}"
                    (out / rel).mkdir(parents=True, exist_ok=True)
                    (out / rel / "game.tw-pddl").write_text(json.dumps(data))
                    traj = {"task_type": TASK_TYPES[task], "pddl_params": spec["pddl_params"],
                            "scene": {"floor_plan": room.name}, "goal_text": spec["goal_text"],
                            "rewardlab": {"seed": settings.seed, "index": index, "attempt": attempt}}
                    (out / rel / "traj_data.json").write_text(json.dumps(traj, indent=1))
                    games.append({"path": str(rel / "game.tw-pddl"), "split": split, "task": task,
                                  "room": room.name, "goal": spec["goal_text"], "walkthrough_len": len(plan)})
                    made += 1
                    break
            if verbose:
                print(f"{split}/{task}: {made}/{n} games")
    manifest = {"settings": dataclasses.asdict(settings), "version": GENERATOR_VERSION, "games": games,
                "rejected": rejected}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def ensure_corpus(settings: GenSettings, data_dir: Path | str | None = None) -> tuple[Path, dict[str, Any]]:
    """The corpus directory of ``settings`` (``<data_dir>/corpus-<hash>``), generated if missing.

    Generation writes into a temporary directory renamed at the end, so a crash or a
    concurrent generator never leaves a half-written corpus behind.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    corpus = root / f"corpus-{settings.digest()}"
    if (corpus / MANIFEST).is_file():
        return corpus, json.loads((corpus / MANIFEST).read_text())
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{settings.digest()}-{os.getpid()}"
    generate_corpus(tmp, settings)
    try:
        tmp.rename(corpus)
    except OSError:  # another process finished first: use its corpus
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return corpus, json.loads((corpus / MANIFEST).read_text())


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m rewardlab.envs.alfworld.generate [--out DIR] [--seed S] ...``."""
    p = argparse.ArgumentParser(description="Generate an ALFWorld-style game corpus (offline, seeded).")
    p.add_argument("--out", type=Path, default=None, help="data dir (default: $REWARDLAB_ALFWORLD_DIR or "
                   "~/.cache/rewardlab/alfworld); the corpus goes to <out>/corpus-<hash>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--games-per-type", type=int, default=20)
    p.add_argument("--heldout-per-type", type=int, default=5)
    p.add_argument("--max-receptacles", type=int, default=6)
    p.add_argument("--num-distractors", type=int, default=2)
    p.add_argument("--open-containers", action="store_true", help="openable receptacles start open")
    p.add_argument("--task-types", nargs="+", default=list(TASK_TYPES), choices=list(TASK_TYPES))
    a = p.parse_args(argv)
    settings = GenSettings(seed=a.seed, games_per_type=a.games_per_type, heldout_per_type=a.heldout_per_type,
                           task_types=tuple(a.task_types), max_receptacles=a.max_receptacles,
                           num_distractors=a.num_distractors, closed_containers=not a.open_containers)
    corpus, manifest = ensure_corpus(settings, a.out)
    by = {}
    for g in manifest["games"]:
        by[(g["split"], g["task"])] = by.get((g["split"], g["task"]), 0) + 1
    for (split, task), n in sorted(by.items()):
        print(f"{split:8s} {task:22s} {n}")
    print(f"{len(manifest['games'])} games ({manifest['rejected']} rejected by the planner) in {corpus}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
