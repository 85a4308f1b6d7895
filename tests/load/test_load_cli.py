"""`ccharness load` end to end: Locust master + 2 worker processes against SIPp,
plain `locust -f locustfiles/sip_load.py`, and bad input. Run as subprocesses:
importing Locust here would monkey-patch the whole pytest process."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from sipp_peer import sipp_uas

ROOT = Path(__file__).resolve().parents[2]
CCHARNESS = [sys.executable, "-m", "harness.cli", "load"]

pytestmark = pytest.mark.sipp


def run(argv, timeout=120):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def tagged_call_ids(log: Path, tag: str) -> set[str]:
    """Call-IDs of the INVITEs SIPp received carrying our tag header."""
    ids = set()
    for msg in re.split(r"^-{20,}.*$", log.read_text(), flags=re.M):
        if re.search(r"^INVITE sip:", msg, re.M) and f"X-Chaos-Test: {tag}" in msg:
            ids.add(re.search(r"^Call-ID:\s*(\S+)", msg, re.M | re.I).group(1))
    return ids


@pytest.mark.slow
def test_master_and_two_workers_report_the_sum_of_both(sipp_bin, tmp_path):
    out = tmp_path / "run"
    with sipp_uas(sipp_bin, tmp_path) as (uri, log):
        r = run(CCHARNESS + ["--target", uri, "--concurrent", "8", "--hold", "0.5",
                             "--duration", "4", "--workers", "2", "--tag", "sum-test",
                             "--out", str(out)])
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    load = summary["load"]
    calls = [json.loads(x) for x in (out / "calls.jsonl").read_text().splitlines()]
    assert len(load["calls_by_worker"]) == 2                       # both workers placed calls
    assert sum(load["calls_by_worker"].values()) == load["calls_total"] == len(calls)
    assert load["locust"]["requests"] == load["calls_total"]       # Locust's own stats agree
    assert load["answer_events"] == load["calls_by_outcome"]["answered"]
    assert summary["calls_by_code"] == {"200": len(calls)} and summary["verdict"] == "held"
    assert {c["tag"] for c in calls} == {"sum-test"}
    assert len(tagged_call_ids(log, "sum-test")) == len(calls)      # each call on the wire, tagged
    assert "answered" in r.stdout and "setup time" in r.stdout     # the final table


@pytest.mark.slow
def test_plain_locust_runs_the_locustfile(sipp_bin, tmp_path):
    calls = tmp_path / "calls.jsonl"
    with sipp_uas(sipp_bin, tmp_path) as (uri, log):
        r = run([sys.executable, "-m", "locust", "-f", "locustfiles/sip_load.py", "--headless",
                 "-u", "4", "-r", "4", "-t", "3s", "--sip-target", uri, "--sip-hold", "0.5",
                 "--sip-tag", "plain", "--calls-out", str(calls), "SipCaller"])
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(x) for x in calls.read_text().splitlines()]
    assert recs and {x["outcome"] for x in recs} == {"answered"}
    assert "INVITE answered" in r.stdout + r.stderr
    assert len(tagged_call_ids(log, "plain")) == len(recs)


def no_leftovers(marker: str) -> list:
    return [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
            if marker in " ".join(p.info["cmdline"] or [])]


def assert_clean_failure(r, words):
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_malformed_uri_is_refused():
    assert_clean_failure(run(CCHARNESS + ["--target", "sip:a@@127.0.0.1"]), "malformed SIP target")


def test_non_loopback_target_is_refused():
    assert_clean_failure(run(CCHARNESS + ["--target", "sip:a@192.0.2.7:5060"]), "not on loopback")


def test_unreachable_target_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert_clean_failure(run(CCHARNESS + ["--target", f"sip:a@127.0.0.1:{port}"]), "unreachable")


def test_bad_hold_is_refused(sipp_bin, tmp_path):
    with sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        r = run(CCHARNESS + ["--target", uri, "--hold", "forever", "--out", str(tmp_path / "o")])
    assert_clean_failure(r, "bad hold distribution")


def test_master_port_in_use_fails_cleanly_and_leaves_no_process(sipp_bin, tmp_path):
    with socket.socket() as busy, sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(CCHARNESS + ["--target", uri, "--master-port", str(port), "--duration", "2",
                             "--out", str(tmp_path / "o")])
    assert_clean_failure(r, f"127.0.0.1:{port}")
    assert no_leftovers(f"--master-port {port}") == []


@pytest.mark.slow
def test_retry_moves_503s_to_the_next_trunk(sipp_bin, tmp_path):
    out = tmp_path / "run"
    with sipp_uas(sipp_bin, tmp_path, "503") as (down, _l1), \
            sipp_uas(sipp_bin, tmp_path) as (up, _l2):
        r = run(CCHARNESS + ["--target", f"{down},{up}", "--retry", "--concurrent", "2",
                             "--hold", "0.3", "--duration", "3", "--workers", "1",
                             "--out", str(out)])
    assert r.returncode == 0, r.stderr
    calls = [json.loads(x) for x in (out / "calls.jsonl").read_text().splitlines()]
    by_target = {t: {c["outcome"] for c in calls if c["target"] == t} for t in (down, up)}
    assert by_target == {down: {"503"}, up: {"answered"}}


@pytest.mark.slow
def test_max_calls_bounds_the_run(sipp_bin, tmp_path):
    out = tmp_path / "run"
    with sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        r = run(CCHARNESS + ["--target", uri, "--concurrent", "4", "--hold", "0.2",
                             "--duration", "4", "--workers", "2", "--max-calls", "10",
                             "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["load"]["calls_total"] == 10


def test_too_many_concurrent_calls_is_refused(sipp_bin, tmp_path):
    with sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        r = run(CCHARNESS + ["--target", uri, "--concurrent", "5000", "--out", str(tmp_path / "o")])
    assert_clean_failure(r, "more than this machine should run")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigterm_stops_the_run_writes_the_summary_and_reaps_everything(sipp_bin, tmp_path):
    out, port = tmp_path / "run", free_tcp_port()
    with sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        proc = subprocess.Popen(CCHARNESS + ["--target", uri, "--concurrent", "4", "--hold", "5",
                                             "--duration", "120", "--master-port", str(port),
                                             "--out", str(out)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdout.readline().startswith("load:")   # master and workers are up
            assert " active " in proc.stdout.readline()         # first progress line (5 s)
            family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(True)]
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "summary:" in stdout
    assert (out / "summary.json").exists()
    assert [p for p in family if psutil.pid_exists(p) and
            psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []


@pytest.mark.slow
def test_fast_refusals_are_paced_and_no_engine_dies(sipp_bin, tmp_path):
    """A UAS answering 488 within a millisecond: unpaced, each caller redialled at
    ~1,500 calls/s and PJSIP aborted the engines (`pj_ioqueue_register_sock2`). Paced,
    C callers for N seconds start at most about C * (N / min_interval + 1) calls."""
    out, users, seconds, interval = tmp_path / "run", 4, 4.0, 0.5
    with sipp_uas(sipp_bin, tmp_path, "488") as (uri, _log):
        r = run(CCHARNESS + ["--target", uri, "--concurrent", str(users), "--hold", "1",
                             "--duration", f"{seconds:g}", "--workers", "1",
                             "--min-interval", f"{interval:g}", "--out", str(out)])
    assert r.returncode == 1, r.stderr             # nothing answered: "broken", not a crash
    load = json.loads((out / "summary.json").read_text())["load"]
    assert load["calls_by_outcome"] == {"488": load["calls_total"]}
    assert users <= load["calls_total"] <= users * (seconds / interval + 1) + users
    worker_log = (out / "worker-0.log").read_text(errors="replace")
    assert "pj_ioqueue_register_sock2" not in worker_log
    assert "went away" not in worker_log and "exited mid-call" not in worker_log
    assert "INVITE error" not in json.dumps(load["locust"]["by_name"])   # no engine refusal
