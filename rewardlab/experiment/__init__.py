"""Experiments: YAML config schema, runner, evaluation and plots."""

from rewardlab.config import ExperimentConfig, load_config, parse_config
from rewardlab.experiment.runner import RunSummary, run_experiment

__all__ = ["ExperimentConfig", "load_config", "parse_config", "run_experiment", "RunSummary"]
