"""The controller's link to the load side (harness/control/loadlink.py): an experiment's
`load.api_users` and `load.rate_per_second` reach the LoadSession it builds.

Unit level with a recording stand-in for LoadSession (Locust must never be imported
into the pytest process: it monkey-patches gevent); end to end, `open_load` runs in a
subprocess against the real twin and the API users' requests show in Locust's stats.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from control_twinutil import ROOT, experiment, running_twin
from harness.control import loadlink
from harness.experiment.loader import load_experiment
from harness.platforms.credentials import connection_for

ENDPOINTS = {
    "rest_base_url": "http://127.0.0.1:9", "token_url": "http://127.0.0.1:9/oauth/token",
    "events_url": "http://127.0.0.1:9/api/v2/events/stream", "client_id": "ccharness-demo",
    "client_secret": "s3cret", "time_scale": 1.0, "pid": 1, "media_port": 40000,
    "trunks": [{"id": "T1", "name": "Primary_Carrier_Trunk", "platform": "genesys",
                "sip_uri": "sip:chaos@127.0.0.1:5070", "queue_id": "Q1"}],
    "queues": [{"id": "Q1", "name": "Chaos_Queues", "platform": "genesys"}],
}


class RecordingSession:
    """Stands in for LoadSession: keeps its arguments, starts nothing."""

    def __init__(self, targets, **kw):
        self.kw = {"targets": targets, **kw}


def built_session(tmp_path, monkeypatch, **load):
    eps = tmp_path / "endpoints.json"
    eps.write_text(json.dumps(ENDPOINTS))

    def edit(d):
        d["platform"]["endpoints_file"] = str(eps)
        d["load"].update(load)
    exp = load_experiment(experiment(tmp_path, "demo-genesys", edit))
    conn = connection_for(exp.platform, str(eps))
    plan = SimpleNamespace(entry_trunk_id="T1", queue_id=None)
    monkeypatch.setattr(loadlink, "session_class", lambda: RecordingSession)
    return loadlink.open_load(exp, plan, conn, tmp_path / "run").session.kw


def test_api_users_reach_the_session_with_the_platform_and_endpoints(tmp_path, monkeypatch):
    kw = built_session(tmp_path, monkeypatch, api_users=2)
    assert kw["api"] == {"base_url": "http://127.0.0.1:9", "token_url": "http://127.0.0.1:9/oauth/token",
                         "client_id": "ccharness-demo", "client_secret": "s3cret",
                         "platform": "genesys", "trunk_id": "T1", "queue_id": "Q1", "users": 2}
    assert kw["targets"] == ["sip:chaos@127.0.0.1:5070"] and kw["concurrent"] == 20


def test_no_api_users_means_no_api_section(tmp_path, monkeypatch):
    assert built_session(tmp_path, monkeypatch, api_users=0)["api"] is None


def test_rate_per_second_paces_the_callers(tmp_path, monkeypatch):
    # 20 callers sharing 5 calls/s: each starts one at most every 4 s.
    assert built_session(tmp_path, monkeypatch, rate_per_second=5)["min_interval"] == 4.0
    assert built_session(tmp_path, monkeypatch)["min_interval"] == 1.0      # the default pacing
    assert built_session(tmp_path, monkeypatch, rate_per_second=10_000)["min_interval"] == 0.05


RUN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from types import SimpleNamespace
    from harness.control.loadlink import open_load, session_class
    session_class()                      # Locust first (gevent monkey-patching)
    from harness.control.targets import Resolver
    from harness.experiment.loader import load_experiment
    from harness.platforms.credentials import connection_for
    exp_path, eps, out = sys.argv[1:4]
    exp = load_experiment(exp_path)
    conn = connection_for(exp.platform, eps)
    plan = SimpleNamespace(entry_trunk_id=Resolver.from_endpoints(eps).trunk(exp.load.target),
                           queue_id=None)
    link = open_load(exp, plan, conn, Path(out), workers=1)
    try:
        link.start()
        link.session.wait(4.0)
    finally:
        link.stop()
    stats = link.session.env.stats
    print(json.dumps({f"{k[1]} {k[0]}": [v.num_requests, v.num_failures]
                      for k, v in stats.entries.items()}))
""")


@pytest.mark.slow
def test_api_users_poll_the_twin_during_a_real_run(tmp_path):
    def edit(d):
        d["load"].update(api_users=2, concurrent=2, hold_seconds=0.5)
    with running_twin(tmp_path) as ep:
        exp = experiment(tmp_path, "demo-genesys", edit)
        r = subprocess.run([sys.executable, "-c", RUN, str(exp), ep["_path"], str(tmp_path / "run")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    by_name = json.loads(r.stdout.strip().splitlines()[-1])
    trunk = by_name.get("GET /api/v2/telephony/phone/trunks/{id}", [0, 0])
    queue = by_name.get("GET /api/v2/analytics/queues/{id}/realtime", [0, 0])
    assert trunk[0] >= 2 and queue[0] >= 2, by_name    # both API users polled, more than once
    assert trunk[1] == 0 and queue[1] == 0, by_name    # with a real token, unthrottled
    assert any(name.startswith("SIP INVITE") for name in by_name), by_name   # calls ran alongside
    assert "s3cret" not in r.stdout + r.stderr and ep["client_secret"] not in r.stdout + r.stderr
