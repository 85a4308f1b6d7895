"""``ccharness validate EXPERIMENT.yaml``: check a file without touching any platform.

Exit 0 when valid (a one-line summary on stdout), 2 with file:line: key: message otherwise.
"""

from __future__ import annotations

import argparse

from harness.experiment.loader import load_experiment


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment YAML file")


def run(args: argparse.Namespace) -> int:
    exp = load_experiment(args.experiment)
    kind = "with load" if exp.load else "API-only"
    print(f"{exp.path}: valid: {exp.name} ({exp.platform.name.value}/{exp.platform.api.value}, "
          f"{kind}, {len(exp.method.steps)} step(s), targets {', '.join(exp.trunk_targets) or 'none'})")
    return 0
