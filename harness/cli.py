"""The ``ccharness`` command: a thin layer over the library.

Each subcommand lives in the module that owns it; that module exposes
``configure_parser(parser)`` and ``run(args) -> int``. Modules are imported
lazily so that ``ccharness validate`` does not pay for PJSUA2 or Locust.
Every ``HarnessError`` becomes a one-line message on stderr and its exit code;
no traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from harness.errors import EXIT_BAD_INPUT, HarnessError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("harness.demo", "the main job: twin + distributed load + fault + measurement + report"),
    "run": ("harness.control.cli", "run an experiment file against the platform it names"),
    "validate": ("harness.experiment.cli", "check an experiment file without running it"),
    "rollback": ("harness.control.rollback_cli", "restore every target saved in a run journal"),
    "emulator": ("harness.twin.cli", "run the platform twin (DR environment emulator) alone"),
    "load": ("harness.load.cli", "tagged SIP load without faults"),
    "report": ("harness.report.cli", "rebuild report.html, junit.xml and summary.json of a run"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser the user asked for, so unrelated modules are not imported.
    parser = build_parser_for(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "verbose", False):
        # One line per HTTP request or Locust worker heartbeat drowns the progress lines.
        for noisy in ("httpx", "httpcore", "locust.runners", "locust.main"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    if getattr(args, "_missing", None):
        print(f"ccharness {args.command}: not available in this build ({args._missing})", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args._run(args) or 0)
    except HarnessError as exc:
        print(f"ccharness {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ccharness {args.command}: interrupted", file=sys.stderr)
        return 130


def build_parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """A parser that imports only the module of the subcommand named in argv."""
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen not in COMMANDS:
        return build_parser_lazy()
    parser = argparse.ArgumentParser(prog="ccharness")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != chosen:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                p.set_defaults(_missing=module)
                continue
            raise
        mod.configure_parser(p)
        p.set_defaults(_run=mod.run)
    return parser


def build_parser_lazy() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccharness", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
