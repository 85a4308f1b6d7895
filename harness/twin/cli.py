"""``ccharness emulator``: the platform twin alone, until SIGINT/SIGTERM.

Writes the endpoints JSON (CONTRACTS.md section 1) atomically to ``--endpoints-file``
once every listener is bound, prints it on stdout, and exits 0 on a signal.
A bad topology is a ConfigError naming file, line and key (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from harness.errors import ConfigError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topology", metavar="FILE", help="topology YAML (default: the packaged DR topology)")
    parser.add_argument("--endpoints-file", metavar="PATH", help="write the endpoints JSON here")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="multiply every platform delay by X (default 1.0 = real time)")
    parser.add_argument("--rest-port", type=int, default=0, metavar="N", help="REST port (default: any free)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                        help="address to bind SIP and REST on (default 127.0.0.1; anything else is "
                             "for a real deployment, e.g. 0.0.0.0 in a container)")
    parser.add_argument("--advertise-host", metavar="NAME",
                        help="address put in SIP URIs, Contact, SDP and the endpoints file "
                             "(default: --host; required with a wildcard --host)")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="seed for the random delays")


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".endpoints-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)   # it holds the demo client secret
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    import signal

    import gevent
    import gevent.event

    from harness.twin.app import Twin
    from harness.twin.topology import load_topology

    if not args.time_scale > 0:
        raise ConfigError(f"--time-scale must be > 0, got {args.time_scale}")
    if not 0 <= args.rest_port <= 65535:
        raise ConfigError(f"--rest-port must be 0..65535, got {args.rest_port}")
    topology = load_topology(args.topology)
    twin = Twin(topology, time_scale=args.time_scale, rest_port=args.rest_port, seed=args.seed,
                host=args.host, advertise_host=args.advertise_host,
                allow_non_loopback=args.host not in ("127.0.0.1", "localhost"))
    endpoints = twin.start()
    try:
        text = json.dumps(endpoints, indent=2)
        if args.endpoints_file:
            try:
                write_atomically(args.endpoints_file, text + "\n")
            except OSError as exc:
                raise ConfigError(f"cannot write endpoints file: {exc.strerror}",
                                  path=args.endpoints_file) from exc
        print(text, flush=True)
        done = gevent.event.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            gevent.signal_handler(sig, done.set)
        done.wait()
    finally:
        twin.stop()
    print("ccharness emulator: stopped", file=sys.stderr)
    return 0
