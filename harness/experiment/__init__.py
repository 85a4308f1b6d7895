"""Experiment files: YAML schema, loading with line numbers, validation into typed objects."""

from harness.experiment.loader import load_experiment

__all__ = ["load_experiment"]
