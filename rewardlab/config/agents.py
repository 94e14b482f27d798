"""The agent section's checks, run when an experiment file is parsed (so ``rewardlab check``
and ``rewardlab run`` fail before anything is built or written):

- ``agent.params`` against the agent's typed params model (``validate_agent_params``);
- every reward term's agent hooks against the hooks the agent honours: a term that needs a
  hook its agent never calls is refused, naming both and the agents that would call it.

The hooks an agent honours are data (``HONOURED_HOOKS`` in the package manifests), so the
check imports no agent; it imports each term's class to read the hooks it declares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardlab.agents.params import validate_agent_params
from rewardlab.core.registry import manifest_entries
from rewardlab.core.terms import AGENT_HOOKS, TERMS, Term
from rewardlab.errors import ConfigError

__all__ = ["honoured_hooks", "agents_honouring", "check_term_hooks", "check_agent", "hooks_markdown"]


def honoured_hooks(agent: str) -> frozenset[str]:
    """The reward-term hooks ``agent`` calls (none for an agent that declares none)."""
    return frozenset(manifest_entries("HONOURED_HOOKS").get(agent, ()))


def agents_honouring(hook: str) -> list[str]:
    """The registered agents that call ``hook``, in declaration order.

    >>> agents_honouring("update")[:3]
    ['ppo', 'pg', 'text_ppo']
    """
    return [name for name, hooks in manifest_entries("HONOURED_HOOKS").items() if hook in hooks]


def _or_list(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_term_hooks(agent: str, terms: Sequence[Any]) -> None:
    """Refuse the first term (a ``TermConfig`` or spec mapping) that needs an agent hook
    ``agent`` never calls.

    >>> check_term_hooks("sb3_ppo", [{"name": "barfi", "params": {"aux": "cartpole_upright"}}])
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardlab.errors.ConfigError: term 'barfi' learns through update(); agent 'sb3_ppo' never calls it: use ppo, ...
    """
    honoured = honoured_hooks(agent)
    for term in terms:
        spec = term.spec() if hasattr(term, "spec") else dict(term)
        cls = TERMS.get(spec["name"])
        if not (isinstance(cls, type) and issubclass(cls, Term)):
            continue  # a plain RewardTerm: it has no agent hooks
        required = cls.required_agent_hooks(dict(spec.get("params") or {}))
        for hook, info in AGENT_HOOKS.items():
            if hook in required and hook not in honoured:
                label = spec["name"] if not spec.get("as") else f"{spec['as']} ({spec['name']})"
                others = agents_honouring(hook)
                fix = f"use {_or_list(others)}" if others else "no registered agent calls it"
                raise ConfigError(f"term {label!r} {info.uses}; agent {agent!r} never {info.agent_does} it: {fix}")


def check_agent(agent: str, params: dict[str, Any], terms: Sequence[Any]) -> Any:
    """Both checks, the hooks first (a term the agent cannot train is the deeper mismatch:
    no change of ``agent.params`` fixes it); returns the validated params (the agent's typed model)."""
    check_term_hooks(agent, terms)
    return validate_agent_params(agent, params)


def hooks_markdown() -> str:
    """The hook table of ``docs/concepts.md`` and ``docs/agents/ppo.md``, generated from
    ``AGENT_HOOKS`` and the manifests' ``HONOURED_HOOKS`` (a test compares the pages with it)."""
    lines = ["| hook | when an agent that honours it calls it | honoured by |", "|---|---|---|"]
    for hook, info in AGENT_HOOKS.items():
        agents = ", ".join(f"`{a}`" for a in agents_honouring(hook)) or "—"
        lines.append(f"| `{hook}` | {info.when} | {agents} |")
    lines += ["", "Every other registered agent (`rewardlab list agents`) honours none of them: the config "
              "check refuses a term that needs one under it."]
    return "\n".join(lines)
