"""Load settings: Locust command-line options, validated into one frozen object.

``add_arguments(parser)`` is what the locustfile hangs on
``events.init_command_line_parser``; Locust then carries the options to every
worker with its spawn message. ``LoadSettings.from_options(ns)`` validates once.

Loopback only unless asked: ``--sip-allow-remote`` (or CCHARNESS_ALLOW_REMOTE_TARGETS=1)
accepts SIP targets beyond loopback and ``--sip-bind ADDR`` (or CCHARNESS_SIP_BIND; default
127.0.0.1) binds the engines' SIP/RTP there: both for real deployments only. The worker's
engine processes take both from the environment (EngineConfig defaults), so
``from_options`` exports them when they were asked for.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.sip.engine import DEFAULT_TAG_HEADER, LOOPBACK, SIP_BIND_ENV, default_bind
from harness.sip.profiles import HoldDistribution, codec_ids, parse_hold
from harness.sip.uri import ALLOW_REMOTE_ENV, parse_target, remote_allowed

# Pacing: a caller starts a call at most every DEFAULT_MIN_INTERVAL seconds, so a 488 or
# 503 answered in a millisecond cannot make it redial at ~1,500 calls/s (one engine
# process takes ~60 new calls/s, DESIGN.md). MIN_INTERVAL_FLOOR bounds what may be asked.
DEFAULT_MIN_INTERVAL = 1.0
MIN_INTERVAL_FLOOR = 0.05


def add_arguments(parser) -> None:
    # Locust's own parser (not argument groups) so that is_secret reaches its web UI.
    g = a = parser
    # Locust binds its web UI and a master's worker port on every interface by default;
    # here both default to loopback (--web-host/--master-bind-host still override).
    parser.set_defaults(web_host=LOOPBACK, master_bind_host=LOOPBACK)
    g.add_argument("--sip-target", default="", help="SIP URI(s) to call, comma-separated "
                   "(trunks in failover order)")
    g.add_argument("--sip-codecs", default="pcmu,pcma", help="codec offer, best first")
    g.add_argument("--sip-hold", default="fixed:30", help="hold after answer: S, fixed:S, "
                   "uniform:A:B, exp:MEAN, normal:MEAN:SD")
    g.add_argument("--sip-tag", default="", help="tag value (default: a run id)")
    g.add_argument("--sip-tag-header", default=DEFAULT_TAG_HEADER, help="tag header name")
    g.add_argument("--sip-dtmf", default="", help="DTMF digits sent once answered")
    g.add_argument("--sip-dtmf-method", default="rfc2833", choices=["rfc2833", "info"],
                   help="DTMF as RTP events (RFC 4733) or SIP INFO")
    g.add_argument("--sip-ring-timeout", type=float, default=60.0,
                   help="CANCEL a call not answered after this many seconds")
    g.add_argument("--sip-retry", action="store_true",
                   help="on 503/408, retry on the next --sip-target (RFC 3263 style)")
    g.add_argument("--sip-min-interval", type=float, default=DEFAULT_MIN_INTERVAL,
                   help="seconds between one caller's call starts, at least (default "
                   f"{DEFAULT_MIN_INTERVAL:g}; bounds redialling after fast failures)")
    g.add_argument("--sip-max-calls", type=int, default=1_000_000,
                   help="bound on calls per worker process")
    g.add_argument("--sip-endpoints-file", default="",
                   help="twin endpoints JSON: maps target URIs to entry trunk ids")
    g.add_argument("--sip-media", default="null", choices=["null", "none"],
                   help="null: null audio device (RTP flows); none: no device")
    g.add_argument("--sip-engines", type=int, default=0,
                   help="engine processes to start per worker up front (they also grow on demand)")
    g.add_argument("--sip-allow-remote", action="store_true",
                   help="REAL DEPLOYMENTS ONLY: accept SIP targets beyond loopback "
                   f"(or {ALLOW_REMOTE_ENV}=1); default: loopback targets only")
    g.add_argument("--sip-bind", default="", metavar="ADDR",
                   help="address the engines bind SIP/RTP to (default: "
                   f"{SIP_BIND_ENV} or {LOOPBACK}); another address is for real deployments")
    g.add_argument("--calls-out", default="", help="master: write calls.jsonl here")
    a.add_argument("--api-base-url", default="", help="platform REST base URL")
    a.add_argument("--api-token-url", default="", help="OAuth client-credentials endpoint")
    a.add_argument("--api-client-id", default="", help="OAuth client id")
    a.add_argument("--api-client-secret", default="", is_secret=True,
                   help="OAuth client secret (or env CCHARNESS_API_CLIENT_SECRET)")
    a.add_argument("--api-platform", default="genesys", choices=["genesys", "cxone"])
    a.add_argument("--api-trunk-id", default="", help="trunk to read")
    a.add_argument("--api-queue-id", default="", help="queue whose stats to read")


@dataclass(frozen=True)
class LoadSettings:
    targets: tuple[str, ...]
    codecs: tuple[str, ...]
    hold: HoldDistribution
    tag: str
    tag_header: str
    dtmf: str
    dtmf_method: str
    ring_timeout: float
    retry: bool
    max_calls: int
    min_interval: float
    entry_trunks: dict
    media: str
    allow_remote: bool = False
    sip_bind: str = LOOPBACK

    @classmethod
    def from_options(cls, ns) -> "LoadSettings":
        targets = tuple(t.strip() for t in (ns.sip_target or "").split(",") if t.strip())
        if not targets:
            raise ConfigError("no SIP target: give --sip-target sip:user@127.0.0.1:PORT",
                              key="sip-target")
        allow = remote_allowed(True if getattr(ns, "sip_allow_remote", False) else None)
        for t in targets:
            parse_target(t, allow_remote=allow)
        bind = sip_bind(getattr(ns, "sip_bind", ""))
        header = ns.sip_tag_header.strip()
        if not header or ":" in header or " " in header:
            raise ConfigError(f"bad tag header name {ns.sip_tag_header!r}", key="sip-tag-header")
        if ns.sip_ring_timeout <= 0:
            raise ConfigError("ring timeout must be positive", key="sip-ring-timeout")
        if not ns.sip_min_interval >= MIN_INTERVAL_FLOOR:
            raise ConfigError(f"minimum interval between a caller's calls must be at least "
                              f"{MIN_INTERVAL_FLOOR:g} s, got {ns.sip_min_interval:g}",
                              key="sip-min-interval")
        export_engine_env(allow, bind)
        return cls(targets=targets, codecs=codec_ids(ns.sip_codecs), hold=parse_hold(ns.sip_hold),
                   tag=ns.sip_tag or "untagged", tag_header=header, dtmf=ns.sip_dtmf or "",
                   dtmf_method=ns.sip_dtmf_method,
                   ring_timeout=float(ns.sip_ring_timeout), retry=bool(ns.sip_retry),
                   max_calls=int(ns.sip_max_calls), min_interval=float(ns.sip_min_interval),
                   entry_trunks=entry_trunks(ns.sip_endpoints_file), media=ns.sip_media,
                   allow_remote=allow, sip_bind=bind)


def sip_bind(value: str) -> str:
    """The engines' bind address: ``value``, else the environment, else 127.0.0.1."""
    addr = (value or "").strip() or default_bind()
    try:
        ipaddress.ip_address(addr.strip("[]"))
    except ValueError:
        raise ConfigError(f"--sip-bind must be an IP address, got {addr!r}",
                          key="sip-bind") from None
    return addr


def export_engine_env(allow_remote: bool, bind: str) -> None:
    """Hand the opt-ins to this process's engine processes (they inherit the environment;
    EngineConfig reads it). Nothing is written for the loopback defaults."""
    if allow_remote:
        os.environ[ALLOW_REMOTE_ENV] = "1"
    if bind != LOOPBACK:
        os.environ[SIP_BIND_ENV] = bind


def entry_trunks(path: str) -> dict:
    """sip_uri -> trunk id from a twin endpoints file (CONTRACTS.md 1), or {}."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read endpoints file: {exc}", path=path) from None
    return {t["sip_uri"]: t["id"] for t in doc.get("trunks", []) if "sip_uri" in t}


def api_secret(ns) -> str:
    return ns.api_client_secret or os.environ.get("CCHARNESS_API_CLIENT_SECRET", "")
