"""Shared pieces of the load benchmarks: a SIPp UAS peer and process-tree figures."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time

import psutil


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def sipp_uas():
    """``sipp -sn uas`` on a free loopback port; yields (uri, Popen)."""
    sipp = shutil.which("sipp")
    if not sipp:
        raise SystemExit("sipp is not installed (apt-get install sip-tester)")
    port = free_udp_port()
    proc = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                             "-max_socket", "10000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield f"sip:svc@127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait()


def tree(exclude=()) -> list[psutil.Process]:
    """This process and its descendants, without the peers given by pid."""
    root = psutil.Process()
    skip = set(exclude)
    return [p for p in (root, *root.children(recursive=True)) if p.pid not in skip]


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def pss_bytes(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total


def delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two samples by processes alive at both."""
    return sum(after[p] - before[p] for p in after if p in before)


def machine_note() -> str:
    load1, _, _ = psutil.getloadavg()
    return (f"machine: {psutil.cpu_count()} cores, load average {load1:.2f} at start "
            "(shared with other work: figures are indicative)")
