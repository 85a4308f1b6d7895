"""The twin's topology: YAML in, frozen dataclasses out, errors that name file/line/key.

A topology lists platforms (license tier), trunks, media-server pools, queues, IVRs,
flows, delays and OAuth clients. References between objects (a trunk's queue, a
failover trunk, a fallback queue) may use names or ids; they are resolved to ids here
so the model never sees a dangling reference. Ids not given are derived
deterministically (uuid5 of platform, kind and name) so that two runs of the same
topology agree on every id.

Durations are seconds as the platform would show them at ``--time-scale 1``; the model
multiplies platform delays by the time scale. Network figures (``*_ms``) are not scaled.

Keys (defaults in brackets; see default_topology.yaml and tests/twin/fixtures/):

  platforms: {genesys|cxone: {licenseTier: NAME}}     licenseTiers: {NAME: concurrent sessions}
  mediaServerPools: [{id, region, available [true], latencyZone [none]}]
  queues: [{name, platform, agents, id [derived], ringTime [2], handleTime [120],
            region [default], fallbackQueue [none], callback [false], schedule [[agents]]}]
  ivrs: [{name, platform, id [derived], duration [10]}]
  trunks: [{name, platform, queue, mediaServerPoolId, id [derived], status [Active],
            routing: {enabled [true], failoverPriority [1]}, group [platform],
            capacity: {maxConcurrentCalls [1000], throttlePercentage [100]},
            healthScore [100], failoverTrunkId [none], codecs [[PCMU, PCMA]],
            inviteTimeout [30], latencyZone [default], port [0 = any]}]
  flows: {genesys: {maxWaitTime [30], minAvailableAgents [0]},
          cxone: {fallbackQueue, ivr, fallbackExceptions [[TRUNK_UNAVAILABLE, MEDIA_SERVER_TIMEOUT]]}}
  delays: {genesysPropagation [[15, 25]], genesysHealthCheckInterval [5], cxoneEdgeRefresh [10],
           cxoneHealthPollInterval [10], cxoneLowPolls [3], cxoneHealthThreshold [60],
           analyticsBatch [10], analyticsLag [[90, 120]], crossRegionLatencyMs [[80, 120]],
           zoneLatencyMs [[{from, to, ms}]], tokenLifetime [3600]}
  oauthClients: [{id, secret [random per run], scopes [all]}]
  rejectCode [503], tagHeader [X-Chaos-Test], wfmIntervalSeconds [1800]
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

PLATFORMS = ("genesys", "cxone")
STATUSES = ("Active", "Degraded", "Inactive")
_NS = uuid.UUID("6f1d3b0e-2c1a-4c4e-9a53-9d4f1c0c7a11")
ALL_SCOPES = (
    "view:architect", "edit:architect", "view:telephony", "edit:telephony", "view:analytics",
    "view:workforcemanagement", "manage:trunks", "manage:flows", "read:analytics",
    "read:system", "twin:admin",
)


def stable_id(platform: str, kind: str, name: str) -> str:
    return str(uuid.uuid5(_NS, f"{platform}:{kind}:{name}"))


@dataclass(frozen=True)
class Pool:
    id: str
    region: str
    available: bool = True
    latency_zone: str | None = None   # trunks using the pool sit in this zone


@dataclass(frozen=True)
class Queue:
    id: str
    name: str
    platform: str
    agents: int
    ring_time: float
    handle_time: float
    region: str
    fallback_queue_id: str | None = None
    callback: bool = False
    schedule: tuple[int, ...] = ()      # agents per WFM interval, repeating; empty = `agents`


@dataclass(frozen=True)
class Ivr:
    id: str
    name: str
    platform: str
    duration: float


@dataclass(frozen=True)
class Trunk:
    id: str
    name: str
    platform: str
    status: str
    routing_enabled: bool
    failover_priority: int
    max_concurrent_calls: int
    throttle_percentage: float
    health_score: float
    failover_trunk_id: str | None
    codecs: tuple[str, ...]
    media_server_pool_id: str
    invite_timeout: float
    latency_zone: str
    queue_id: str
    group: str
    port: int = 0


@dataclass(frozen=True)
class Delays:
    genesys_propagation: tuple[float, float] = (15.0, 25.0)
    genesys_health_check_interval: float = 5.0
    cxone_edge_refresh: float = 10.0
    cxone_health_poll_interval: float = 10.0
    cxone_low_polls: int = 3
    cxone_health_threshold: float = 60.0
    analytics_batch: float = 10.0
    analytics_lag: tuple[float, float] = (90.0, 120.0)
    cross_region_latency_ms: tuple[float, float] = (80.0, 120.0)
    zone_latency_ms: tuple[tuple[str, str, float], ...] = ()
    token_lifetime: float = 3600.0

    def zone_latency(self, a: str, b: str) -> float:
        """Added one-way latency (ms) between two latency zones; 0 inside a zone."""
        if a == b:
            return 0.0
        for x, y, ms in self.zone_latency_ms:
            if {x, y} == {a, b}:
                return ms
        return 0.0


@dataclass(frozen=True)
class GenesysFlow:
    max_wait_time: float = 30.0         # waitTime > this -> fallback
    min_available_agents: int = 0       # availableAgents == this -> fallback


@dataclass(frozen=True)
class CxoneFlow:
    fallback_queue_id: str | None
    ivr_id: str | None
    fallback_exceptions: tuple[str, ...] = ("TRUNK_UNAVAILABLE", "MEDIA_SERVER_TIMEOUT")


@dataclass(frozen=True)
class OAuthClient:
    id: str
    secret: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    source: str
    trunks: tuple[Trunk, ...]
    pools: tuple[Pool, ...]
    queues: tuple[Queue, ...]
    ivrs: tuple[Ivr, ...]
    license_tiers: dict[str, int]
    platform_tiers: dict[str, str]
    genesys_flow: GenesysFlow
    cxone_flow: CxoneFlow
    delays: Delays
    clients: tuple[OAuthClient, ...]
    reject_code: int = 503
    tag_header: str = "X-Chaos-Test"
    wfm_interval: float = 1800.0
    by_id: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def trunk(self, trunk_id: str) -> Trunk | None:
        obj = self.by_id.get(trunk_id)
        return obj if isinstance(obj, Trunk) else None

    def queue(self, queue_id: str | None) -> Queue | None:
        obj = self.by_id.get(queue_id) if queue_id else None
        return obj if isinstance(obj, Queue) else None

    def pool(self, pool_id: str | None) -> Pool | None:
        obj = self.by_id.get(pool_id) if pool_id else None
        return obj if isinstance(obj, Pool) else None

    def ivr(self, ivr_id: str | None) -> Ivr | None:
        obj = self.by_id.get(ivr_id) if ivr_id else None
        return obj if isinstance(obj, Ivr) else None

    def license_ceiling(self, platform: str) -> int | None:
        tier = self.platform_tiers.get(platform)
        return self.license_tiers.get(tier) if tier else None


# ---------------------------------------------------------------- YAML with lines

class _LineDict(dict):
    """A mapping that remembers the line of each key (1-based) and its own line."""

    line: int = 0
    key_lines: dict


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Typed access to one mapping, raising ConfigError with file, line and key path."""

    def __init__(self, data: Any, path: str, where: str, line: int = 0):
        self.path, self.where = path, where
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping", path=path, line=line or None, key=where or None)
        self.data = data
        self.line = getattr(data, "line", line) or line

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _line(self, key: str) -> int | None:
        return getattr(self.data, "key_lines", {}).get(key, self.line) or None

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, line=self._line(key), key=self._key(key))

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def get(self, key: str, kind: type | tuple, default: Any = ..., *, low=None, high=None) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise ConfigError("missing required key", path=self.path, line=self.line or None,
                                  key=self._key(key))
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = "/".join(k.__name__ for k in kinds)
            raise self.fail(key, f"expected {names}, got {value!r}")
        if low is not None and value < low or high is not None and value > high:
            raise self.fail(key, f"{value!r} out of range [{low}, {high}]")
        return value

    def range(self, key: str, default: tuple[float, float]) -> tuple[float, float]:
        value = self.data.get(key, list(default))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
              and 0 <= value[0] <= value[1])
        if not ok:
            raise self.fail(key, f"expected [low, high] with 0 <= low <= high, got {value!r}")
        return float(value[0]), float(value[1])

    def child(self, key: str, default: Any = ...) -> "_Reader":
        value = self.data.get(key, default if default is not ... else None)
        if value is None:
            if default is ...:
                raise ConfigError("missing required key", path=self.path, line=self.line or None,
                                  key=self._key(key))
            value = {}
        return _Reader(value, self.path, self._key(key), self._line(key) or 0)

    def items(self, key: str) -> list["_Reader"]:
        value = self.data.get(key, [])
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self.fail(key, "expected a list")
        return [_Reader(v, self.path, f"{self._key(key)}[{i}]", self._line(key) or 0)
                for i, v in enumerate(value)]


# ---------------------------------------------------------------- loading

def load_topology(path: str | Path | None = None) -> Topology:
    """Load and validate a topology file; ``None`` loads the packaged default."""
    if path is None:
        text = resources.files("harness.twin").joinpath("default_topology.yaml").read_text()
        return parse_topology(text, "default_topology.yaml")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read topology: {exc.strerror}", path=str(path)) from exc
    return parse_topology(text, str(path))


def parse_topology(text: str, source: str = "<topology>") -> Topology:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path=source,
                          line=mark.line + 1 if mark else None) from exc
    root = _Reader(data if data is not None else {}, source, "")
    root.check_keys({"platforms", "licenseTiers", "mediaServerPools", "queues", "ivrs", "trunks",
                     "flows", "delays", "oauthClients", "rejectCode", "tagHeader",
                     "wfmIntervalSeconds"})
    return _Builder(root).build()


class _Builder:
    def __init__(self, root: _Reader):
        self.root = root
        self.by_id: dict[str, Any] = {}
        self.names: dict[tuple[str, str], str] = {}   # (kind, name or id) -> id

    def build(self) -> Topology:
        r = self.root
        delays = self._delays()
        tiers, platform_tiers = self._licenses()
        pools = tuple(self._pool(p) for p in r.items("mediaServerPools"))
        ivrs = tuple(self._ivr(i) for i in r.items("ivrs"))
        queue_readers = r.items("queues")
        for q in queue_readers:
            self._name_queue(q)
        queues = tuple(self._queue(q) for q in queue_readers)
        trunk_readers = r.items("trunks")
        if not trunk_readers:
            raise r.fail("trunks", "at least one trunk is required")
        for t in trunk_readers:
            self._name_trunk(t)
        trunks = tuple(self._trunk(t) for t in trunk_readers)
        gflow, cflow = self._flows()
        clients = tuple(self._client(c) for c in r.items("oauthClients")) or (
            OAuthClient("ccharness-demo", secrets.token_urlsafe(24), ALL_SCOPES),)
        return Topology(
            source=r.path, trunks=trunks, pools=pools, queues=queues, ivrs=ivrs,
            license_tiers=tiers, platform_tiers=platform_tiers, genesys_flow=gflow,
            cxone_flow=cflow, delays=delays, clients=clients,
            reject_code=r.get("rejectCode", int, 503, low=400, high=699),
            tag_header=r.get("tagHeader", str, "X-Chaos-Test"),
            wfm_interval=r.get("wfmIntervalSeconds", float, 1800.0, low=60),
            by_id=self.by_id,
        )

    def _register(self, reader: _Reader, obj_id: str, obj: Any) -> None:
        if obj_id in self.by_id and self.by_id[obj_id] is not obj:
            raise reader.fail("id", f"duplicate id {obj_id!r}")
        self.by_id[obj_id] = obj

    def _ref(self, reader: _Reader, key: str, kind: str, required: bool = False) -> str | None:
        value = reader.get(key, str, ... if required else None)
        if value is None:
            return None
        found = self.names.get((kind, value))
        if found is None:
            raise reader.fail(key, f"no {kind} named or with id {value!r}")
        return found

    def _licenses(self) -> tuple[dict[str, int], dict[str, str]]:
        tiers_r = self.root.child("licenseTiers", {})
        tiers = {}
        for name in tiers_r.data:
            tiers[name] = tiers_r.get(name, int, low=0)
        plat = self.root.child("platforms", {})
        plat.check_keys(set(PLATFORMS))
        platform_tiers = {}
        for name in plat.data:
            p = plat.child(name)
            p.check_keys({"licenseTier"})
            tier = p.get("licenseTier", str, None)
            if tier is not None and tier not in tiers:
                raise p.fail("licenseTier", f"unknown license tier {tier!r}")
            if tier:
                platform_tiers[name] = tier
        return tiers, platform_tiers

    def _platform(self, reader: _Reader) -> str:
        value = reader.get("platform", str)
        if value not in PLATFORMS:
            raise reader.fail("platform", f"expected one of {', '.join(PLATFORMS)}")
        return value

    def _pool(self, r: _Reader) -> Pool:
        r.check_keys({"id", "region", "available", "latencyZone"})
        pool = Pool(r.get("id", str), r.get("region", str), r.get("available", bool, True),
                    r.get("latencyZone", str, None))
        self._register(r, pool.id, pool)
        self.names[("pool", pool.id)] = pool.id
        return pool

    def _ivr(self, r: _Reader) -> Ivr:
        r.check_keys({"id", "name", "platform", "duration"})
        platform, name = self._platform(r), r.get("name", str)
        ivr = Ivr(r.get("id", str, stable_id(platform, "ivr", name)), name, platform,
                  r.get("duration", float, 10.0, low=0))
        self._register(r, ivr.id, ivr)
        self.names[("ivr", ivr.name)] = self.names[("ivr", ivr.id)] = ivr.id
        return ivr

    def _name_queue(self, r: _Reader) -> None:
        platform, name = self._platform(r), r.get("name", str)
        qid = r.get("id", str, stable_id(platform, "queue", name))
        self.names[("queue", name)] = self.names[("queue", qid)] = qid

    def _queue(self, r: _Reader) -> Queue:
        r.check_keys({"id", "name", "platform", "agents", "ringTime", "handleTime", "region",
                      "fallbackQueue", "callback", "schedule"})
        platform, name = self._platform(r), r.get("name", str)
        schedule = r.get("schedule", list, [])
        if not all(isinstance(n, int) and n >= 0 for n in schedule):
            raise r.fail("schedule", "expected a list of agent counts (integers >= 0)")
        queue = Queue(
            id=self.names[("queue", name)], name=name, platform=platform,
            agents=r.get("agents", int, low=0), ring_time=r.get("ringTime", float, 2.0, low=0),
            handle_time=r.get("handleTime", float, 120.0, low=0),
            region=r.get("region", str, "default"),
            fallback_queue_id=self._ref(r, "fallbackQueue", "queue"),
            callback=r.get("callback", bool, False), schedule=tuple(schedule),
        )
        self._register(r, queue.id, queue)
        return queue

    def _name_trunk(self, r: _Reader) -> None:
        platform, name = self._platform(r), r.get("name", str)
        tid = r.get("id", str, stable_id(platform, "trunk", name))
        if ("trunk", name) in self.names:
            raise r.fail("name", f"duplicate trunk name {name!r}")
        self.names[("trunk", name)] = self.names[("trunk", tid)] = tid

    def _trunk(self, r: _Reader) -> Trunk:
        r.check_keys({"id", "name", "platform", "status", "routing", "capacity", "healthScore",
                      "failoverTrunkId", "codecs", "mediaServerPoolId", "inviteTimeout",
                      "latencyZone", "queue", "port", "group"})
        platform, name = self._platform(r), r.get("name", str)
        status = r.get("status", str, "Active")
        if status not in STATUSES:
            raise r.fail("status", f"expected one of {', '.join(STATUSES)}")
        routing, capacity = r.child("routing", {}), r.child("capacity", {})
        routing.check_keys({"enabled", "failoverPriority"})
        capacity.check_keys({"maxConcurrentCalls", "throttlePercentage"})
        codecs = r.get("codecs", list, ["PCMU", "PCMA"])
        if not codecs or not all(isinstance(c, str) for c in codecs):
            raise r.fail("codecs", "expected a non-empty list of codec names")
        pool = r.get("mediaServerPoolId", str)
        if ("pool", pool) not in self.names:
            raise r.fail("mediaServerPoolId", f"no media-server pool {pool!r}")
        trunk = Trunk(
            id=self.names[("trunk", name)], name=name, platform=platform, status=status,
            routing_enabled=routing.get("enabled", bool, True),
            failover_priority=routing.get("failoverPriority", int, 1, low=0),
            max_concurrent_calls=capacity.get("maxConcurrentCalls", int, 1000, low=0),
            throttle_percentage=capacity.get("throttlePercentage", float, 100.0, low=0, high=100),
            health_score=r.get("healthScore", float, 100.0, low=0, high=100),
            failover_trunk_id=self._ref(r, "failoverTrunkId", "trunk"),
            codecs=tuple(c.upper() for c in codecs), media_server_pool_id=pool,
            invite_timeout=r.get("inviteTimeout", float, 30.0, low=0),
            latency_zone=r.get("latencyZone", str, "default"),
            queue_id=self._ref(r, "queue", "queue", required=True),
            group=r.get("group", str, platform), port=r.get("port", int, 0, low=0, high=65535),
        )
        self._register(r, trunk.id, trunk)
        return trunk

    def _flows(self) -> tuple[GenesysFlow, CxoneFlow]:
        flows = self.root.child("flows", {})
        flows.check_keys(set(PLATFORMS))
        g = flows.child("genesys", {})
        g.check_keys({"maxWaitTime", "minAvailableAgents"})
        c = flows.child("cxone", {})
        c.check_keys({"fallbackQueue", "ivr", "fallbackExceptions"})
        exceptions = c.get("fallbackExceptions", list, ["TRUNK_UNAVAILABLE", "MEDIA_SERVER_TIMEOUT"])
        return (GenesysFlow(g.get("maxWaitTime", float, 30.0, low=0),
                            g.get("minAvailableAgents", int, 0, low=0)),
                CxoneFlow(self._ref(c, "fallbackQueue", "queue"), self._ref(c, "ivr", "ivr"),
                          tuple(str(e) for e in exceptions)))

    def _delays(self) -> Delays:
        d = self.root.child("delays", {})
        d.check_keys({"genesysPropagation", "genesysHealthCheckInterval", "cxoneEdgeRefresh",
                      "cxoneHealthPollInterval", "cxoneLowPolls", "cxoneHealthThreshold",
                      "analyticsBatch", "analyticsLag", "crossRegionLatencyMs", "zoneLatencyMs",
                      "tokenLifetime"})
        zones = []
        for z in d.items("zoneLatencyMs"):
            z.check_keys({"from", "to", "ms"})
            zones.append((z.get("from", str), z.get("to", str), z.get("ms", float, low=0)))
        return Delays(
            genesys_propagation=d.range("genesysPropagation", (15.0, 25.0)),
            genesys_health_check_interval=d.get("genesysHealthCheckInterval", float, 5.0, low=0.001),
            cxone_edge_refresh=d.get("cxoneEdgeRefresh", float, 10.0, low=0.001),
            cxone_health_poll_interval=d.get("cxoneHealthPollInterval", float, 10.0, low=0.001),
            cxone_low_polls=d.get("cxoneLowPolls", int, 3, low=1),
            cxone_health_threshold=d.get("cxoneHealthThreshold", float, 60.0, low=0, high=100),
            analytics_batch=d.get("analyticsBatch", float, 10.0, low=0.001),
            analytics_lag=d.range("analyticsLag", (90.0, 120.0)),
            cross_region_latency_ms=d.range("crossRegionLatencyMs", (80.0, 120.0)),
            zone_latency_ms=tuple(zones),
            token_lifetime=d.get("tokenLifetime", float, 3600.0, low=1),
        )

    def _client(self, r: _Reader) -> OAuthClient:
        r.check_keys({"id", "secret", "scopes"})
        scopes = r.get("scopes", list, list(ALL_SCOPES))
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise r.fail("scopes", f"unknown scopes {unknown}")
        # No secret in the file: a fresh one per run, published only in the endpoints file.
        secret = r.get("secret", str, None) or secrets.token_urlsafe(24)
        return OAuthClient(r.get("id", str), secret, tuple(scopes))
