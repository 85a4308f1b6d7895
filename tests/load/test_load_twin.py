"""The load side against the platform twin (`ccharness emulator`): answered calls
carry the effective trunk, the license ceiling gives 403, and the API client reads
trunks and queue stats with a real token."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.load.api import ApiClient
from harness.sip.engine import CallSpec
from harness.sip.pool import EnginePool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    eps = tmp_path_factory.mktemp("twin") / "endpoints.json"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "emulator", "--endpoints-file",
                             str(eps), "--time-scale", "0.05"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not eps.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "twin did not write its endpoints file"
            time.sleep(0.1)
        yield json.loads(eps.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def pool():
    with EnginePool(1) as p:
        yield p


def admin(twin) -> httpx.Client:
    tok = httpx.post(twin["token_url"], data={
        "grant_type": "client_credentials", "client_id": twin["client_id"],
        "client_secret": twin["client_secret"]}).json()["access_token"]
    return httpx.Client(base_url=twin["rest_base_url"], headers={"Authorization": f"Bearer {tok}"})


def test_answered_call_names_its_trunk(twin, pool):
    trunk = twin["trunks"][0]
    rec = pool.call(CallSpec(target=trunk["sip_uri"], tag="twin-t", hold=0.2,
                             entry_trunk=trunk["id"]))
    assert (rec["outcome"], rec["code"]) == ("answered", 200)
    assert rec["entry_trunk"] == trunk["id"] and rec["trunk"] == trunk["id"]
    assert rec["first_18x_at"] is not None and rec["bye_at"] is not None


def test_license_ceiling_is_a_403(twin, pool):
    trunk = twin["trunks"][0]
    with admin(twin) as c:
        tier = "CX3" if trunk["platform"] == "genesys" else "Platinum"
        assert c.put("/twin/v1/faults", json={"licenseCeiling": {tier: 0}}).status_code == 200
        try:
            rec = pool.call(CallSpec(target=trunk["sip_uri"], tag="twin-t", hold=0.2))
        finally:
            c.put("/twin/v1/faults", json={"licenseCeiling": {}})
    assert (rec["outcome"], rec["code"]) == ("403", 403)
    assert "License" in rec["reason"]


def test_api_client_reads_trunk_and_queue(twin):
    fired = []

    class Events:
        class request:  # noqa: N801 - mimics locust's events.request
            fire = staticmethod(lambda **kw: fired.append(kw))

    trunk = next(t for t in twin["trunks"] if t["platform"] == "genesys")
    api = ApiClient(twin["rest_base_url"], twin["token_url"], twin["client_id"],
                    twin["client_secret"], "genesys", trunk["id"], trunk["queue_id"],
                    "X-Chaos-Test", "twin-api", Events)
    try:
        assert api.read_trunk().json()["id"] == trunk["id"]
        assert "waitTime" in api.read_queue().json()
    finally:
        api.close()
    assert [f["exception"] for f in fired] == [None, None]
    assert fired[0]["name"] == "/api/v2/telephony/phone/trunks/{id}"


def read_events(twin, seconds: float, out: list) -> None:
    """Collect the twin's SSE events for ``seconds`` (run in a thread)."""
    with admin(twin) as c:
        try:
            with c.stream("GET", "/api/v2/events/stream", timeout=seconds) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        out.append(json.loads(line[5:]))
        except httpx.ReadTimeout:
            pass


def test_tag_and_sip_info_dtmf_reach_the_twin(twin, pool):
    import threading

    events: list = []
    reader = threading.Thread(target=read_events, args=(twin, 3.0, events))
    reader.start()
    time.sleep(0.5)
    trunk = twin["trunks"][0]
    rec = pool.call(CallSpec(target=trunk["sip_uri"], tag="twin-dtmf", hold=1.0, dtmf="5",
                             dtmf_method="info"))
    reader.join()
    assert rec["outcome"] == "answered"
    mine = [e for e in events if e.get("tag") == "twin-dtmf"]
    assert mine, f"no event carried our tag: {events[:5]}"
    call_ids = {e["callId"] for e in mine}
    assert any(e["type"] == "dtmf" and e["digit"] == "5" and e["callId"] in call_ids
               for e in events)


@pytest.mark.slow
def test_locust_runs_sip_and_api_users_against_the_twin(twin, tmp_path):
    import os

    trunk = next(t for t in twin["trunks"] if t["platform"] == "genesys")
    calls = tmp_path / "calls.jsonl"
    env = {**os.environ, "CCHARNESS_API_CLIENT_SECRET": twin["client_secret"]}
    r = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "locustfiles/sip_load.py", "--headless",
         "-u", "4", "-r", "4", "-t", "4s", "--sip-target", trunk["sip_uri"], "--sip-hold", "0.5",
         "--sip-tag", "twin-locust", "--calls-out", str(calls),
         "--api-base-url", twin["rest_base_url"], "--api-client-id", twin["client_id"],
         "--api-trunk-id", trunk["id"], "--api-queue-id", trunk["queue_id"],
         "SipCaller", "ApiUser"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert re.search(r"GET\s+/api/v2/telephony/phone/trunks/\{id\}\s+\d+\s+0\(", out), out[-3000:]
    assert re.search(r"SIP\s+INVITE answered\s+\d+", out)
    assert twin["client_secret"] not in out          # credentials never in logs
    recs = [json.loads(x) for x in calls.read_text().splitlines()]
    assert recs and all(x["trunk"] == trunk["id"] for x in recs if x["outcome"] == "answered")
