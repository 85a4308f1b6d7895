"""Loopback unless asked (issue 6): the SIP target opt-in, the engines' bind address,
the exporter's and the Locust master's bind addresses, and a master that waits for an
external `locust --worker` instead of spawning its own. All traffic stays on 127.0.0.1:
the remote-target cases are checked at URI/settings level only, never sent."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from harness.errors import ConfigError, SipError
from harness.sip.uri import ALLOW_REMOTE_ENV, parse_target
from sipp_peer import sipp_uas

ROOT = Path(__file__).resolve().parents[2]
REMOTE = ["sip:svc@10.20.30.40:5060", "sip:svc@twin:5060", "sip:svc@[2001:db8::1]:5070"]


@pytest.fixture
def no_opt_in(monkeypatch):
    monkeypatch.delenv(ALLOW_REMOTE_ENV, raising=False)
    monkeypatch.delenv("CCHARNESS_SIP_BIND", raising=False)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listen_addrs(pids) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket the processes hold."""
    out = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        out |= {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return out


# -- SIP targets ----------------------------------------------------------------------

@pytest.mark.parametrize("uri", REMOTE)
def test_non_loopback_target_is_refused_without_the_opt_in(no_opt_in, uri):
    with pytest.raises(SipError, match="not on loopback.*--sip-allow-remote"):
        parse_target(uri)


@pytest.mark.parametrize("uri", REMOTE)
def test_non_loopback_target_is_accepted_with_the_opt_in(no_opt_in, monkeypatch, uri):
    target = parse_target(uri, allow_remote=True)
    assert target.port in (5060, 5070) and target.host != "127.0.0.1"
    with pytest.raises(SipError):                      # the environment alone is not set yet
        parse_target(uri)
    monkeypatch.setenv(ALLOW_REMOTE_ENV, "1")
    assert parse_target(uri).uri == uri


def test_explicit_refusal_beats_the_environment(monkeypatch):
    monkeypatch.setenv(ALLOW_REMOTE_ENV, "1")
    with pytest.raises(SipError, match="not on loopback"):
        parse_target(REMOTE[0], allow_remote=False)


def _options(**over):
    ns = dict(sip_target="sip:svc@127.0.0.1:5060", sip_codecs="pcmu", sip_hold="fixed:1",
              sip_tag="t", sip_tag_header="X-Chaos-Test", sip_dtmf="", sip_dtmf_method="rfc2833",
              sip_ring_timeout=5.0, sip_retry=False, sip_max_calls=10, sip_min_interval=1.0,
              sip_endpoints_file="", sip_media="null", sip_allow_remote=False, sip_bind="")
    ns.update(over)
    return SimpleNamespace(**ns)


def test_settings_default_to_loopback_and_export_nothing(no_opt_in):
    import os

    from harness.load.settings import LoadSettings
    from harness.sip.engine import EngineConfig

    s = LoadSettings.from_options(_options())
    assert (s.allow_remote, s.sip_bind) == (False, "127.0.0.1")
    assert ALLOW_REMOTE_ENV not in os.environ and "CCHARNESS_SIP_BIND" not in os.environ
    assert EngineConfig().bind == "127.0.0.1"
    with pytest.raises(SipError, match="not on loopback"):
        LoadSettings.from_options(_options(sip_target=REMOTE[1]))


def test_settings_opt_in_reaches_the_engine_config(no_opt_in, monkeypatch):
    import os

    from harness.load.settings import LoadSettings
    from harness.sip.engine import EngineConfig

    # Placeholders so that monkeypatch restores the environment from_options writes.
    monkeypatch.setenv(ALLOW_REMOTE_ENV, "0")
    monkeypatch.setenv("CCHARNESS_SIP_BIND", "")
    s = LoadSettings.from_options(_options(sip_target=REMOTE[1], sip_allow_remote=True,
                                           sip_bind="0.0.0.0"))
    assert (s.allow_remote, s.sip_bind, s.targets) == (True, "0.0.0.0", (REMOTE[1],))
    assert os.environ[ALLOW_REMOTE_ENV] == "1"           # the worker's engine processes inherit it
    assert EngineConfig().bind == "0.0.0.0"


def test_settings_refuse_a_bind_that_is_not_an_address(no_opt_in):
    from harness.load.settings import LoadSettings

    with pytest.raises(ConfigError, match="--sip-bind must be an IP address"):
        LoadSettings.from_options(_options(sip_bind="twin"))


# -- `ccharness run` options and their plumbing ---------------------------------------------

def _run_args(*argv):
    from harness.control import cli

    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return cli, parser.parse_args(["exp.yaml", *argv])


def test_run_defaults_bind_loopback_and_local_workers():
    cli, args = _run_args()
    assert args.metrics_host == "127.0.0.1"
    assert cli.load_options(args) == {}                  # LoadSession's defaults: loopback, free port


def test_run_deployment_options_reach_open_load():
    cli, args = _run_args("--master-bind-host", "0.0.0.0", "--master-port", "5557",
                          "--expect-workers", "4", "--local-workers", "0", "--metrics-host", "0.0.0.0")
    assert cli.load_options(args) == {"master_host": "0.0.0.0", "master_port": 5557,
                                      "expect_workers": 4, "local_workers": 0}
    assert args.metrics_host == "0.0.0.0"
    with pytest.raises(ConfigError, match="--master-port"):
        cli.load_options(_run_args("--master-port", "70000")[1])
    with pytest.raises(ConfigError, match="--expect-workers cannot be negative"):
        cli.load_options(_run_args("--expect-workers", "-1")[1])


def test_open_load_passes_deployment_options_and_keeps_its_old_call(monkeypatch):
    from harness.control import loadlink

    seen = []
    monkeypatch.setattr(loadlink, "session_class", lambda: lambda **kw: seen.append(kw) or kw)
    monkeypatch.setattr(loadlink, "session_kwargs", lambda *a: {"workers": a[-1]})
    loadlink.open_load(None, None, None, Path("x"))
    loadlink.open_load(None, None, None, Path("x"), 3, master_host="0.0.0.0", master_port=5557,
                       expect_workers=4, local_workers=0)
    assert seen == [{"workers": 2}, {"workers": 3, "master_host": "0.0.0.0", "master_port": 5557,
                                     "expect_workers": 4, "local_workers": 0}]


def test_exporter_binds_loopback_by_default_and_the_given_host_otherwise(tmp_path):
    from harness.control.cli import metrics_session
    plan = SimpleNamespace(live={})
    for kwargs, want in (({}, "127.0.0.1"), ({"host": "127.0.0.2"}, "127.0.0.2")):
        port = free_tcp_port()
        session = metrics_session(tmp_path / want, plan, None, port, **kwargs)
        try:
            mine = {a for a in listen_addrs([psutil.Process().pid]) if a[1] == port}
            assert mine == {(want, port)}
        finally:
            session.close()


# -- a master that waits for an external worker ----------------------------------------------

@pytest.mark.sipp
@pytest.mark.slow
def test_master_waits_for_an_external_worker_and_listens_on_loopback_only(sipp_bin, tmp_path):
    port, out = free_tcp_port(), tmp_path / "run"
    with sipp_uas(sipp_bin, tmp_path) as (uri, _log):
        master = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "load", "--target", uri, "--concurrent", "2",
             "--hold", "0.5", "--duration", "3", "--workers", "0", "--expect-workers", "1",
             "--master-port", str(port), "--tag", "bind-test", "--out", str(out)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        worker = None
        try:
            deadline = time.time() + 30
            while time.time() < deadline and port not in {p for _, p in listen_addrs([master.pid])}:
                assert master.poll() is None, master.stderr.read()
                time.sleep(0.2)
            # Waiting: no local worker spawned, the worker port on loopback only.
            assert psutil.Process(master.pid).children() == []
            assert {a for a in listen_addrs([master.pid]) if a[1] == port} == {("127.0.0.1", port)}
            worker = subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", "locustfiles/sip_load.py", "--worker",
                 "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            stdout, stderr = master.communicate(timeout=120)
        finally:
            for p in (master, worker):      # each with its engine processes (own group)
                if p is not None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(timeout=10)
    assert master.returncode == 0, stderr
    load = json.loads((out / "summary.json").read_text())["load"]
    assert load["workers"] == 1 and len(load["calls_by_worker"]) == 1   # only the external one
    assert load["calls_total"] > 0 and load["calls_by_outcome"].get("answered", 0) > 0


def test_plain_locust_master_and_web_ui_bind_loopback_by_default():
    """`locust -f locustfiles/sip_load.py --master` with its web UI: Locust's own default
    is every interface; the locustfile's options make it 127.0.0.1."""
    master_port, web_port = free_tcp_port(), free_tcp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "locustfiles/sip_load.py", "--master",
         "--master-bind-port", str(master_port), "--web-port", str(web_port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 30
        seen = set()
        while time.time() < deadline and not {master_port, web_port} <= {p for _, p in seen}:
            assert proc.poll() is None, f"locust exited with {proc.returncode}"
            time.sleep(0.2)
            seen = listen_addrs([proc.pid])
        assert seen == {("127.0.0.1", master_port), ("127.0.0.1", web_port)}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
