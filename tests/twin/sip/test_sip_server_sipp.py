"""A live SipServer driven by SIPp (a real peer nobody here wrote), over 127.0.0.1."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import gevent
import pytest


from twinsip_support import RecordingRouter, ServerThread

pytestmark = pytest.mark.sipp
SCENARIOS = Path(__file__).resolve().parents[3] / "sip"


def by_service(leg):
    """Tests-only routing on the Request-URI user: answer, ring, drop, reject503, delay<ms>."""
    user = leg.info.request_uri.split(":", 1)[1].split("@", 1)[0]
    trunk = {"X-Twin-Trunk": leg.info.trunk_id, "X-Twin-Queue": "q-test"}
    if user == "drop":
        leg.drop()
    elif user == "ring":
        leg.ringing()
    elif user == "reject503":
        leg.reject(503, "Service Unavailable", trunk)
    elif user.startswith("delay"):
        leg.ringing()
        gevent.spawn_later(int(user[5:]) / 1000, leg.answer, "PCMU", trunk)
    else:
        leg.ringing()
        leg.answer(leg.info.offered_codecs[0] if leg.info.offered_codecs else "PCMU", trunk)


def run_sipp(sipp_bin, tmp_path, port, *args, calls=5, timeout=30) -> tuple[int, dict, str]:
    """Run SIPp in the foreground (bounded by -m and -timeout); return (exit code, final
    cumulative statistics, stderr + SIPp's error log). Killed in ``finally`` whatever happens."""
    stats_file, errors = tmp_path / "stats.csv", tmp_path / "errors.log"
    cmd = [sipp_bin, f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", "0", "-m", str(calls),
           "-timeout", f"{timeout}s", "-timeout_error", "-nostdin", "-trace_stat", "-stf",
           str(stats_file), "-trace_err", "-error_file", str(errors), *args]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        _, err = proc.communicate(timeout=timeout + 15)
    finally:
        proc.kill()
        proc.wait()
    if errors.exists():  # SIPp's own account of failed calls, for the assertion message
        err += "\n" + errors.read_text(errors="replace")[-3000:]
    return proc.returncode, final_stats(stats_file), err


def final_stats(path: Path) -> dict:
    if not path.exists():
        return {}
    rows = list(csv.reader(path.open(), delimiter=";"))
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


@pytest.fixture
def twin():
    router = RecordingRouter(behaviour=by_service)
    with ServerThread(router) as server:
        yield server


def test_sipp_uac_calls_are_answered(sipp_bin, tmp_path, twin):
    code, stats, err = run_sipp(sipp_bin, tmp_path, twin.ports["t1"], "-sn", "uac", "-d", "200",
                                "-r", "20", calls=10)
    assert code == 0, (err, stats, twin.stats)
    assert stats["SuccessfulCall(C)"] == "10" and stats["FailedCall(C)"] == "0"
    # the router's events, not the raw BYE counter: under CPU pressure SIPp may retransmit
    assert twin.wait_for(lambda: twin.router.kinds().count("bye") == 10), twin.stats
    kinds = twin.router.kinds()
    assert kinds.count("invite") == kinds.count("confirmed") == kinds.count("bye") == 10
    assert twin.stats["garbage"] == 0


def test_sipp_uac_answer_after_delay(sipp_bin, tmp_path, twin):
    code, stats, err = run_sipp(sipp_bin, tmp_path, twin.ports["t1"], "-sn", "uac", "-s",
                                "delay700", "-d", "100", "-r", "10", calls=4)
    assert code == 0, err
    assert stats["SuccessfulCall(C)"] == "4"
    assert twin.router.kinds().count("invite") == 4  # any INVITE retransmission was absorbed


def test_sipp_cancel_gets_200_and_487(sipp_bin, tmp_path, twin):
    code, stats, err = run_sipp(sipp_bin, tmp_path, twin.ports["t1"], "-sf",
                                str(SCENARIOS / "uac_cancel.xml"), "-s", "ring", calls=3)
    assert code == 0, err
    assert stats["SuccessfulCall(C)"] == "3"
    assert twin.wait_for(lambda: twin.router.kinds().count("cancel") == 3)


def test_sipp_rejected_call_gets_503_with_trunk_header(sipp_bin, tmp_path, twin):
    code, stats, err = run_sipp(sipp_bin, tmp_path, twin.ports["t1"], "-sf",
                                str(SCENARIOS / "uac_reject_503.xml"), "-s", "reject503", calls=3)
    assert code == 0, err
    assert stats["SuccessfulCall(C)"] == "3"


def test_sipp_dropped_invite_sees_retransmissions_and_no_response(sipp_bin, tmp_path, twin):
    code, stats, err = run_sipp(sipp_bin, tmp_path, twin.ports["t1"], "-sf",
                                str(SCENARIOS / "uac_drop.xml"), "-s", "drop", "-r", "10",
                                calls=2)
    assert code == 0, err  # any response at all would have failed the call
    assert int(stats["Retransmissions(C)"]) >= 4
    assert twin.stats["retransmissions_absorbed"] >= 4
    assert twin.stats["datagrams_sent"] == 0


@pytest.mark.parametrize("status", [(200, "OK"), (503, "Service Unavailable")])
def test_sipp_options_answered_with_router_status(sipp_bin, tmp_path, status):
    router = RecordingRouter(behaviour=by_service, options=status)
    with ServerThread(router) as server:
        code, stats, err = run_sipp(sipp_bin, tmp_path, server.ports["t1"], "-sf",
                                    str(SCENARIOS / f"uac_options_{status[0]}.xml"), calls=2)
    assert code == 0, err
    assert router.events == [("options", "t1"), ("options", "t1")]
