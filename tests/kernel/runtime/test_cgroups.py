"""cgroup detection and the v1/v2 file protocol. The host shows one layout (v1
on netlab's CI machines); the others are checked on fake trees in a temporary
directory, where the kernel's files are plain files."""

from __future__ import annotations

import os
from pathlib import Path

from labkit import unique_lab

from netlab.node.runtime import CgroupHost, cleanup_lab
from netlab.node.runtime import cgroups as cg

V1_MOUNTS = [("cgroup", "/sys/fs/cgroup/cpu", {"rw", "cpu"}),
             ("cgroup", "/sys/fs/cgroup/cpuacct", {"rw", "cpuacct"}),
             ("cgroup", "/sys/fs/cgroup/memory", {"rw", "memory"}),
             ("cgroup2", "/sys/fs/cgroup/unified", {"rw"})]


def test_v1_groups_nest_under_the_callers_own_cgroup():
    host = cg.detect(V1_MOUNTS, {"cpu": "/", "cpuacct": "/", "memory": "/session/42"})
    assert host.version == "v1" and host.missing == {}
    assert host.lab_roots("demo") == {
        "cpu": "/sys/fs/cgroup/cpu/netlab/demo", "cpuacct": "/sys/fs/cgroup/cpuacct/netlab/demo",
        "memory": "/sys/fs/cgroup/memory/session/42/netlab/demo"}


def test_a_missing_v1_controller_is_named_in_the_reason():
    host = cg.detect(V1_MOUNTS[:2], {})
    assert not host.has("memory")
    assert host.missing["memory"].startswith("no memory cgroup controller: cgroup v1")


def test_v2_is_used_when_the_unified_tree_has_the_controllers():
    mounts = [("cgroup2", "/sys/fs/cgroup", {"rw"})]
    host = cg.detect(mounts, {"unified": "/user.slice"}, lambda _: {"cpu", "memory", "io"})
    assert (host.version, host.parents, host.missing) == ("v2", {"unified": "/sys/fs/cgroup"}, {})
    only_memory = cg.detect(mounts, {}, lambda _: {"memory"})
    assert "no cpu controller in the cgroup v2 hierarchy" in only_memory.missing["cpu"]


def test_a_hybrid_unified_tree_without_controllers_is_not_enough():
    mounts = [("cgroup2", "/sys/fs/cgroup/unified", {"rw"})]
    host = cg.detect(mounts, {}, lambda _: {"hugetlb"})
    assert host.version == "none"
    assert host.missing["memory"] == "no cgroup hierarchy with cpu or memory controllers is mounted"


def test_v2_file_protocol_on_a_fake_tree(tmp_path: Path):
    lab = unique_lab()
    host = CgroupHost("v2", {"unified": str(tmp_path)})
    try:
        group, problems = cg.create(host, lab, "pod-uid", "app")
        assert problems == []
        leaf = Path(group.dirs["unified"])
        assert leaf == tmp_path / "netlab" / lab / "pod-uid" / "app" and leaf.is_dir()
        # Controllers are enabled for every level above the leaf, top-down.
        for level in (tmp_path, tmp_path / "netlab", tmp_path / "netlab" / lab,
                      tmp_path / "netlab" / lab / "pod-uid"):
            assert (level / "cgroup.subtree_control").read_text() == "+memory"  # last write
        assert not (leaf / "cgroup.subtree_control").exists()
        assert cg.set_limits(host, group, cpu_limit_millis=250, memory_limit_bytes=64 << 20,
                             cpu_request_millis=100) == []
        assert (leaf / "cpu.max").read_text() == "25000 100000"
        assert (leaf / "memory.max").read_text() == str(64 << 20)
        assert (leaf / "cpu.weight").read_text() == "4"
        assert cg.limits(group) == {"cpu_quota_us": 25000, "cpu_period_us": 100000,
                                    "memory_bytes": 64 << 20}
        (leaf / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\n")
        (leaf / "memory.current").write_text("5000\n")
        (leaf / "memory.stat").write_text("anon 4000\ninactive_file 1000\n")
        (leaf / "memory.events").write_text("low 0\noom 1\noom_kill 1\n")
        assert cg.cpu_usage_ns(group) == 1_500_000
        assert cg.memory_working_set(group) == 4000
        assert cg.oom_kills(group) == 1
    finally:
        cleanup_lab(lab)  # the record of the lab's cgroup roots under /run/netlab


def test_limits_without_a_group_say_why(tmp_path: Path):
    host = CgroupHost("v1", {"cpu": str(tmp_path)},
                      {"memory": "no memory cgroup controller: (test)"})
    group = cg.Cgroup("v1", {"cpu": str(tmp_path / "x")})
    os.mkdir(tmp_path / "x")
    problems = cg.set_limits(host, group, cpu_limit_millis=100, memory_limit_bytes=1 << 20)
    assert problems == [f"memory limit {1 << 20} bytes not enforced: "
                        "no memory cgroup controller: (test)"]
    assert (tmp_path / "x" / "cpu.cfs_quota_us").read_text() == "10000"
