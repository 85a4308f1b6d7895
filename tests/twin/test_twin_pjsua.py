"""PJSUA2 calls (the harness's own SIP stack) against `ccharness emulator`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from twin_support import FIXTURES, Api, emulator, wait_until

PROBE = Path(__file__).parent / "pjsua_probe.py"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    pytest.importorskip("pjsua2")
    with emulator(tmp_path_factory.mktemp("pjsua"), FIXTURES / "e2e.yaml", 0.02) as (endpoints, _):
        yield endpoints


def _probe(uris: list[str]) -> list[dict]:
    proc = subprocess.run([sys.executable, str(PROBE), *uris, "--hold", "0.2"],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pjsua2_calls_answered_488_and_403(live):
    api = Api(live)
    api.request("POST", "/twin/v1/reset")
    throttled = api.trunk_id("Throttled")
    api.request("PATCH", f"/api/v2/telephony/phone/trunks/{throttled}", json={"codecs": ["G729"]})
    assert wait_until(lambda: api.truth()["changes"][0]["appliedAt"], 10)
    api.request("PUT", "/twin/v1/faults", json={"licenseCeiling": {"C": 0}})
    uri = {t["name"]: t["sip_uri"] for t in live["trunks"]}
    healthy, mismatch, licensed = _probe([uri["Healthy"], uri["Throttled"], uri["C1"]])
    assert healthy["code"] == 200 and healthy["confirmed"] and healthy["trunk"] == api.trunk_id("Healthy")
    assert mismatch["code"] == 488 and mismatch["trunk"] == throttled
    assert licensed["code"] == 403
    api.close()
