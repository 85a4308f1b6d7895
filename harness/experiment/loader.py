"""Load an experiment file and validate it, once, into ``harness.experiment.schema``.

Every problem is an ExperimentError naming file, line and key (exit 2). Checks that
need the live platform (ids, live names, scopes, WFM) happen later, in
harness.control, before any mutating call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.errors import ExperimentError
from harness.experiment.reader import Section
from harness.experiment.schema import (
    Api, BlastRadius, Convergence, Credentials, Expect, Experiment, FaultKind, Guardrail,
    Hypothesis, Load, LoadPhase, Method, Metric, Platform, PlatformName, Step, Window,
)
from harness.experiment.yamlnodes import Located, load_located

# Keys that would hold a credential. Only the *_env / *_file forms are accepted.
SECRET_KEYS = re.compile(r"^(client_?secret|secret|password|passwd|token|access_?token|api_?key|bearer)$",
                         re.IGNORECASE)
_ID_LIKE = re.compile(r"^[0-9a-fA-F-]{16,}$")

# Writable trunk fields per API dialect (docs/CONTRACTS.md section 2). A mapping is a
# nested object; a tuple is an enum; ("int"/"num", lo, hi) a bounded number.
TRUNK_FIELDS: dict[Api, dict[str, Any]] = {
    Api.GENESYS: {
        "status": ("Active", "Degraded", "Inactive"),
        "routing": {"enabled": "bool", "failoverPriority": ("int", 0, 1000)},
        "capacity": {"maxConcurrentCalls": ("int", 0, 100000), "throttlePercentage": ("num", 0, 100)},
        "codecs": "codecs",
        "inviteTimeout": ("num", 0.1, 300),
        "mediaServerPoolId": "str",
    },
    Api.CXONE: {
        "status": ("Active", "Degraded", "Inactive"),
        "healthScore": ("int", 0, 100),
        "failoverTrunkId": "trunk",
        "mediaServerPoolId": "str",
        "codecs": "codecs",
        "inviteTimeout": ("num", 0.1, 300),
    },
}
TWIN_FAULT_FIELDS: dict[str, Any] = {
    "provisioningFailure": "bool",
    "apiLatencyMs": ("num", 0, 60000),
    "apiErrorRate": ("num", 0, 1),
    "apiErrorCode": ("int", 400, 599),
    "blackholeTrunks": "trunks",
    "licenseCeiling": "tiers",        # {licenseTierName: concurrent sessions}
    "unavailablePools": "strings",
}


def load_experiment(path: str | Path) -> Experiment:
    """Read, parse and validate ``path``; raise ExperimentError on the first problem."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"cannot read the file: {exc}", path=path) from None
    return validate(load_located(text, path), path)


def validate(root: Located, path: str) -> Experiment:
    _refuse_inline_secrets(root, "", path)
    top = Section(root, "", path)
    name = top.str("name")
    description = top.str("description", "")
    platform = _platform(top.section("platform", True))
    radius = _blast_radius(top.section("blast_radius", True))
    load_section = top.section("load")
    load = _load(load_section) if load_section else None
    hypothesis = _hypothesis(top.section("hypothesis", True))
    method = _method(top.section("method", True), platform, radius)
    convergence = _convergence(top.section("convergence", True), radius)
    recovery = _convergence(top.section("recovery", True), radius)
    guardrails = tuple(_guardrail(Section(g, f"guardrails[{i}]", path))
                       for i, g in enumerate(top.list("guardrails")))
    window_section = top.section("window")
    window = _window(window_section, radius) if window_section else Window()
    runs_dir = top.str("runs_dir", None)
    top.done()
    if load:
        _check_target(top, "load", load.target, radius, root.value["load"].line)
        if load.duration_s < method.baseline_s + _last_step(method) + method.hold_s:
            raise top.error("load", "load.duration_seconds is shorter than baseline + steps + hold")
    return Experiment(name=name, path=path, description=description, platform=platform,
                      blast_radius=radius, load=load, hypothesis=hypothesis, method=method,
                      convergence=convergence, recovery=recovery, guardrails=guardrails,
                      window=window, runs_dir=runs_dir)


def _refuse_inline_secrets(node: Located, where: str, path: str) -> None:
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            full = f"{where}.{key}" if where else key
            if SECRET_KEYS.match(key) and child.value not in (None, ""):
                raise ExperimentError(
                    "inline secret refused: give client_secret_env (an environment variable) "
                    "or client_secret_file instead", path=path, line=child.line, key=full)
            _refuse_inline_secrets(child, full, path)
    elif isinstance(node.value, list):
        for i, child in enumerate(node.value):
            _refuse_inline_secrets(child, f"{where}[{i}]", path)


def _platform(s: Section) -> Platform:
    name = s.choice("name", PlatformName)
    default_api = None if name is PlatformName.TWIN else Api(name.value)
    api = s.choice("api", Api, default_api)
    if api is None:
        raise s.error("api", "is required for the twin (genesys or cxone)")
    if default_api and api is not default_api:
        raise s.error("api", f"platform {name.value} speaks only the {name.value} API")
    base_url = s.str("base_url", None)
    endpoints_file = s.str("endpoints_file", None)
    if name is PlatformName.TWIN and not (base_url or endpoints_file):
        raise s.error("endpoints_file", "the twin needs endpoints_file or base_url")
    if name is not PlatformName.TWIN and endpoints_file:
        raise s.error("endpoints_file", "only the twin has an endpoints file")
    if name is not PlatformName.TWIN and not base_url:
        raise s.error("base_url", "is required")
    for key, url in (("base_url", base_url),):
        if url and not re.match(r"^https?://", url):
            raise s.error(key, f"must be an http(s) URL, not {url!r}")
    creds = _credentials(s.section("credentials", True), name)
    platform = Platform(
        name=name, api=api, base_url=base_url, token_url=s.str("token_url", None),
        events_url=s.str("events_url", None), endpoints_file=endpoints_file, credentials=creds,
        api_call_budget=s.number("api_call_budget", 1000, integer=True, positive=True),
        request_timeout_s=s.number("request_timeout_seconds", 5.0, positive=True),
        max_retries=s.number("max_retries", 5, integer=True, maximum=20))
    s.done()
    return platform


def _credentials(s: Section, name: PlatformName) -> Credentials:
    scopes = tuple(_strings(s, "scopes"))
    creds = Credentials(
        client_id=s.str("client_id", None), client_id_env=s.str("client_id_env", None),
        client_secret_env=s.str("client_secret_env", None),
        client_secret_file=s.str("client_secret_file", None),
        from_endpoints_file=s.bool("from_endpoints_file"), scopes=scopes)
    s.done()
    if creds.from_endpoints_file:
        if name is not PlatformName.TWIN:
            raise s.error("from_endpoints_file", "only the twin publishes demo credentials")
        return creds
    if not (creds.client_id or creds.client_id_env):
        raise s.error("client_id_env", "give client_id or client_id_env")
    if bool(creds.client_secret_env) == bool(creds.client_secret_file):
        raise s.error("client_secret_env", "give exactly one of client_secret_env or client_secret_file")
    return creds


def _strings(s: Section, key: str, required: bool = False) -> list[str]:
    out = []
    for i, item in enumerate(s.list(key, required)):
        if not isinstance(item.value, str) or not item.value:
            raise s.error(key, f"item {i} must be a non-empty string", line=item.line)
        out.append(item.value)
    return out


def _blast_radius(s: Section) -> BlastRadius:
    prefixes = _prefixes(s)
    trunks = _strings(s, "trunks", required=True)
    queues = _strings(s, "queues")
    for key, refs in (("trunks", trunks), ("queues", queues)):
        for ref, item in zip(refs, s.items[key].value if key in s.items else []):
            if not _ID_LIKE.match(ref) and not ref.startswith(prefixes):
                raise s.error(key, f"{ref!r} does not carry a required name prefix "
                              f"({', '.join(prefixes)})", line=item.line)
    s.done()
    return BlastRadius(name_prefixes=prefixes, trunks=tuple(trunks), queues=tuple(queues))


def _prefixes(s: Section) -> tuple[str, ...]:
    """``name_prefix``: one prefix or a list; a live target's name must start with one."""
    located = s.raw("name_prefix", required=True)
    if isinstance(located.value, str):
        values = [located.value]
    elif isinstance(located.value, list):
        values = [item.value for item in located.value]
    else:
        raise s.error("name_prefix", "must be a string or a list of strings")
    if not values or not all(isinstance(v, str) and len(v.strip()) >= 2 for v in values):
        raise s.error("name_prefix", "each prefix must be a string of at least 2 characters")
    return tuple(values)


def _check_target(s: Section, key: str, ref: str, radius: BlastRadius, line: int,
                  kind: str = "trunk") -> None:
    allowed = radius.trunks if kind == "trunk" else radius.queues
    if ref not in allowed:
        raise s.error(key, f"{kind} {ref!r} is outside the blast radius ({', '.join(allowed) or 'empty'})",
                      line=line)


def _load(s: Section) -> Load:
    phases = []
    for i, item in enumerate(s.list("phases")):
        p = Section(item, s.key(f"phases[{i}]"), s.path)
        phases.append(LoadPhase(name=p.str("name"), duration_s=p.number("duration_seconds", positive=True),
                                concurrent=p.number("concurrent", integer=True)))
        p.done()
    load = Load(target=s.str("target"), concurrent=s.number("concurrent", integer=True, positive=True),
                rate_per_s=s.number("rate_per_second", None, positive=True),
                hold_s=s.number("hold_seconds", positive=True),
                duration_s=s.number("duration_seconds", positive=True),
                api_users=s.number("api_users", 0, integer=True),
                tag=s.str("tag", "ccharness"), phases=tuple(phases),
                ready_timeout_s=s.number("ready_timeout_seconds", 30.0, positive=True))
    s.done()
    return load


def _hypothesis(s: Section) -> Hypothesis:
    def ratio(key: str) -> float | None:
        return s.number(key, None, maximum=1.0)
    h = Hypothesis(
        window_s=s.number("window_seconds", 10.0, positive=True),
        min_calls=s.number("min_calls", 5, integer=True),
        answer_ratio_min=ratio("answer_ratio_min"), rate_408_max=ratio("rate_408_max"),
        rate_487_max=ratio("rate_487_max"), rate_488_max=ratio("rate_488_max"),
        rate_403_max=ratio("rate_403_max"),
        setup_percentile=s.number("setup_percentile", 95.0, positive=True, maximum=100.0),
        setup_seconds_max=s.number("setup_seconds_max", None, positive=True),
        mttr_max_s=s.number("mttr_max_seconds", None, positive=True),
        check_interval_s=s.number("check_interval_seconds", 1.0, positive=True))
    s.done()
    return h


def _method(s: Section, platform: Platform, radius: BlastRadius) -> Method:
    steps: list[Step] = []
    last_at = 0.0
    for i, item in enumerate(s.list("steps", required=True)):
        st = Section(item, s.key(f"steps[{i}]"), s.path)
        new = _step(st, platform, radius)
        if new[0].at_s < last_at:
            raise st.error("at_seconds", f"steps must be in time order: {new[0].at_s} comes after {last_at}")
        last_at = new[-1].at_s
        steps.extend(new)
    method = Method(baseline_s=s.number("baseline_seconds"), steps=tuple(steps),
                    hold_s=s.number("hold_seconds"))
    s.done()
    return method


def _step(s: Section, platform: Platform, radius: BlastRadius) -> list[Step]:
    at = s.number("at_seconds", 0.0)
    note = s.str("note", "")
    if s.has("twin_faults"):
        if s.has("trunk") or s.has("set") or s.has("ramp"):
            raise s.error("twin_faults", "a twin_faults step takes no trunk, set or ramp")
        if platform.name is not PlatformName.TWIN:
            raise s.error("twin_faults", "twin faults exist only on the twin")
        body = _body(s.section("twin_faults"), TWIN_FAULT_FIELDS, radius)
        s.done()
        return [Step(at, FaultKind.TWIN_FAULTS, None, body, s.node.line, note)]
    target = s.str("trunk")
    _check_target(s, "trunk", target, radius, s.items["trunk"].line)
    fields = TRUNK_FIELDS[platform.api]
    if s.has("set") == s.has("ramp"):
        raise s.error("set", "give exactly one of set or ramp")
    if s.has("set"):
        body = _body(s.section("set"), fields, radius)
        if not body:
            raise s.error("set", "must change at least one field")
        s.done()
        return [Step(at, FaultKind.TRUNK, target, body, s.node.line, note)]
    steps = _ramp(s.section("ramp"), at, target, fields, s.node.line)
    s.done()
    return steps


def _ramp(r: Section, at: float, target: str, fields: dict, line: int) -> list[Step]:
    field_path = r.str("field")
    spec: Any = fields
    for part in field_path.split("."):
        if not isinstance(spec, dict) or part not in spec:
            raise r.error("field", f"{field_path!r} is not a writable trunk field")
        spec = spec[part]
    if not (isinstance(spec, tuple) and spec[0] in ("int", "num")):
        raise r.error("field", f"{field_path!r} is not numeric; ramps need a number")
    start = r.number("from", minimum=spec[1], maximum=spec[2])
    stop = r.number("to", minimum=spec[1], maximum=spec[2])
    count = r.number("steps", integer=True, positive=True, maximum=100)
    every = r.number("every_seconds", positive=True)
    r.done()
    out = []
    for i in range(count):
        value = start + (stop - start) * (i + 1) / count
        value = int(round(value)) if spec[0] == "int" else round(value, 3)
        body: dict[str, Any] = {}
        cursor = body
        parts = field_path.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
        out.append(Step(at + i * every, FaultKind.TRUNK, target, body, line, f"ramp {i + 1}/{count}"))
    return out


def _body(s: Section, spec: dict[str, Any], radius: BlastRadius) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in list(s.items):
        if key not in spec:
            continue
        kind = spec[key]
        if isinstance(kind, dict):
            body[key] = _body(s.section(key, True), kind, radius)
        elif isinstance(kind, tuple) and kind[0] in ("int", "num"):
            body[key] = s.number(key, minimum=kind[1], maximum=kind[2], integer=kind[0] == "int")
        elif isinstance(kind, tuple):
            value = s.str(key)
            if value not in kind:
                raise s.error(key, f"unknown value {value!r}; expected one of {', '.join(kind)}")
            body[key] = value
        elif kind == "bool":
            body[key] = s.bool(key)
        elif kind in ("str", "trunk"):
            body[key] = s.str(key)
            if kind == "trunk":
                _check_target(s, key, body[key], radius, s.items[key].line)
        elif kind == "tiers":
            body[key] = _tiers(s.section(key, True))
        elif kind == "strings":
            body[key] = _strings(s, key)
        elif kind in ("codecs", "trunks"):
            body[key] = _strings(s, key, required=kind == "codecs")
            if kind == "trunks":
                for ref in body[key]:
                    _check_target(s, key, ref, radius, s.items[key].line)
    s.used.update(spec)  # so that an unknown field's message lists the writable ones
    s.done()
    return body


def _tiers(s: Section) -> dict[str, int]:
    out = {name: s.number(name, integer=True) for name in list(s.items)}
    if not out:
        raise ExperimentError("must name at least one license tier", path=s.path, line=s.node.line,
                              key=s.where)
    s.done()
    return out


def _convergence(s: Section, radius: BlastRadius) -> Convergence:
    expect = []
    for i, item in enumerate(s.list("expect", required=True)):
        allowed = [e.value for e in Expect]
        if item.value not in allowed:
            raise s.error("expect", f"unknown expectation {item.value!r}; expected {', '.join(allowed)}",
                          line=item.line)
        expect.append(Expect(item.value))
    queue = s.str("queue", None)
    if queue:
        _check_target(s, "queue", queue, radius, s.items["queue"].line, kind="queue")
    if Expect.QUEUE_STATS in expect and not queue:
        raise s.error("queue", "queue_stats needs a queue")
    conv = Convergence(timeout_s=s.number("timeout_seconds", positive=True), expect=tuple(expect),
                       queue=queue, poll_s=s.number("poll_seconds", 1.0, positive=True))
    s.done()
    return conv


def _guardrail(s: Section) -> Guardrail:
    g = Guardrail(metric=s.choice("metric", Metric), min=s.number("min", None, minimum=None),
                  max=s.number("max", None, minimum=None),
                  consecutive=s.number("consecutive", 3, integer=True, positive=True))
    if (g.min is None) == (g.max is None):
        raise s.error("min", "give exactly one of min or max")
    s.done()
    return g


def _window(s: Section, radius: BlastRadius) -> Window:
    w = Window(start=s.time("start"), end=s.time("end"), wfm_queue=s.str("wfm_queue", None),
               min_agents=s.number("min_agents", None, integer=True))
    if w.start and w.end and w.start >= w.end:
        raise s.error("end", "the window must end after it starts")
    if (w.wfm_queue is None) != (w.min_agents is None):
        raise s.error("min_agents", "wfm_queue and min_agents go together")
    if w.wfm_queue:
        _check_target(s, "wfm_queue", w.wfm_queue, radius, s.items["wfm_queue"].line, kind="queue")
    s.done()
    return w


def _last_step(method: Method) -> float:
    return max((st.at_s for st in method.steps), default=0.0)
