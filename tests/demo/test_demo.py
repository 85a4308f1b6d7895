"""End to end: ``ccharness demo --fast`` as a user runs it (issue 6).

The first test runs the whole demo on its own twin, samples every socket of the demo's
process tree while it runs (all must be bound to 127.0.0.1), and checks the run
directory. The second runs the demo again, on the same default exporter port (so a
port or process left over by the first would fail it), against a twin started
beforehand, interrupts it during the fault the way a terminal's Ctrl-C does (SIGINT to
the foreground process group), and checks that every trunk is exactly as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

CCHARNESS = [sys.executable, "-m", "harness.cli"]
RUN_FILES = ("summary.json", "journal.jsonl", "report.html", "junit.xml", "metrics.prom", "calls.jsonl")
pytestmark = pytest.mark.slow


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def sample_sockets(procs: list[psutil.Process], seen: dict) -> None:
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.laddr:
                    seen.setdefault((c.laddr.ip, c.type), set()).add(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def alive(pids: set[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_fast_demo_runs_end_to_end_on_loopback_only(tmp_path):
    run_dir = tmp_path / "run"
    out = open(tmp_path / "stdout.txt", "w")
    err = open(tmp_path / "stderr.txt", "w")
    proc = subprocess.Popen(CCHARNESS + ["demo", "--fast", "--out", str(run_dir), "--runs-dir", str(tmp_path)],
                            cwd=tmp_path, stdout=out, stderr=err)
    root = psutil.Process(proc.pid)
    seen: dict = {}
    pids: set[int] = set()
    deadline = time.monotonic() + 170
    while proc.poll() is None and time.monotonic() < deadline:
        procs = tree(root)
        pids.update(p.pid for p in procs)
        sample_sockets(procs, seen)
        time.sleep(0.5)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        pytest.fail("the fast demo did not finish within 170 s")
    out.close(), err.close()
    stdout = (tmp_path / "stdout.txt").read_text()
    assert proc.returncode == 0, stdout[-2000:] + (tmp_path / "stderr.txt").read_text()[-3000:]

    # every socket any process of the demo opened was bound to loopback
    assert seen, "no socket was sampled"
    assert {ip for ip, _ in seen} == {"127.0.0.1"}, seen
    assert len(pids) >= 4, "expected the demo, its twin, Locust workers and engines"
    time.sleep(1)
    assert alive(pids) == [], "processes left behind"

    for name in RUN_FILES:
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "held"
    assert summary["mttr"]["mttr_s"] is not None
    assert abs(summary["ground_truth"]["difference_s"]) <= 0.25
    codes = summary["calls_by_code"]
    assert codes.get("200", 0) > 0 and codes.get("503", 0) > 0, codes
    # the live progress and the closing table reached the user
    assert "phase=holding" in stdout and "ccharness demo: summary" in stdout
    assert "MTTR (first answer via failover)" in stdout


def trunks(endpoints: dict) -> dict:
    token = httpx.post(endpoints["token_url"], data={
        "grant_type": "client_credentials", "client_id": endpoints["client_id"],
        "client_secret": endpoints["client_secret"]}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    out = {}
    for t in endpoints["trunks"]:
        path = ("/api/v2/telephony/phone/trunks/" if t["platform"] == "genesys"
                else "/api/v2.0/telephony/trunks/") + t["id"]
        body = httpx.get(endpoints["rest_base_url"] + path, headers=headers).json()
        body.pop("version", None)   # a restore is a new version of the same configuration
        out[t["id"]] = body
    return out


def test_ctrl_c_during_the_fault_rolls_back_and_leaves_a_complete_run_dir(tmp_path):
    ep_file = tmp_path / "endpoints.json"
    twin = subprocess.Popen(CCHARNESS + ["emulator", "--endpoints-file", str(ep_file), "--time-scale", "0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if ep_file.exists():
                break
            time.sleep(0.1)
        endpoints = json.loads(ep_file.read_text())
        before = trunks(endpoints)
        run_dir = tmp_path / "run"
        out_path = tmp_path / "stdout.txt"
        with open(out_path, "w") as out, open(tmp_path / "stderr.txt", "w") as err:
            # its own process group, like a shell's foreground job: SIGINT goes to all of it
            demo = subprocess.Popen(CCHARNESS + ["demo", "--endpoints-file", str(ep_file), "--out", str(run_dir),
                                                 "--runs-dir", str(tmp_path)],
                                    cwd=tmp_path, stdout=out, stderr=err, start_new_session=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and demo.poll() is None:
                if "phase=converging" in out_path.read_text():
                    break
                time.sleep(0.2)
            assert demo.poll() is None, "the demo ended before the fault phase"
            time.sleep(1.0)
            os.killpg(demo.pid, signal.SIGINT)
            demo.wait(timeout=120)
        assert demo.returncode == 3, (tmp_path / "stderr.txt").read_text()[-3000:]
        for name in RUN_FILES:
            assert (run_dir / name).exists(), name
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["verdict"] == "aborted"
        assert summary.get("remaining_changes") == []
        assert trunks(endpoints) == before
    finally:
        twin.send_signal(signal.SIGTERM)
        twin.wait(timeout=20)
