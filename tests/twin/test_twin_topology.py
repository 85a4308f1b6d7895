"""Topology loading: the packaged default mirrors the guide; bad files name file, line, key."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.twin.topology import load_topology, parse_topology
from twin_support import FIXTURES


def test_default_topology_mirrors_the_guide():
    topo = load_topology()
    names = {t.name: t for t in topo.trunks}
    assert {"Primary_Carrier_Trunk", "Secondary_Carrier_Trunk", "Chaos_Test_Trunk",
            "Primary_SIP_Trunk", "Test_Trunk_Group"} <= set(names)
    assert names["Primary_SIP_Trunk"].failover_trunk_id == names["Secondary_SIP_Trunk"].id
    assert names["Secondary_Carrier_Trunk"].failover_priority > names["Primary_Carrier_Trunk"].failover_priority
    chaos_queue = topo.queue(names["Chaos_Test_Trunk"].queue_id)
    assert chaos_queue.name == "Chaos_Queues" and topo.queue(chaos_queue.fallback_queue_id) is not None
    assert topo.queue(topo.cxone_flow.fallback_queue_id).name == "Fallback_Support_Queue"
    assert topo.ivr(topo.cxone_flow.ivr_id).name == "System_Maintenance_Message"
    assert topo.delays.genesys_propagation == (15.0, 25.0) and topo.delays.analytics_lag == (90.0, 120.0)


def test_ids_are_deterministic_across_loads():
    assert [t.id for t in load_topology().trunks] == [t.id for t in load_topology().trunks]


def test_fixture_topology_loads():
    assert len(load_topology(FIXTURES / "unit.yaml").trunks) == 12


@pytest.mark.parametrize("text, line, key", [
    ("trunks:\n  - name: A\n    platform: genesys\n    mediaServerPoolId: nope\n    queue: Q\n",
     4, "trunks[0].mediaServerPoolId"),
    ("mediaServerPools: [{id: p, region: r}]\nqueues: [{name: Q, platform: genesys, agents: 1}]\n"
     "trunks:\n  - name: A\n    platform: genesys\n    mediaServerPoolId: p\n    queue: Q\n"
     "    capacity: {throttlePercentage: 150}\n", 8, "trunks[0].capacity.throttlePercentage"),
    ("mediaServerPools: [{id: p, region: r}]\nqueues: [{name: Q, platform: genesys, agents: 1}]\n"
     "trunks:\n  - name: A\n    platform: genesys\n    mediaServerPoolId: p\n    queue: Q\n"
     "    colour: red\n", 8, "trunks[0].colour"),
    ("delays:\n  genesysPropagation: [25, 15]\n", 2, "delays.genesysPropagation"),
])
def test_errors_name_file_line_and_key(text, line, key):
    with pytest.raises(ConfigError) as err:
        parse_topology(text, "topo.yaml")
    assert (err.value.path, err.value.line, err.value.key) == ("topo.yaml", line, key)
    assert str(err.value).startswith(f"topo.yaml:{line}: {key}: ")


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="topo.yaml:3: invalid YAML"):
        parse_topology("a: 1\nb: [\n", "topo.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_topology(tmp_path / "missing.yaml")
