"""`ccharness emulator` as a user runs it: endpoints file, clean exit, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from twin_support import FIXTURES, emulator


def test_endpoints_file_matches_stdout_and_sigterm_exits_0(tmp_path):
    with emulator(tmp_path, None, 1.0) as (endpoints, proc):
        assert endpoints["rest_base_url"].startswith("http://127.0.0.1:")
        names = {t["name"] for t in endpoints["trunks"]}
        assert {"Primary_Carrier_Trunk", "Chaos_Test_Trunk", "Primary_SIP_Trunk"} <= names
        assert all(t["sip_uri"].startswith("sip:chaos@127.0.0.1:") for t in endpoints["trunks"])
        assert endpoints["client_id"] == "ccharness-demo" and endpoints["client_secret"]
        assert endpoints["time_scale"] == 1.0 and endpoints["pid"] == proc.pid
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert json.loads(out[: out.rindex("}") + 1]) == endpoints
        assert (tmp_path / "endpoints.json").stat().st_mode & 0o077 == 0


def _run(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", "emulator", *args],
                          capture_output=True, text=True, timeout=30)


def test_bad_topology_exits_2_naming_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (FIXTURES / "e2e.yaml").read_text().replace("healthScore: 95, codecs", "healthScore: 195, codecs", 1)
    bad.write_text(text)
    proc = _run("--topology", str(bad))
    assert proc.returncode == 2
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "healthScore: 195" in l)
    assert f"{bad}:{line}: trunks[4].healthScore: " in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_options_exit_2(tmp_path):
    assert _run("--time-scale", "0").returncode == 2
    assert _run("--topology", str(tmp_path / "missing.yaml")).returncode == 2


def test_wildcard_host_needs_an_advertised_name():
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "emulator", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "--advertise-host" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_advertised_host_is_what_the_endpoints_and_sdp_name():
    import gevent  # noqa: F401  (the twin runs on the gevent hub)

    from harness.twin.app import Twin
    from harness.twin.topology import load_topology

    twin = Twin(load_topology(None), host="127.0.0.1", advertise_host="127.0.0.9")
    endpoints = twin.start()
    try:
        assert endpoints["rest_base_url"].startswith("http://127.0.0.9:")
        assert all("@127.0.0.9:" in t["sip_uri"] for t in endpoints["trunks"])
        assert twin.sip.core.local_host == "127.0.0.9"
    finally:
        twin.stop()
