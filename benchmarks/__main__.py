"""``python -m benchmarks NAME [ARGS...]`` runs one benchmark; with no NAME, lists them.

``make bench ARGS="twin_sip --rate 300"`` is the same through the Makefile.
"""

from __future__ import annotations

import pkgutil
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Helpers shared by benchmarks, not benchmarks themselves.
NOT_BENCHMARKS = {"load_common"}


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)])
                  if not m.name.startswith("_") and m.name not in NOT_BENCHMARKS)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(names()))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in names():
        print(f"unknown benchmark {name!r}; one of: {', '.join(names())}", file=sys.stderr)
        return 2
    sys.argv = [f"benchmarks.{name}", *rest]
    runpy.run_module(f"benchmarks.{name}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
