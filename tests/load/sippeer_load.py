"""A SIPp UAS as a real peer for tests: start on a free loopback port, always kill."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import socket

SCENARIOS = Path(__file__).resolve().parents[2] / "sip"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        time.sleep(0.3)   # SIPp binds within ~50 ms; no readiness signal exists
        assert proc.poll() is None, f"sipp exited early: {cmd}"
        yield f"sip:svc@127.0.0.1:{port}", log
    finally:
        proc.kill()
        proc.wait(timeout=5)
