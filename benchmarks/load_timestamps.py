"""Benchmark: how close the call records' timestamps are to the wire (tshark).

    .venv/bin/python -m benchmarks.load_timestamps [--calls 20]

Places CALLS calls one after another through an EnginePool to ``sipp -sn uas`` while
tshark captures loopback, then compares each record's invite_at / first_18x_at /
answered_at / bye_at with the capture time of the INVITE, 180, 200 (INVITE) and BYE.
Prints the largest and the median absolute difference per field (goal: 5 ms).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time

from benchmarks.load_common import machine_note, sipp_uas
from harness.sip.engine import CallSpec
from harness.sip.pool import EnginePool

FIELDS = ["frame.time_epoch", "sip.Method", "sip.Status-Code", "sip.CSeq.method", "sip.Call-ID"]


def capture(port: int):
    tshark = shutil.which("tshark")
    if not tshark:
        raise SystemExit("tshark is not installed")
    cmd = [tshark, "-i", "lo", "-f", f"udp port {port}", "-l", "-T", "fields",
           *[x for f in FIELDS for x in ("-e", f)], "-E", "separator=|"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 15
    while time.time() < deadline:            # tshark says when it is capturing
        line = proc.stderr.readline()
        if "Capturing on" in line:
            time.sleep(1.0)                  # the filter is live a moment after the banner
            return proc
    proc.kill()
    raise SystemExit("tshark did not start capturing")


def wire_calls(lines: list[str]) -> list[dict]:
    """Per SIP Call-ID, in order of first INVITE: the capture times of each step."""
    calls: dict[str, dict] = {}
    for ln in lines:
        t, method, status, cseq_method, cid = (ln.split("|") + [""] * 5)[:5]
        c = calls.setdefault(cid, {})
        key = {("INVITE", ""): "invite_at", ("BYE", ""): "bye_at"}.get((method, status))
        if not method and cseq_method == "INVITE":
            key = {"180": "first_18x_at", "200": "answered_at"}.get(status)
        if key and key not in c:
            c[key] = float(t)
    return sorted((c for c in calls.values() if "invite_at" in c), key=lambda c: c["invite_at"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20)
    a = ap.parse_args()
    print(machine_note())
    with sipp_uas() as (uri, _uas), EnginePool(1) as pool:
        cap = capture(int(uri.rsplit(":", 1)[1]))
        records = [pool.call(CallSpec(target=uri, tag="ts", hold=0.2)) for _ in range(a.calls)]
        time.sleep(2.0)
        cap.terminate()
        out, _ = cap.communicate(timeout=10)
    wire = wire_calls(out.splitlines())
    if len(wire) != len(records):
        raise SystemExit(f"captured {len(wire)} calls for {len(records)} records")
    for key in ("invite_at", "first_18x_at", "answered_at", "bye_at"):
        diffs = [abs(r[key] - w[key]) * 1000 for r, w in zip(records, wire) if r[key] and key in w]
        print(f"{key:<14} n={len(diffs):3d}  median {statistics.median(diffs):6.2f} ms  "
              f"max {max(diffs):6.2f} ms")


if __name__ == "__main__":
    main()
