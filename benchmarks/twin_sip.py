"""Benchmark: the twin's SIP server under SIPp load, against SIPp's own UAS.

    .venv/bin/python -m benchmarks.twin_sip [--rate 300] [--limit 2000] [--hold-ms 6700]
                                            [--calls 7500] [--no-model]

Load: ``sipp -sn uac -r RATE -l LIMIT -d HOLD -m CALLS`` on 127.0.0.1. Targets, each in
its own process, measured one after the other in the same run:

1. the twin SIP server (``SipServer``) with an always-answer router (180 + 200 at once);
2. the full twin (``harness.twin.app.Twin``: routing model + SIP + REST) on the default
   topology with capacity, licences and agents raised so the load is carried, when
   ``harness.twin.model`` is importable (skipped with ``--no-model``);
3. ``sipp -sn uas``.

For each: call attempts/s while calls were being created, peak concurrent dialogs
(SIPp's CurrentCall), failed-call %, SIPp retransmissions, target CPU % (psutil on the
one process, so 100 % = one core) and peak RSS. Goal (issue 2): >= 300 attempts/s and
2,000 concurrent dialogs on one core with < 1 % failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


# --- the target process ---------------------------------------------------------------

class AnswerRouter:
    """Always answers: 180 then 200 with the first offered codec."""

    def on_invite(self, leg):
        leg.ringing()
        codecs = leg.info.offered_codecs
        leg.answer(codecs[0] if codecs else "PCMU", {"X-Twin-Trunk": "bench", "X-Twin-Queue": "q"})

    def on_confirmed(self, leg): pass
    def on_cancel(self, leg): pass
    def on_bye(self, leg): pass
    def on_failed(self, leg, reason): pass

    def options_status(self, trunk_id):
        return 200, "OK"


def bench_topology():
    """The default topology with room for the benchmark load (2,000+ calls)."""
    from harness.twin.topology import parse_topology

    text = (ROOT / "harness/twin/default_topology.yaml").read_text()
    for old, new in (("maxConcurrentCalls: 100", "maxConcurrentCalls: 10000"),
                     ("CX3: 200", "CX3: 10000"), ("Platinum: 200", "Platinum: 10000"),
                     ("agents: 20", "agents: 5000"), ("agents: 10", "agents: 5000"),
                     ("ringTime: 2", "ringTime: 0.05"), ("handleTime: 60", "handleTime: 600")):
        text = text.replace(old, new)
    return parse_topology(text, "<benchmark topology>")


def serve(kind: str) -> None:
    """Run a target on this process's hub; print {"port": n} then, on SIGTERM, stats."""
    import gevent
    from gevent.event import Event

    done = Event()
    gevent.signal_handler(signal.SIGTERM, done.set)
    if kind == "model":
        from harness.twin.app import Twin

        twin = Twin(bench_topology())
        endpoints = twin.start()
        trunk = next(t for t in endpoints["trunks"] if t["name"] == "Primary_Carrier_Trunk")
        port, server, stop = int(trunk["sip_uri"].rsplit(":", 1)[1]), twin.sip, twin.stop
    else:
        from harness.twin.clock import GeventScheduler
        from harness.twin.sip.server import SipServer

        server = SipServer(AnswerRouter(), GeventScheduler())
        port = server.add_listener("bench")
        server.start()
        stop = server.stop
    print(json.dumps({"port": port}), flush=True)
    done.wait()
    stats = dict(server.stats)
    stop()
    print(json.dumps({"stats": stats}), flush=True)


# --- measuring ------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Peak RSS of a process, sampled every 0.2 s."""

    def __init__(self, proc: psutil.Process):
        super().__init__(daemon=True)
        self.proc, self.peak_rss, self.running = proc, 0, True

    def run(self):
        while self.running:
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)


def run_load(sipp: str, port: int, target: psutil.Process, args, workdir: Path) -> dict:
    stats_file = workdir / f"uac_{port}.csv"
    timeout = int(args.calls / args.rate + args.hold_ms / 1000 + 60)
    cmd = [sipp, "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", "0",
           "-r", str(args.rate), "-l", str(args.limit), "-d", str(args.hold_ms),
           "-m", str(args.calls), "-timeout", f"{timeout}s", "-timeout_error", "-nostdin",
           "-trace_stat", "-stf", str(stats_file), "-fd", "1"]
    sampler = Sampler(target)
    sampler.start()
    cpu0, wall0 = target.cpu_times(), time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=timeout + 30)
    finally:
        proc.kill()
        proc.wait()
    cpu1, wall = target.cpu_times(), time.monotonic() - wall0
    sampler.running = False
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {"sipp_exit": proc.returncode, **summarize(stats_file, args.calls),
            "cpu_percent": 100.0 * cpu / wall, "cpu_seconds": cpu,
            "rss_mb": sampler.peak_rss / 1e6, "wall_s": wall}


def summarize(path: Path, calls: int) -> dict:
    rows = list(csv.DictReader(path.open(), delimiter=";")) if path.exists() else []
    if not rows:
        return {"error": "SIPp wrote no statistics"}

    def epoch(row, key):
        return float(row[key].split("\t")[-1])

    start = epoch(rows[0], "StartTime")
    created = [(epoch(r, "CurrentTime") - start, int(r["TotalCallCreated"])) for r in rows]
    before_end = [(t, c) for t, c in created if c < calls and t > 0] or created[-1:]
    t, c = before_end[-1]
    last = rows[-1]
    total = int(last["TotalCallCreated"])
    failed = int(last["FailedCall(C)"])
    return {"attempts_per_s": c / t if t else 0.0, "created": total,
            "successful": int(last["SuccessfulCall(C)"]), "failed": failed,
            "failed_percent": 100.0 * failed / total if total else 100.0,
            "peak_concurrent": max(int(r["CurrentCall"]) for r in rows),
            "retransmissions": int(last["Retransmissions(C)"])}


def measure_python(kind: str, sipp: str, args, workdir: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.twin_sip", "--serve", kind]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            return {"error": proc.stderr.read()[-800:]}
        port = json.loads(line)["port"]
        result = run_load(sipp, port, psutil.Process(proc.pid), args, workdir)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        twin = json.loads(out.strip().splitlines()[-1])["stats"] if out.strip() else {}
        result["twin_peak_dialogs"] = twin.get("peak_dialogs")
        result["twin_stats"] = {k: twin.get(k) for k in (
            "invites", "retransmissions_absorbed", "retransmissions_sent", "garbage",
            "internal_errors", "send_errors")}
        return result
    finally:
        proc.kill()
        proc.wait()


def measure_sipp_uas(sipp: str, args, workdir: Path) -> dict:
    from socket import AF_INET, SOCK_DGRAM, socket

    with socket(AF_INET, SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                             "-timeout", "600s"], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        return run_load(sipp, port, psutil.Process(proc.pid), args, workdir)
    finally:
        proc.kill()
        proc.wait()


# --- the hot path without sockets ------------------------------------------------------

def hot_path_figures(rounds: int = 3000) -> dict:
    """Microseconds per call: parse + build of a call's 7 messages, and a whole call
    (INVITE, ACK, BYE) through UasCore on a fake clock."""
    from harness.twin.clock import FakeScheduler
    from harness.twin.sip.message import build_request, build_response, parse
    from harness.twin.sip.uas import UasCore

    invite = (ROOT / "tests/twin/sip/fixtures/sipp_invite.sip").read_bytes()
    req = parse(invite)
    ok = build_response(req, 200, "OK", to_tag="t", contact="sip:twin@127.0.0.1:5070",
                        body=b"v=0\r\n" * 8)
    ack = build_request("ACK", "sip:a@127.0.0.1", [("Via", req.get("via")), ("From", req.get("from")),
                        ("To", req.get("to") + ";tag=t"), ("Call-ID", "x"), ("CSeq", "1 ACK")])
    bye = ack.replace(b"ACK", b"BYE").replace(b"1 BYE", b"2 BYE")
    start = time.perf_counter()
    for _ in range(rounds):
        m = parse(invite)
        trying = build_response(m, 100, "Trying")
        ringing = build_response(m, 180, "Ringing", to_tag="t", contact="sip:twin@127.0.0.1:5070")
        answer = build_response(m, 200, "OK", to_tag="t", contact="sip:twin@127.0.0.1:5070",
                                body=b"v=0\r\n" * 8)
        for data in (trying, ringing, answer, ack, bye):
            parse(data)
        parse(build_response(parse(bye), 200, "OK"))
    per_call_messages = (time.perf_counter() - start) / rounds * 1e6

    sent = []
    core = UasCore(AnswerRouter(), FakeScheduler(), lambda d, a, t: sent.append(d))
    addr = ("127.0.0.1", 5061)
    calls = [(invite.replace(b"1-12345@127.0.0.1", f"c{n}".encode()), n) for n in range(rounds)]
    start = time.perf_counter()
    for data, n in calls:
        core.datagram_received(data, addr, "t1")
        tag = core.legs[(f"c{n}", "12345SIPpTag001")].to_tag
        core.datagram_received(ack.replace(b"Call-ID: x", f"Call-ID: c{n}".encode())
                               .replace(b";tag=t", f";tag={tag}".encode()), addr, "t1")
        core.datagram_received(bye.replace(b"Call-ID: x", f"Call-ID: c{n}".encode())
                               .replace(b";tag=t", f";tag={tag}".encode()), addr, "t1")
    per_call_core = (time.perf_counter() - start) / rounds * 1e6
    assert core.stats["byes"] == rounds and core.stats["no_dialog"] == 0
    return {"messages_us": per_call_messages, "core_us": per_call_core}


# --- reporting ------------------------------------------------------------------------

COLUMNS = [("attempts_per_s", "attempts/s", "{:.1f}"), ("peak_concurrent", "peak dialogs", "{}"),
           ("failed_percent", "failed %", "{:.2f}"), ("retransmissions", "SIPp retrans", "{}"),
           ("cpu_percent", "CPU %", "{:.1f}"), ("rss_mb", "RSS MB", "{:.1f}")]


def print_table(results: dict[str, dict]) -> None:
    print(f"{'target':<34}" + "".join(f"{label:>14}" for _, label, _ in COLUMNS))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<34} error: {r['error'].strip()[:300]}")
            continue
        print(f"{name:<34}" + "".join(f"{fmt.format(r[key]):>14}" for key, _, fmt in COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--hold-ms", type=int, default=6700)
    parser.add_argument("--calls", type=int, default=7500)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--serve", choices=["answer", "model"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    sipp = shutil.which("sipp")
    if not sipp:
        print("sipp is not installed (apt-get install sip-tester)", file=sys.stderr)
        return 2
    print(f"load: sipp -sn uac -r {args.rate} -l {args.limit} -d {args.hold_ms} -m {args.calls}"
          f" on 127.0.0.1; {psutil.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    hot = hot_path_figures()
    print(f"hot path: parse+build of one call's 7 messages {hot['messages_us']:.0f} us; "
          f"one whole call through UasCore (INVITE/180/200, ACK, BYE/200) {hot['core_us']:.0f} us "
          f"-> {1e6 / hot['core_us']:.0f} calls/s of pure protocol work")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="twin-sip-bench-") as tmp:
        workdir = Path(tmp)
        results["twin SipServer (always-answer)"] = measure_python("answer", sipp, args, workdir)
        if not args.no_model:
            try:
                import harness.twin.model  # noqa: F401
                results["twin full (routing model)"] = measure_python("model", sipp, args, workdir)
            except ImportError:
                print("harness.twin.model not importable: model run skipped")
        results["sipp -sn uas"] = measure_sipp_uas(sipp, args, workdir)
    print_table(results)
    for name, r in results.items():
        if "twin_stats" in r:
            print(f"{name}: twin peak dialogs {r['twin_peak_dialogs']}, {r['twin_stats']}, "
                  f"sipp exit {r['sipp_exit']}")
    base = results.get("sipp -sn uas", {})
    for name, r in results.items():
        if name != "sipp -sn uas" and "error" not in r and "error" not in base:
            print(f"ratio {name} / sipp uas: attempts/s {r['attempts_per_s'] / base['attempts_per_s']:.2f}, "
                  f"CPU {r['cpu_percent'] / max(base['cpu_percent'], 0.1):.1f}x, "
                  f"RSS {r['rss_mb'] / max(base['rss_mb'], 0.1):.1f}x")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
