"""A SIPp UAS as a real peer for tests: start on a free loopback port, always kill."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import psutil

SCENARIOS = Path(__file__).resolve().parents[1] / "sip"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_bound(proc: subprocess.Popen, port: int, timeout: float = 10.0) -> None:
    """Until SIPp's UDP socket is bound (it gives no other readiness signal)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"sipp exited early (status {proc.returncode})"
        try:
            bound = {c.laddr.port for c in psutil.Process(proc.pid).net_connections("udp")}
        except psutil.NoSuchProcess:
            bound = set()
        if port in bound:
            return
        time.sleep(0.05)
    raise AssertionError(f"sipp did not bind UDP {port} within {timeout} s")


@contextlib.contextmanager
def sipp_uas(sipp_bin: str, tmp_path: Path, scenario: str | None = None):
    """Yield (uri, message_log_path). ``scenario`` names sip/load_uas_<x>.xml; None: -sn uas."""
    port = free_port()
    log = tmp_path / f"sipp-{port}-messages.log"
    src = ["-sn", "uas"] if scenario is None else ["-sf", str(SCENARIOS / f"load_uas_{scenario}.xml")]
    cmd = [sipp_bin, *src, "-i", "127.0.0.1", "-p", str(port), "-nostdin",
           "-trace_msg", "-message_file", str(log), "-trace_err",
           "-error_file", str(tmp_path / f"sipp-{port}-errors.log")]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_bound(proc, port)
        yield f"sip:svc@127.0.0.1:{port}", log
    finally:
        proc.kill()
        proc.wait(timeout=5)
