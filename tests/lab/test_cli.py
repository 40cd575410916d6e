"""The CLI's own contract: status, list, exec, validate and their exit codes."""

from __future__ import annotations

import json

from labkit import netlab_cli


def test_status_json_and_table(demo_lab):
    out = netlab_cli("status", demo_lab.name, "-o", "json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["phase"] == "up"
    nodes = {n["name"]: n for n in info["nodes"]}
    assert nodes["worker1"]["underlayIP"] == "192.168.100.3"
    assert nodes["worker1"]["podSubnet"] == "10.244.1.0/24"
    assert nodes["client"]["podSubnet"] == ""
    table = netlab_cli("status", demo_lab.name).stdout
    assert "UNDERLAY-IP" in table and "10.244.2.0/24" in table


def test_list_shows_the_lab(demo_lab):
    out = netlab_cli("list")
    assert demo_lab.name in out.stdout
    listed = json.loads(netlab_cli("list", "-o", "json").stdout)["labs"]
    [mine] = [row for row in listed if row["lab"] == demo_lab.name]
    assert mine["phase"] == "up" and mine["nodes"] == 4


def test_exec_runs_inside_the_node(demo_lab):
    out = netlab_cli("exec", "--lab", demo_lab.name, "worker2", "--", "ip", "-br", "addr", "show")
    assert out.returncode == 0, out.stderr
    assert "192.168.100.4/24" in out.stdout and "10.244.2.1/24" in out.stdout
    assert "vxlan0" in out.stdout
    sys_view = netlab_cli("exec", "--lab", demo_lab.name, "worker2", "--", "ls", "/sys/class/net")
    assert "cni0" in sys_view.stdout, "/sys must show the node's own interfaces"


def test_exec_unknown_node_explains(demo_lab):
    out = netlab_cli("exec", "--lab", demo_lab.name, "worker9", "--", "true")
    assert out.returncode == 2
    assert "has no node 'worker9'" in out.stderr and "worker1" in out.stderr


def test_status_of_unknown_lab_explains():
    out = netlab_cli("status", "nosuchlab")
    assert out.returncode == 2 and "no lab named nosuchlab is up" in out.stderr


def test_validate_prints_the_plan(tmp_path):
    from labkit import topology, write_topology

    path = write_topology(tmp_path, topology("vdemo"))
    out = netlab_cli("validate", str(path))
    assert out.returncode == 0 and "valid lab 'vdemo'" in out.stdout
    assert "192.168.100.2" in out.stdout
