"""A native ALFWorld simulator: the alfred PDDL domain and its text grammar as a Python state machine.

textworld plays an ALFWorld game by translating its PDDL into a fast-downward SAS task, asking
the planner library for the applicable operators after every step and deriving every command
and feedback text with a context-sensitive grammar (``alfred.twl2``) whose templates and logic
queries it re-parses on every call. This module plays the same games without any of that: it
parses a generated game's PDDL problem once, keeps the fact state in Python sets and implements
each action of ALFWorld's ``alfred.pddl`` domain (its preconditions and effects) and each
feedback rule of the grammar directly.

What it reproduces, step for step (checked by ``tests/envs/test_alfworld_native.py`` and
``scripts/alfworld_native_diff.py`` against textworld's ``PddlEnv`` wrapped in ALFWorld's
``AlfredDemangler``):

- the entity names ``AlfredDemangler(shuffle=False)`` gives (``cabinet 2``; ids sorted, numbers
  handed out from the highest down, as ALFWorld's ``Demangler`` does);
- the admissible commands (``sorted(set(...))`` as ``PddlEnv`` returns them);
- the feedback texts, including the grammar's list rendering (``a x, a y, and a z`` / ``nothing``)
  with textworld's item order (facts sorted by entity id) and its quirks: textworld keeps a
  deleted fact as an explicit ``not_<fact>``, and grammar conditions test those facts (an
  untoggled lamp is "nothing special", not "off", because nothing deletes ``istoggled``);
- the quirks of the domain as fast-downward grounds it: an object can be examined only while
  held (a stray comma in ``examineObject``'s precondition), and "go to" the receptacle the agent
  stands at is not offered (a no-op operator, dropped by the translator);
- ``won`` (the game's PDDL goal, evaluated on the fact state), the ``done`` / score of
  ``PddlEnv.step``, and textworld's fact list (``facts`` and ``deleted``).

Contents: ``NativeGame`` (one parsed game), ``NativeEngine`` (``load`` / ``reset`` / ``step``,
the calls ``AlfWorldEnv`` makes on textworld's engine), ``NativeState`` (the state dict it
returns), ``check_supported`` (whether a game uses only what is modelled here),
``demangled_names``; for the differential checks ``reference_engine`` (textworld's engine as
``AlfWorldEnv`` builds it), ``diff_game`` and ``DiffResult``.

Not modelled (no generated game uses them; a game that does is refused with ``InvalidArgument``):
slicing, receptacle objects (objects inside objects), several agents, and a domain or grammar
other than the ``alfred.pddl`` / ``alfred.twl2`` the alfworld wheel ships (checked by hash).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.errors import InvalidArgument

__all__ = ["NativeGame", "NativeEngine", "NativeState", "check_supported", "demangled_names", "NOTHING_HAPPENS",
           "reference_engine", "diff_game", "DiffResult"]

NOTHING_HAPPENS = "Nothing happens."
# sha1 of alfworld's data/alfred.pddl and of data/alfred.twl2 with the goal line left as shipped.
DOMAIN_SHA1 = "f6b34d1678ff904f31b5ba33c065aa9c6e2e8bf5"
GRAMMAR_SHA1 = "e84cce56255c770b812bd78da58c1f2934280979"
_TASK_LINE = re.compile(r'"rhs": "Your task is to: (.*?)"\n')
# Facts of the domain this simulator does not implement (slicing, receptacle objects).
_UNSUPPORTED = {"sliceable", "issliced", "isreceptacleobject", "inreceptacleobject", "isreceptacleobjectfull",
                "holdsanyreceptacleobject"}
_HELP = ("Available commands:\n"
         "  look:                             look around your current location\n"
         "  inventory:                        check your current inventory\n"
         "  go to (receptacle):               move to a receptacle\n"
         "  open (receptacle):                open a receptacle\n"
         "  close (receptacle):               close a receptacle\n"
         "  take (object) from (receptacle):  take an object from a receptacle\n"
         "  move (object) to (receptacle):  place an object in or on a receptacle\n"
         "  examine (something):              examine a receptacle or an object\n"
         "  use (object):                     use an object\n"
         "  heat (object) with (receptacle):  heat an object using a receptacle\n"
         "  clean (object) with (receptacle): clean an object using a receptacle\n"
         "  cool (object) with (receptacle):  cool an object using a receptacle\n"
         "  slice (object) with (object):     slice an object using a sharp object\n")
_INTRO = "-= Welcome to TextWorld, ALFRED! =-\n\n{look}\n\n{task}"
# The appliance receptacle type each state-changing action needs (alfred.pddl).
_APPLIANCE = {"clean": "sinkbasintype", "heat": "microwavetype", "cool": "fridgetype"}
_ABLE = {"clean": "cleanable", "heat": "heatable", "cool": "coolable"}

Fact = tuple[str, ...]


# ======================================================================================
# Parsing
# ======================================================================================


def _sexpr(text: str) -> list:
    """The PDDL text as nested lists of lower-cased tokens (fast-downward lower-cases too)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", re.sub(r";[^\n]*", "", text).lower())
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    return stack[0]


def _typed(items: list[str]) -> list[tuple[str, str]]:
    """``[a, b, -, t, c, -, u]`` -> ``[(a, t), (b, t), (c, u)]``."""
    out, pending = [], []
    it = iter(items)
    for tok in it:
        if tok == "-":
            t = next(it)
            out += [(name, t) for name in pending]
            pending = []
        else:
            pending.append(tok)
    return out + [(name, "object") for name in pending]


def demangled_names(ids: Iterable[str]) -> dict[str, str]:
    """The names ALFWorld's ``Demangler(shuffle=False)`` gives entity ids: ``cabinet_bar_3`` ->
    ``cabinet N`` where the N of a name count down from its number of instances over the sorted
    ids; an id without ``_bar_`` keeps its text and gets a trailing space (``agent1 ``).

    >>> names = demangled_names(["cabinet_bar_1", "cabinet_bar_2", "sink_bar_1_bar_sinkbasin", "agent1"])
    >>> names["cabinet_bar_1"], names["cabinet_bar_2"], names["sink_bar_1_bar_sinkbasin"], names["agent1"]
    ('cabinet 2', 'cabinet 1', 'sinkbasin 1', 'agent1 ')
    """
    ids = sorted(ids)
    counts: dict[str, int] = {}
    for i in ids:
        parts = i.split("_bar_", 1)
        if len(parts) > 1:
            name = parts[0] + ("basin" if "basin" in i else "")
            counts[name] = counts.get(name, 0) + 1
    numbers = {name: list(range(1, n + 1)) for name, n in counts.items()}
    names = {}
    for i in ids:
        text = i
        for a, b in (("_bar_", "|"), ("_minus_", "-"), ("_plus_", "+"), ("_dot_", "."), ("_comma_", ",")):
            text = text.replace(a, b)
        parts = text.split("|", 1)
        if len(parts) == 1:
            names[i] = f"{text} "
        else:
            name = parts[0] + ("basin" if "basin" in i else "")
            names[i] = f"{name} {numbers[name].pop()}"
    return names


def check_supported(data: dict[str, Any]) -> str | None:
    """Why the native engine cannot play this game (a reason), or None if it can."""
    if hashlib.sha1(data.get("pddl_domain", "").encode()).hexdigest() != DOMAIN_SHA1:
        return "its PDDL domain is not alfworld's alfred.pddl"
    grammar = data.get("grammar", "")
    if hashlib.sha1(_TASK_LINE.sub('"rhs": "Your task is to: UNKNOWN GOAL."\n', grammar, count=1)
                    .encode()).hexdigest() != GRAMMAR_SHA1:
        return "its grammar is not alfworld's alfred.twl2"
    problem = data.get("pddl_problem", "")
    used = {w for w in re.findall(r"\(\s*([A-Za-z]+)", problem)}
    bad = sorted(u for u in used if u.lower() in _UNSUPPORTED)
    if bad:
        return f"it uses {bad} (slicing / receptacle objects are not modelled)"
    logic = sorted(u for u in used if u.lower() in ("forall", "imply", "when"))
    if logic:
        return f"its goal uses {logic} (goals are and/or/not/=/exists of facts)"
    return None


@dataclass
class NativeGame:
    """One game, parsed: entity types and names, the initial facts, the goal, the texts."""

    types: dict[str, str]
    """entity id -> PDDL type (agent, location, receptacle, object, rtype, otype)"""
    init: frozenset
    """initial facts, ``(predicate, arg, ...)``, lower-case as fast-downward reads them"""
    goal: list
    """the goal formula as nested token lists, quantified variables renamed apart"""
    names: dict[str, str]
    """entity id -> its text name (``AlfredDemangler``)"""
    task: str
    """the intro's task sentence (``Your task is to: ...``)"""
    walkthrough: list[str] = field(default_factory=list)
    """the planner's solution stored in the game file"""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> NativeGame:
        reason = check_supported(data)
        if reason is not None:
            raise InvalidArgument(f"the native ALFWorld engine cannot play this game: {reason}; "
                                  "use engine='textworld'")
        problem = _sexpr(data["pddl_problem"])[0]
        sections = {part[0]: part[1:] for part in problem if isinstance(part, list) and part}
        types = dict(_typed(sections[":objects"]))
        init = frozenset(tuple(atom) for atom in sections[":init"] if atom and atom[0] != "=")
        agents = [e for e, t in types.items() if t == "agent"]
        if len(agents) != 1:
            raise InvalidArgument(f"the native ALFWorld engine plays one-agent games; this one has {agents}")
        # Entities are the arguments of facts (textworld's _get_entity_infos), named by the demangler.
        entities = {arg for fact in init for arg in fact[1:]}
        m = _TASK_LINE.search(data["grammar"])
        task = "Your task is to: " + json.loads(f'"{m.group(1)}"') if m else ""
        return cls(types=types, init=init, goal=_rename_apart(sections[":goal"][0]), names=demangled_names(entities),
                   task=task,
                   walkthrough=list(data.get("walkthrough") or []))

    @classmethod
    def from_file(cls, path: str | Path) -> NativeGame:
        return cls.from_data(json.loads(Path(path).read_text()))


# ======================================================================================
# Text helpers (the grammar's list rendering)
# ======================================================================================


def _display_list(items: list[str]) -> str:
    """textgen's ``display_list`` with alfred's separators: ``nothing`` / ``x`` / ``x, y, and z``."""
    if not items:
        return "nothing"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


class NativeState(dict):
    """What ``reset``/``step`` return: ``feedback``, ``admissible_commands``, ``won``, ``facts``
    (the true facts as tuples) as keys; ``feedback`` also as an attribute (like textworld's
    ``GameState``)."""

    @property
    def feedback(self) -> str:
        return self["feedback"]


# ======================================================================================
# The engine
# ======================================================================================


class NativeEngine:
    """Plays one loaded ``NativeGame`` (``load`` / ``reset`` / ``step`` as textworld's engine).

    >>> from rewardlab.envs.alfworld.generate import GenSettings, ensure_corpus
    >>> corpus, manifest = ensure_corpus(GenSettings(games_per_type=2, heldout_per_type=5,
    ...                                              task_types=("pick_and_place",)))
    >>> engine = NativeEngine()
    >>> engine.load(corpus / manifest["games"][0]["path"])
    >>> state = engine.reset()
    >>> for cmd in engine.game.walkthrough:
    ...     state, score, done = engine.step(cmd)
    >>> score, done, state["won"]
    (1, True, True)
    """

    def __init__(self) -> None:
        self.game: NativeGame | None = None
        self.facts: set[Fact] = set()
        self.deleted: set[Fact] = set()  # textworld's explicit "not_<fact>" facts
        self._actions: dict[str, tuple] = {}
        self._index: dict[str, list[Fact]] = {}
        self._reachable: set[Fact] = set()
        self._goal_preds: set[str] = set()
        self._goal_dirty, self._goal_met = True, False

    # -- loading ---------------------------------------------------------------------------
    def load(self, path_or_data: str | Path | dict[str, Any]) -> None:
        if isinstance(path_or_data, dict):
            self.game = NativeGame.from_data(path_or_data)
        else:
            self.game = NativeGame.from_file(path_or_data)
        g = self.game
        by_pred: dict[str, list[Fact]] = {}
        for f in g.init:
            by_pred.setdefault(f[0], []).append(f)

        def unary(pred: str) -> set[str]:
            return {f[1] for f in by_pred.get(pred, ())}

        self.agent = next(e for e, t in g.types.items() if t == "agent")
        self.recep_loc = {f[1]: f[2] for f in by_pred.get("receptacleatlocation", ())}
        self.loc_receps: dict[str, list[str]] = {}
        for r, loc in sorted(self.recep_loc.items()):
            self.loc_receps.setdefault(loc, []).append(r)
        self.rtype = {f[1]: f[2] for f in by_pred.get("receptacletype", ())}
        self.otype = {f[1]: f[2] for f in by_pred.get("objecttype", ())}
        self.can_contain = {(f[1], f[2]) for f in by_pred.get("cancontain", ())}
        self.openable, self.pickupable, self.toggleable = unary("openable"), unary("pickupable"), unary("toggleable")
        self.able = {kind: unary(pred) for kind, pred in _ABLE.items()}
        self.receptacles = sorted(self.recep_loc)
        self.name = g.names
        self._goal_preds = set(_heads(g.goal)) - {"and", "or", "not", "exists", "="}
        # Facts an action may delete although they are false: hot / cool (heat deletes iscool,
        # cool deletes ishot) when the object can be taken to a microwave / fridge, and ison.
        # Relaxed reachability of alfred.pddl: an object can be held iff pickupable and in a
        # receptacle, every receptacle can be reached.
        held = {o for o in self.pickupable if any(f[0] == "inreceptacle" and f[1] == o for f in g.init)}
        rtypes = set(self.rtype.values())
        self._reachable: set[Fact] = {("ison", o) for o in self.toggleable}
        for kind, fact in (("heat", "ishot"), ("cool", "iscool")):
            if _APPLIANCE[kind] in rtypes:
                self._reachable |= {(fact, o) for o in held & self.able[kind]}

    # -- fact bookkeeping (textworld's: a deleted fact becomes an explicit not_<fact>) ------
    def _add(self, *facts: Fact) -> None:
        for f in facts:
            self.facts.add(f)
            self.deleted.discard(f)
            self._goal_dirty |= f[0] in self._goal_preds

    def _del(self, *facts: Fact) -> None:
        # textworld records every delete effect of the operator fast-downward grounded, whether
        # or not the fact held; fast-downward grounds only facts reachable in the relaxed task, so
        # a delete of a fact that can never hold (heating an apple in a game without a fridge
        # deletes "iscool") leaves no not_<fact> behind
        for f in facts:
            if f in self.facts or f in self._reachable:
                self.facts.discard(f)
                self.deleted.add(f)
                self._goal_dirty |= f[0] in self._goal_preds

    def _location(self) -> str:
        return next(f[2] for f in self.facts if f[0] == "atlocation" and f[1] == self.agent)

    def _contents(self, r: str) -> list[str]:
        return sorted(f[1] for f in self.facts if f[0] == "inreceptacle" and f[2] == r)

    def _held(self) -> list[str]:
        return sorted(f[2] for f in self.facts if f[0] == "holds" and f[1] == self.agent)

    # -- texts -----------------------------------------------------------------------------
    def _examine_receptacle(self, r: str) -> str:
        n = self.name[r]
        listed = _display_list([f"a {self.name[o]}" for o in self._contents(r)])
        if r in self.openable:
            if ("opened", r) in self.facts:
                return f"The {n} is open. In it, you see {listed}."
            return f"The {n} is closed."
        return f"On the {n}, you see {listed}."

    def _examine_object(self, o: str) -> str:
        n, facts = self.name[o], self.facts
        clean, hot, cool = ("isclean", o) in facts, ("ishot", o) in facts, ("iscool", o) in facts
        if clean and hot:
            return f"This is a hot and clean {n}."
        if clean and cool:
            return f"This is a cool and clean {n}."
        if hot:
            return f"This is a hot {n}."
        if clean:
            return f"This is a clean {n}."
        if cool:
            return f"This is a cold {n}."
        if o in self.toggleable:
            if ("istoggled", o) in facts:
                return f"This {n} is on."
            if ("istoggled", o) in self.deleted:
                return f"This {n} is off."
        return f"There's nothing special about {n}."

    def _look(self, bound: bool) -> str:
        """``look.feedback``; ``bound``: the look action's location is bound (not the intro)."""
        loc = self._location()
        here = self.loc_receps.get(loc, [])
        if here:
            floor = [f"a {self.name[o]}"
                     for o in sorted(f[1] for f in self.facts if f[0] == "objectatlocation" and f[2] == loc)
                     for r in here if ("inreceptacle", o, r) in self.deleted]
            return (f"You are facing the {_display_list([self.name[r] for r in here])}. "
                    f"Next to it, you see {_display_list(floor)}.")
        shown = [] if bound else [f"a {self.name[r]}" for r in self.receptacles]
        return f"You are in the middle of a room. Looking quickly around you, you see {_display_list(shown)}."

    def _inventory(self) -> str:
        if ("holdsany", self.agent) in self.facts:
            return f"You are carrying: {_display_list([f'a {self.name[o]}' for o in self._held()])}."
        return "You are not carrying anything."

    # -- actions ---------------------------------------------------------------------------
    def _applicable(self) -> dict[str, tuple]:
        """command -> (kind, args) for every applicable action of alfred.pddl (first wins, as
        ``PddlEnv.step`` takes the first action whose command matches)."""
        acts: dict[str, tuple] = {}
        facts, name = self.facts, self.name
        loc = self._location()
        acts["look"] = ("look", loc)
        acts["inventory"] = ("inventory",)
        acts["help"] = ("help",)
        for r in self.receptacles:
            # going where the agent already is changes no fact: fast-downward's translator drops
            # such no-op operators, so textworld never offers them
            if self.recep_loc[r] != loc:
                acts.setdefault(f"go to {name[r]}", ("goto", loc, r))
        held = self._held()
        empty_handed = ("holdsany", self.agent) not in facts
        for r in self.loc_receps.get(loc, []):
            acts.setdefault(f"examine {name[r]}", ("examine_r", r))
            opened = ("opened", r) in facts
            if r in self.openable:
                if opened:
                    acts.setdefault(f"close {name[r]}", ("close", r))
                else:
                    acts.setdefault(f"open {name[r]}", ("open", r))
            reachable = r not in self.openable or opened
            for o in self._contents(r):
                if reachable:
                    if empty_handed and o in self.pickupable:
                        acts.setdefault(f"take {name[o]} from {name[r]}", ("take", o, r))
                if o in self.toggleable:
                    acts.setdefault(f"use {name[o]}", ("use", o))
            rt = self.rtype.get(r)
            for o in held:
                if reachable and (rt, self.otype.get(o)) in self.can_contain:
                    acts.setdefault(f"move {name[o]} to {name[r]}", ("put", o, r))
                for kind in ("heat", "clean", "cool"):
                    if rt == _APPLIANCE[kind] and o in self.able[kind]:
                        acts.setdefault(f"{kind} {name[o]} with {name[r]}", (kind, o, r))
        # examineObject's first disjunct (the object in a receptacle here) declares its variables as
        # "(?l - location, ?r - receptacle)": the comma makes "location," a type without objects,
        # so only a held object can be examined
        for o in held:
            acts.setdefault(f"examine {name[o]}", ("examine_o", o))
        return acts

    def _apply(self, action: tuple) -> str:
        kind, a, name = action[0], self.agent, self.name
        if kind == "look":
            self._add(("checked", action[1]))
            return self._look(bound=True)
        if kind == "inventory":
            self._add(("checked", a))
            return self._inventory()
        if kind == "help":
            self._add(("checked", a))
            return _HELP
        if kind == "goto":
            _, start, r = action
            self._del(("atlocation", a, start))
            self._add(("atlocation", a, self.recep_loc[r]))
            return f"You arrive at {name[r]}. {self._examine_receptacle(r)}"
        if kind == "examine_r":
            self._add(("checked", action[1]))
            return self._examine_receptacle(action[1])
        if kind == "examine_o":
            self._add(("checked", action[1]))
            return self._examine_object(action[1])
        if kind == "open":
            self._add(("opened", action[1]), ("checked", action[1]))
            return f"You open the {name[action[1]]}. {self._examine_receptacle(action[1])}"
        if kind == "close":
            self._del(("opened", action[1]))
            return f"You close the {name[action[1]]}."
        if kind == "take":
            _, o, r = action
            self._del(("inreceptacle", o, r), ("objectatlocation", o, self.recep_loc[r]))
            self._add(("holds", a, o), ("holdsany", a))
            return f"You pick up the {name[o]} from the {name[r]}."
        if kind == "put":
            _, o, r = action
            self._add(("inreceptacle", o, r), ("objectatlocation", o, self.recep_loc[r]))
            self._del(("holds", a, o), ("holdsany", a))
            return f"You move the {name[o]} to the {name[r]}."
        if kind == "use":
            # ToggleObject's two conditional effects (ison on if off, off if on) are both
            # recorded by textworld, in this order, whichever fired: its fact list never keeps
            # "ison" (the planner's state, which decides won, toggles it; no text reads it)
            o = action[1]
            self._add(("ison", o))
            self._del(("ison", o))
            self._add(("istoggled", o))
            return f"You turn on the {name[o]}."  # istoggled is now true: the grammar's first rule
        _, o, r = action  # heat / clean / cool
        if kind == "clean":
            self._add(("isclean", o))
        elif kind == "heat":
            self._add(("ishot", o))
            self._del(("iscool", o))
        else:
            self._add(("iscool", o))
            self._del(("ishot", o))
        return f"You {kind} the {name[o]} using the {name[r]}."

    # -- goal ------------------------------------------------------------------------------
    def _won(self) -> bool:
        # re-evaluated only after a fact of a predicate the goal names has changed
        if self._goal_dirty:
            index: dict[str, list[Fact]] = {}
            for f in self.facts:
                index.setdefault(f[0], []).append(f)
            self._index = index
            self._goal_met = any(True for _ in self._solve([self.game.goal], {}))
            self._goal_dirty = False
        return self._goal_met

    def _solve(self, goals: list, env: dict[str, str]):
        """Bindings that satisfy the conjunction ``goals`` (atoms bind variables, like a join);
        quantified variables are unique (``NativeGame.goal`` is renamed apart)."""
        if not goals:
            yield env
            return
        # Flatten and/exists first, then match atoms against the facts, then test the rest.
        for i, g in enumerate(goals):
            if g[0] == "and":
                yield from self._solve(goals[:i] + list(g[1:]) + goals[i + 1:], env)
                return
            if g[0] == "exists":
                yield from self._solve(goals[:i] + [g[2]] + goals[i + 1:], env)
                return
        atoms = [(sum(x.startswith("?") and x not in env for x in g[1:]), len(self._index.get(g[0], ())), i)
                 for i, g in enumerate(goals) if g[0] not in ("not", "or", "=")]
        if atoms:  # the most constrained atom first (fewest free variables, then fewest facts)
            i = min(atoms)[2]
            g, rest = goals[i], goals[:i] + goals[i + 1:]
            for f in self._index.get(g[0], ()):
                if len(f) != len(g):
                    continue
                new = dict(env)
                for x, v in zip(g[1:], f[1:], strict=True):
                    x = new.get(x, x)
                    if x.startswith("?"):
                        new[x] = v
                    elif x != v:
                        break
                else:
                    yield from self._solve(rest, new)
            return
        g, rest = goals[0], goals[1:]
        if self._holds(g, env):
            yield from self._solve(rest, env)

    def _holds(self, g: list, env: dict[str, str]) -> bool:
        if g[0] == "not":
            return not any(True for _ in self._solve([g[1]], env))
        if g[0] == "or":
            return any(any(True for _ in self._solve([h], env)) for h in g[1:])
        if g[0] == "=":
            return env.get(g[1], g[1]) == env.get(g[2], g[2])
        return any(True for _ in self._solve([g], env))

    # -- textworld's engine API ------------------------------------------------------------
    def _state(self, feedback: str) -> NativeState:
        self._actions = self._applicable()
        return NativeState(feedback=feedback, admissible_commands=sorted(self._actions), won=self._won(),
                           facts=frozenset(self.facts))

    def reset(self) -> NativeState:
        if self.game is None:
            raise InvalidArgument("NativeEngine: load() a game before reset()")
        self.facts = set(self.game.init)
        self.deleted = set()
        self._goal_dirty = True
        look = self._look(bound=False)
        return self._state(_INTRO.format(look=look, task=self.game.task))

    def step(self, command: str) -> tuple[NativeState, int, bool]:
        """Apply ``command`` if it is admissible, else ``Nothing happens.`` (state unchanged);
        returns ``(state, score, done)`` like ``PddlEnv.step`` (score 1 and done once won)."""
        if self.game is None or not self._actions:
            raise InvalidArgument("NativeEngine: reset() before step()")
        action = self._actions.get(command.strip())
        feedback = NOTHING_HAPPENS if action is None else self._apply(action)
        state = self._state(feedback)
        won = state["won"]
        return state, int(won), won

    def close(self) -> None:
        self.game = None
        self._actions = {}


def _heads(formula: Any):
    """Every list head (predicate or connective) in a formula."""
    if isinstance(formula, list) and formula:
        if isinstance(formula[0], str):
            yield formula[0]
        for x in formula[1:] if formula[0] != "exists" else formula[2:]:
            yield from _heads(x)


def _rename_apart(formula: Any, counter: list[int] | None = None, ren: dict[str, str] | None = None) -> Any:
    """``formula`` with every quantified variable renamed to a unique name (``?o#3``), so that
    sibling quantifiers over the same name (``?a`` twice in the look-at goal) stay apart when
    their conjunctions are flattened."""
    counter = [0] if counter is None else counter
    ren = {} if ren is None else ren
    if not isinstance(formula, list):
        return ren.get(formula, formula)
    if formula and formula[0] == "exists":
        inner = dict(ren)
        for name, _ in _typed(formula[1]):
            counter[0] += 1
            inner[name] = f"{name}#{counter[0]}"
        return [formula[0], formula[1], _rename_apart(formula[2], counter, inner)]
    return [_rename_apart(x, counter, ren) for x in formula]


# ======================================================================================
# Differential check against textworld (tests/envs/test_alfworld_native.py,
# scripts/alfworld_native_diff.py)
# ======================================================================================


def reference_engine(fast_text: bool = True) -> Any:
    """textworld's engine as ``AlfWorldEnv(engine="textworld")`` builds it (``PddlEnv`` in
    ALFWorld's ``AlfredDemangler`` and ``AlfredInfos``); ``fast_text``: with the template caches
    of ``speedups`` (which have their own differential test)."""
    from rewardlab.envs.alfworld import speedups
    from rewardlab.envs.alfworld.generate import import_alfworld

    import_alfworld()
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs.pddl import PddlEnv

    if fast_text:
        speedups.install()
    infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
    return AlfredInfos(AlfredDemangler(shuffle=False)(PddlEnv(infos)))


def _tw_facts(state: Any) -> tuple[set[Fact], set[Fact]]:
    """textworld's fact list as (true facts, explicit ``not_`` facts) of tuples."""
    pos, neg = set(), set()
    for f in state["_facts"]:
        t = (f.name, *(a.name for a in f.arguments))
        if f.name.startswith("not_"):
            neg.add((f.name[4:], *t[1:]))
        else:
            pos.add(t)
    return pos, neg


@dataclass
class DiffResult:
    """Counts of one differential run, and the mismatches found (described, first few kept)."""

    episodes: int = 0
    steps: int = 0
    """resets and steps compared"""
    inadmissible: int = 0
    """steps that played an inadmissible command"""
    mismatches: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, other: DiffResult) -> None:
        self.episodes += other.episodes
        self.steps += other.steps
        self.inadmissible += other.inadmissible
        self.mismatches += other.mismatches
        self.examples += other.examples[: max(0, 5 - len(self.examples))]


def _compare(where: str, ref: tuple, got: tuple, out: DiffResult) -> None:
    out.steps += 1
    labels = ("feedback", "admissible_commands", "won", "score", "done", "facts", "not_ facts")
    bad = [(k, a, b) for k, a, b in zip(labels, ref, got, strict=True) if a != b]
    if bad:
        out.mismatches += 1
        if len(out.examples) < 5:
            k, a, b = bad[0]
            if isinstance(a, set):
                a, b = sorted(a - b), sorted(b - a)  # only the differences
            out.examples.append(f"{where}: {k}: textworld {a!r} != native {b!r}")


def diff_game(path: str | Path, reference: Any, *, random_episodes: int = 2, max_steps: int = 40,
              invalid_prob: float = 0.1, walkthrough: bool = True, seed: int = 0) -> DiffResult:
    """Replay trajectories of one game through textworld (``reference``, from
    ``reference_engine()``) and the native engine and compare, at reset and after every step,
    the feedback, admissible commands (in order), ``won``, score, done and the fact state.

    Trajectories: the stored planner walkthrough (if ``walkthrough``), then ``random_episodes``
    episodes of up to ``max_steps`` uniformly random admissible commands, where with
    probability ``invalid_prob`` the command is instead an inadmissible one (a command that was
    admissible earlier in the episode but is not now, or a made-up one).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    native = NativeEngine()
    native.load(path)
    reference.load(str(path))
    out = DiffResult()
    plans: list[list[str] | None] = ([list(native.game.walkthrough)] if walkthrough else [])
    plans += [None] * random_episodes

    def snapshot(state: Any, score: Any, done: Any, is_native: bool) -> tuple:
        if is_native:
            pos, neg = set(state["facts"]), set(native.deleted)
        else:
            pos, neg = _tw_facts(state)
        return (state.feedback, list(state["admissible_commands"]), bool(state["won"]), score, done, pos, neg)

    for ep, plan in enumerate(plans):
        out.episodes += 1
        tag = "walkthrough" if plan is not None else f"random episode {ep}"
        ref_state, got_state = reference.reset(), native.reset()
        _compare(f"{path} {tag} reset", snapshot(ref_state, None, None, False),
                 snapshot(got_state, None, None, True), out)
        seen: set[str] = set(ref_state["admissible_commands"])
        for k in range(len(plan) if plan is not None else max_steps):
            cmds = list(ref_state["admissible_commands"])
            if plan is not None:
                cmd = plan[k]
            elif rng.random() < invalid_prob:
                stale = sorted(seen - set(cmds))
                cmd = stale[int(rng.integers(len(stale)))] if stale and rng.random() < 0.8 else "dance with the fridge"
            else:
                cmd = cmds[int(rng.integers(len(cmds)))]
            out.inadmissible += cmd not in cmds
            ref_state, ref_score, ref_done = reference.step(cmd)
            got_state, got_score, got_done = native.step(cmd)
            _compare(f"{path} {tag} step {k + 1} {cmd!r}", snapshot(ref_state, ref_score, ref_done, False),
                     snapshot(got_state, got_score, got_done, True), out)
            seen.update(ref_state["admissible_commands"])
            if ref_done or got_done:
                break
    return out
