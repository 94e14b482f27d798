"""Sampling one sweep trial from the ``sweep:`` section (the schema lives in ``rewardlab.config.sweep``).

``sample(trial, sweep, base)`` applies one trial's values to the experiment's raw config;
``trial`` is anything with Optuna's ``suggest_*`` methods, so this module does not import Optuna.
"""

from __future__ import annotations

import copy
from typing import Any

from rewardlab.config.overrides import list_item_name, set_path
from rewardlab.config.sweep import TERMS_PATH, ParamSpec, SweepConfig, choice_label, get_path, term_names
from rewardlab.errors import ConfigError

__all__ = ["sample"]


def _active(path: str, spec: ParamSpec, data: dict[str, Any], values: dict[str, Any]) -> bool:
    prefix = TERMS_PATH + "."
    if path.startswith(prefix):
        name = path[len(prefix):].split(".")[0]
        if not name.lstrip("-").isdigit() and name not in term_names(data):
            return False  # the trial's terms do not include this one
    for cond_path, expected in (spec.when or {}).items():
        actual = values[cond_path] if cond_path in values else get_path(data, cond_path)
        if not (actual == expected or (isinstance(expected, list) and actual in expected)):
            return False
    return True


def _resolve_terms(choice: list[Any], base_terms: list[Any]) -> list[Any]:
    """Term names in a choice take their full spec (weight, params) from the base config."""
    by_name = {list_item_name(t): t for t in base_terms}
    return [copy.deepcopy(by_name.get(x, x)) if isinstance(x, str) else copy.deepcopy(x) for x in choice]


def _suggest(trial: Any, path: str, spec: ParamSpec) -> Any:
    if spec.choices is not None:
        labels = [choice_label(c) for c in spec.choices]
        if len(set(map(str, labels))) != len(labels):
            raise ConfigError(f"sweep.params.{path}: choices must be distinct, got {spec.choices}")
        return spec.choices[labels.index(trial.suggest_categorical(path, labels))]
    if spec.type == "int":
        return trial.suggest_int(path, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(path, spec.low, spec.high, step=spec.step, log=spec.log)


def sample(trial: Any, sweep: SweepConfig, base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sample one trial: ``(raw config with the values applied, {path: value})``.

    ``trial`` is anything with Optuna's ``suggest_*`` methods; dimensions are visited in file
    order, so ``when`` may refer to earlier ones.

    >>> import optuna
    >>> base = {"reward": {"terms": [{"name": "env"}, {"name": "potential", "params": {"potential": "p"}}]}}
    >>> sweep = SweepConfig(params={"reward.terms": {"choices": [["env"], ["env", "potential"]]},
    ...                             "reward.terms.potential.weight": {"low": 0.5, "high": 2.0}})
    >>> trial = optuna.trial.FixedTrial({"reward.terms": "[env, potential]", "reward.terms.potential.weight": 1.5})
    >>> data, values = sample(trial, sweep, base)
    >>> data["reward"]["terms"][1]
    {'name': 'potential', 'params': {'potential': 'p'}, 'weight': 1.5}
    >>> sample(optuna.trial.FixedTrial({"reward.terms": "[env]"}), sweep, base)[1]
    {'reward.terms': ['env']}
    """
    data = copy.deepcopy(base)
    data.pop("sweep", None)
    base_terms = list(get_path(base, TERMS_PATH) or [])
    values: dict[str, Any] = {}
    for path, spec in sweep.params.items():
        if not _active(path, spec, data, values):
            continue
        value = _suggest(trial, path, spec)
        if path == TERMS_PATH:
            if not isinstance(value, list):
                raise ConfigError(f"sweep.params.{path}: each choice must be a list of terms, got {value!r}")
            set_path(data, path, _resolve_terms(value, base_terms), what="sweep.params")
        else:
            set_path(data, path, value, what="sweep.params")
        values[path] = value
    return data, values
