"""Faster text generation for textworld's PDDL engine: same game, same text.

Profiling our ALFWorld env (random play, PickAndPlace) shows most of a step inside textworld's
text generator: every feedback message and every admissible command is produced by
``ContextSensitiveGrammar.derive(template)``, which re-parses the same template strings with a
tatsu (PEG) parser on every call, and every grammar condition is re-parsed as a logic query
(``Rule.parse_conjunctive_query``). Both are pure functions of their string, so this module
caches them, and removes deep copies of data that is only read:

- ``textworld.envs.pddl.textgen._parse_and_convert``: the parsed symbol list is cached per
  (template, rule name) and a deep copy is returned, because ``derive`` writes a context into
  every symbol it gets;
- ``Rule.parse_conjunctive_query``: the parsed query is cached per expression and shared
  (``State.all_assignments`` copies what it mutates);
- ``copy_context`` (called for every symbol of every derivation) deep-copied the ``variables``
  and ``mapping`` dicts, i.e. the entity descriptions and logic variables in them, which the
  generator only reads: they are copied one level deep (the dicts themselves are extended per
  derivation branch, their values are never changed);
- ``Symbol.copy`` deep-copied the symbol *with* its context (the whole game state) and then
  replaced that context: the copy now leaves the old context out;
- every ``reset`` re-translated the game's PDDL into fast-downward's SAS task twice
  (``fast_downward.pddl2sas``, ~0.15 s): the translation is cached per (domain, problem,
  optimize) and shared (``PddlState`` only reads the task; the SAS text is reloaded into the
  planner library on every reset as before); and ``sys.argv``, which the translator overwrites,
  is restored.

``install()`` patches textworld in this process (idempotent; ``AlfWorldEnv`` calls it unless
``fast_text=False``); ``uninstall()`` restores the originals. The differential test
(``tests/envs/test_alfworld_speedups.py``) plays the same commands with and without the caches
on generated games and requires identical feedback, admissible commands, facts and ``won``.
``benchmarks/alfworld_steps.py`` measures the speed-up.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

__all__ = ["install", "uninstall", "installed", "cache_sizes"]

_ORIGINALS: dict[str, Any] = {}
_TEMPLATES: dict[tuple, Any] = {}
_QUERIES: dict[str, Any] = {}
_TRANSLATIONS: dict[tuple, Any] = {}


def installed() -> bool:
    """Whether the caches are patched into textworld in this process."""
    return bool(_ORIGINALS)


def cache_sizes() -> dict[str, int]:
    """Number of distinct templates and queries parsed so far (for logs and tests)."""
    return {"templates": len(_TEMPLATES), "queries": len(_QUERIES), "translations": len(_TRANSLATIONS)}


def install() -> None:
    """Patch textworld's template and query parsers with caches (no-op if already done)."""
    if installed():
        return
    import fast_downward
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    parse_template = textgen._parse_and_convert
    parse_query = Rule.parse_conjunctive_query  # bound classmethod

    def cached_parse_template(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("trace"):  # textworld's debugging flag: keep its tracing output
            return parse_template(*args, **kwargs)
        key = (args, tuple(sorted((k, v) for k, v in kwargs.items() if k != "trace")))
        parsed = _TEMPLATES.get(key)
        if parsed is None:
            parsed = _TEMPLATES[key] = parse_template(*args, **kwargs)
        return copy.deepcopy(parsed)

    def cached_parse_query(cls: type, expr: str) -> Any:
        rule = _QUERIES.get(expr)
        if rule is None:
            rule = _QUERIES[expr] = parse_query(expr)
        return rule

    translate = fast_downward.pddl2sas

    def cached_translate(domain: str, problem: str, verbose: bool = False, optimize: bool = False) -> Any:
        if verbose:
            return translate(domain, problem, verbose=verbose, optimize=optimize)
        key = (domain, problem, bool(optimize))
        out = _TRANSLATIONS.get(key)
        if out is None:
            if len(_TRANSLATIONS) >= 256:  # a few MB per game pair; keep the newest
                _TRANSLATIONS.pop(next(iter(_TRANSLATIONS)))
            argv = sys.argv  # fast_downward overwrites sys.argv to configure its translator
            try:
                out = _TRANSLATIONS[key] = translate(domain, problem, verbose=verbose, optimize=optimize)
            finally:
                sys.argv = argv
        return out

    def shallow_copy_context(context: dict) -> dict:
        return {"state": context["state"], "facts": context["facts"], "variables": dict(context["variables"]),
                "mapping": dict(context["mapping"]), "entity_infos": context["entity_infos"]}

    def copy_symbol(self: Any, context: dict) -> Any:
        own, self.context = self.context, {}
        try:
            dup = copy.deepcopy(self)
        finally:
            self.context = own
        dup.context = textgen.copy_context(context)
        return dup

    _ORIGINALS.update(template=parse_template, query=Rule.__dict__["parse_conjunctive_query"],
                      copy_context=textgen.copy_context, symbol_copy=textgen.Symbol.copy,
                      translate=translate)
    textgen._parse_and_convert = cached_parse_template
    Rule.parse_conjunctive_query = classmethod(cached_parse_query)
    textgen.copy_context = shallow_copy_context
    textgen.Symbol.copy = copy_symbol
    fast_downward.pddl2sas = cached_translate


def uninstall(keep_cache: bool = False) -> None:
    """Restore textworld's own parsers; drop the caches unless ``keep_cache`` (benchmarks
    switch back and forth)."""
    if not installed():
        return
    import fast_downward
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    textgen._parse_and_convert = _ORIGINALS.pop("template")
    Rule.parse_conjunctive_query = _ORIGINALS.pop("query")
    textgen.copy_context = _ORIGINALS.pop("copy_context")
    textgen.Symbol.copy = _ORIGINALS.pop("symbol_copy")
    fast_downward.pddl2sas = _ORIGINALS.pop("translate")
    if not keep_cache:
        _TEMPLATES.clear()
        _QUERIES.clear()
        _TRANSLATIONS.clear()
