"""docker-compose.yml, checked without a Docker engine.

Debian's ``docker-compose config`` validates the file and resolves it (paths made
absolute, variables substituted); the tests then read that resolved form: every bind
mount and build input exists in the repository, the Prometheus configuration passes
``promtool check config`` when laid out as the container sees it, and Grafana's
provisioning finds the dashboard JSON and the datasource it names.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _root_conftest():
    # By path: `import conftest` may find tests/twin/conftest.py, depending on the order
    # pytest loaded them in (tests/ is not a package).
    spec = importlib.util.spec_from_file_location("_ccharness_tests_conftest", ROOT / "tests/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


require_tool = _root_conftest().require_tool
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"twin", "master", "worker", "prometheus", "grafana"}
TEST_PASSWORD = "test-only-not-a-secret"


@pytest.fixture(scope="module")
def docker_compose_bin() -> str:
    return require_tool("docker-compose")


def compose_config(bin_path: str, env_file: Path, extra_env: dict | None = None):
    """``docker-compose config`` on the repo's file with only ``env_file`` as .env."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRAFANA_", "CCHARNESS_", "COMPOSE_"))}
    env.update(extra_env or {})
    return subprocess.run(
        [bin_path, "--project-directory", str(ROOT), "-f", str(COMPOSE),
         "--env-file", str(env_file), "config"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def resolved(docker_compose_bin, tmp_path_factory) -> dict:
    env_file = tmp_path_factory.mktemp("env") / "test.env"
    env_file.write_text(f"GRAFANA_ADMIN_PASSWORD={TEST_PASSWORD}\n")
    proc = compose_config(docker_compose_bin, env_file)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each volume; a bind mount's source is absolute once resolved."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((v["source"], v["target"]))
        else:
            source, target = v.split(":")[:2]
            out.append((source, target))
    return out


def bind_mounts(service: dict) -> list[tuple[Path, str]]:
    return [(Path(s), t) for s, t in mounts(service) if s.startswith("/")]


def lay_out(service: dict, root: Path) -> Path:
    """Copy the service's bind mounts under ``root`` at their container paths."""
    for source, target in bind_mounts(service):
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, dest)
    return root


def flag(command: list[str], name: str) -> str:
    """Value of ``--name VALUE`` or ``--name=VALUE`` in a command list."""
    for i, arg in enumerate(command):
        if arg == name:
            return command[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


# -- the file itself -------------------------------------------------------------

def test_compose_config_validates_with_every_service(resolved):
    assert set(resolved["services"]) == SERVICES


def test_grafana_password_is_required_from_the_environment(docker_compose_bin, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    proc = compose_config(docker_compose_bin, empty)
    assert proc.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in proc.stderr


def test_no_credential_is_inline():
    raw = yaml.safe_load(COMPOSE.read_text())
    for name, svc in raw["services"].items():
        env = svc.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (
            (e.split("=", 1) + [None])[:2] for e in env)
        for key, value in items:
            if re.search(r"PASSWORD|SECRET|TOKEN|CLIENT_ID", key):
                assert value is None or str(value).startswith("${"), (name, key)


def test_published_ports_bind_host_loopback_only(resolved):
    for name, svc in resolved["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


# -- what it mounts and builds from --------------------------------------------------

def test_every_bind_mount_exists_in_the_repo(resolved):
    seen = 0
    for name, svc in resolved["services"].items():
        for source, _target in bind_mounts(svc):
            assert source.is_relative_to(ROOT), (name, source)
            assert source.exists(), (name, source)
            seen += 1
    assert seen >= 5


def test_named_volumes_are_declared(resolved):
    declared = set(resolved.get("volumes", {}))
    for name, svc in resolved["services"].items():
        for source, _ in mounts(svc):
            if not source.startswith("/"):
                assert source in declared, (name, source)


def test_build_context_dockerfile_and_its_inputs_exist(resolved):
    built = [s for s in resolved["services"].values() if "build" in s]
    assert {n for n, s in resolved["services"].items() if "build" in s} == {"twin", "master", "worker"}
    for svc in built:
        context = Path(svc["build"]["context"])
        dockerfile = context / svc["build"].get("dockerfile", "Dockerfile")
        assert context == ROOT and dockerfile.is_file()
        for line in dockerfile.read_text().splitlines():
            if line.startswith(("COPY", "ADD")):
                for src in line.split()[1:-1]:
                    if not src.startswith("--"):
                        assert (context / src).exists(), src


def test_dockerignore_keeps_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text().split()
    for src in ("pyproject.toml", "README.md", "harness/", "locustfiles/", "experiments/"):
        assert "!" + src in ignore
    assert ".env" in ignore


def test_worker_command_names_an_existing_locustfile_and_the_master(resolved):
    cmd = resolved["services"]["worker"]["command"]
    locustfile = flag(cmd, "-f")
    assert locustfile.startswith("/app/")
    assert (ROOT / locustfile.removeprefix("/app/")).is_file()
    assert "--worker" in cmd and flag(cmd, "--master-host") == "master"


def test_master_runs_a_shipped_experiment(resolved):
    cmd = resolved["services"]["master"]["command"]
    experiment = cmd[cmd.index("run") + 1]
    targets = {t: s for s, t in mounts(resolved["services"]["master"])}
    assert Path(targets["/app/experiments"]).joinpath(Path(experiment).name).is_file()


def _environment(service: dict) -> dict:
    env = service.get("environment") or {}
    return dict(env) if isinstance(env, dict) else dict((e.split("=", 1) + [None])[:2] for e in env)


def test_master_waits_for_the_worker_service_on_the_compose_network(resolved):
    svcs = resolved["services"]
    cmd = svcs["master"]["command"]
    port = flag(cmd, "--master-port")
    assert flag(cmd, "--master-bind-host") == "0.0.0.0" and flag(cmd, "--local-workers") == "0"
    assert flag(cmd, "--expect-workers") == "4"                       # CCHARNESS_WORKERS default
    assert flag(cmd, "--metrics-host") == "0.0.0.0"                   # Prometheus scrapes master:PORT
    assert flag(svcs["worker"]["command"], "--master-port") == port
    assert port in [str(p) for p in svcs["master"].get("expose", [])]


def test_expected_workers_follow_ccharness_workers(docker_compose_bin, tmp_path):
    env_file = tmp_path / "test.env"
    env_file.write_text(f"GRAFANA_ADMIN_PASSWORD={TEST_PASSWORD}\nCCHARNESS_WORKERS=7\n")
    proc = compose_config(docker_compose_bin, env_file)
    assert proc.returncode == 0, proc.stderr
    cmd = yaml.safe_load(proc.stdout)["services"]["master"]["command"]
    assert flag(cmd, "--expect-workers") == "7"


def test_ccharness_run_accepts_every_option_the_master_passes(resolved):
    import argparse

    from harness.control import cli

    cmd = resolved["services"]["master"]["command"]
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(cmd[cmd.index("run") + 1:])
    assert cli.load_options(args) == {"master_host": "0.0.0.0", "master_port": 5557,
                                      "expect_workers": 4, "local_workers": 0}


def test_remote_targets_and_binds_are_opted_into_explicitly(resolved):
    svcs = resolved["services"]
    assert _environment(svcs["master"])["CCHARNESS_ALLOW_REMOTE_TARGETS"] == "1"
    worker = _environment(svcs["worker"])
    assert worker["CCHARNESS_ALLOW_REMOTE_TARGETS"] == "1" and worker["CCHARNESS_SIP_BIND"] == "0.0.0.0"


def test_twin_endpoints_file_is_on_a_volume_master_and_workers_read(resolved):
    svcs = resolved["services"]
    path = flag(svcs["twin"]["command"], "--endpoints-file")
    assert flag(svcs["master"]["command"], "--endpoints-file") == path
    shared = {s for s, t in mounts(svcs["twin"]) if path.startswith(t + "/")}
    assert shared, "the twin writes its endpoints file outside any volume"
    for name in ("master", "worker"):
        assert shared & {s for s, t in mounts(svcs[name]) if path.startswith(t + "/")}, name


# -- Prometheus and Grafana as the containers see them -----------------------------

def test_mounted_prometheus_config_passes_promtool(resolved, promtool_bin, tmp_path):
    svc = resolved["services"]["prometheus"]
    root = lay_out(svc, tmp_path)
    config = root / flag(svc["command"], "--config.file").lstrip("/")
    proc = subprocess.run([promtool_bin, "check", "config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "rule" in proc.stdout.lower()


def test_prometheus_scrapes_the_master_exporter_by_service_name(resolved, tmp_path):
    svc = resolved["services"]["prometheus"]
    config = yaml.safe_load((lay_out(svc, tmp_path) / "etc/prometheus/prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"]
               for sc in job["static_configs"] for t in sc["targets"]]
    port = flag(resolved["services"]["master"]["command"], "--metrics-port")
    assert targets == [f"master:{port}"]


def test_grafana_provisioning_finds_the_dashboards_and_their_datasource(resolved, tmp_path):
    svc = resolved["services"]["grafana"]
    root = lay_out(svc, tmp_path)
    prov = root / "etc/grafana/provisioning"
    providers = [p for f in (prov / "dashboards").glob("*.yml")
                 for p in yaml.safe_load(f.read_text())["providers"]]
    assert providers
    uids = set()
    for provider in providers:
        found = list((root / provider["options"]["path"].lstrip("/")).glob("*.json"))
        assert found, provider["options"]["path"]
        for f in found:
            uids |= {ds["uid"] for ds in _datasources(json.loads(f.read_text()))}
    sources = [d for f in (prov / "datasources").glob("*.yml")
               for d in yaml.safe_load(f.read_text())["datasources"]]
    by_uid = {d["uid"]: d for d in sources}
    assert uids and uids <= set(by_uid)
    for uid in uids:
        assert by_uid[uid]["url"] == "http://prometheus:9090"
    home = svc["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (root / home.lstrip("/")).is_file()


def test_grafana_is_anonymous_viewer(resolved):
    env = resolved["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == TEST_PASSWORD


def _datasources(node):
    """Every datasource reference (dict with a uid) of a Prometheus type in a dashboard."""
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and ds.get("type") == "prometheus":
            yield ds
        for v in node.values():
            yield from _datasources(v)
    elif isinstance(node, list):
        for v in node:
            yield from _datasources(v)
