"""Helpers for tests against the real twin (``ccharness emulator`` in a subprocess)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
CCHARNESS = [sys.executable, "-m", "harness.cli"]


@contextlib.contextmanager
def running_twin(tmp: Path, time_scale: float = 0.05, topology: Path | None = None):
    """Start the twin; yield its endpoints dict; always kill it."""
    ep = tmp / "endpoints.json"
    cmd = CCHARNESS + ["emulator", "--endpoints-file", str(ep), "--time-scale", str(time_scale), "--seed", "7"]
    if topology:
        cmd += ["--topology", str(topology)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    try:
        deadline = time.time() + 20
        while not ep.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"twin exited: {proc.stderr.read().decode()[-500:]}")
            if time.time() > deadline:
                raise RuntimeError("twin did not write its endpoints file")
            time.sleep(0.05)
        data = json.loads(ep.read_text())
        data["_path"] = str(ep)
        yield data
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Admin:
    """The test's own view of the twin (its own token, so it never shares a rate limit)."""

    def __init__(self, ep: dict):
        self.ep = ep
        self.http = httpx.Client(base_url=ep["rest_base_url"], timeout=5)
        tok = self.http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                   "client_id": ep["client_id"],
                                                   "client_secret": ep["client_secret"]}).json()
        self.http.headers["Authorization"] = f"Bearer {tok['access_token']}"

    def trunk_id(self, name: str) -> str:
        return next(t["id"] for t in self.ep["trunks"] if t["name"] == name)

    def trunk(self, name_or_id: str) -> dict:
        t = next(t for t in self.ep["trunks"] if name_or_id in (t["name"], t["id"]))
        path = (f"/api/v2/telephony/phone/trunks/{t['id']}" if t["platform"] == "genesys"
                else f"/api/v2.0/telephony/trunks/{t['id']}")
        r = self.http.get(path)
        r.raise_for_status()
        return r.json()

    def snapshot(self) -> dict[str, dict]:
        """Every trunk's full GET JSON, except ``version`` (a restore is a new version)."""
        out = {}
        for t in self.ep["trunks"]:
            body = self.trunk(t["id"])
            body.pop("version", None)
            out[t["id"]] = body
        return out

    def faults(self, **body) -> dict:
        r = self.http.put("/twin/v1/faults", json=body) if body else self.http.get("/twin/v1/faults")
        r.raise_for_status()
        return r.json()

    def ground_truth(self) -> dict:
        return self.http.get("/twin/v1/ground-truth").json()

    def reset(self) -> None:
        self.http.post("/twin/v1/reset").raise_for_status()

    def close(self) -> None:
        self.http.close()


def experiment(tmp: Path, name: str, edit=None, out_name: str | None = None) -> Path:
    """A shipped experiment copied to ``tmp`` after ``edit(dict)``; returns its path."""
    data = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
    if edit:
        edit(data)
    path = tmp / (out_name or f"{name}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run(CCHARNESS + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def journal(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_journal(path: Path, pred, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for rec in journal(path):
            if pred(rec):
                return rec
        time.sleep(0.05)
    raise AssertionError(f"journal {path} never showed the expected record")
