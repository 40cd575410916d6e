"""netlab.kernel.nft and the ruleset's transactions against a real kernel, in bare namespaces."""

from __future__ import annotations

import pytest

from netlab.kernel import nft
from netlab.node.proxy import ruleset
from netlab.node.proxy.describe import describe
from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName
from netlab.node.proxy.ruleset import Garbage, ProxyConfig

BACKENDS = ["command"] + (["library"] if nft.backend_name() == "library" else [])
CFG = ProxyConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16",
                  local_pod_cidr="10.244.1.0/24")
WEB = ServicePortName("default", "web", "http", "tcp")


def _port(*hosts: int, affinity: int | None = None, node_port: int | None = 30080,
          ip: str = "10.96.0.10") -> ServicePort:
    eps = tuple(Endpoint(f"10.244.1.{h}", 8080, f"web-{h}", "worker1") for h in hosts)
    return ServicePort(WEB, ip, 80, node_port, affinity, eps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_is_atomic_and_errors_name_the_line(make_netns, backend):
    ns = make_netns("nft")
    script = ("add table ip t\nadd chain ip t a\nadd rule ip t a counter\n"
              "add rule ip t a ip daddr 1.2.3.4 jump nowhere\n")
    with pytest.raises(nft.NftError) as err:
        nft.apply(ns, script, backend)
    assert "line 4" in str(err.value) or ":4:" in str(err.value), str(err.value)
    assert "jump nowhere" in str(err.value)
    assert not nft.table_exists(ns, "t", backend=backend), "a failed script left a table"
    nft.apply(ns, script.replace("jump nowhere", "accept"), backend)
    assert "ip daddr 1.2.3.4 accept" in nft.list_table(ns, "t", backend=backend)
    assert nft.delete_table(ns, "t", backend=backend)
    assert not nft.delete_table(ns, "t", backend=backend)  # idempotent
    assert nft.list_table(ns, "t", backend=backend) is None


def test_a_missing_namespace_is_a_clear_error():
    with pytest.raises(nft.NftError, match="does not exist"):
        nft.apply("nlt-no-such-namespace", "add table ip t\n", "command")


def test_every_transition_applies_and_garbage_collection_leaves_nothing_unused(make_netns):
    """Each step is what a partial sync sends after the one before; collecting the
    garbage must leave exactly the objects the last step uses."""
    ns = make_netns("tx")
    steps = [_port(2, 3, affinity=100), _port(3, 4, affinity=200), _port(),
             _port(5, node_port=None), _port(2, 3, affinity=100),
             _port(2, 3, affinity=100, ip="10.96.0.11"), None, _port(7), _port(7, 8)]
    nft.apply(ns, ruleset.full_ruleset(CFG, [steps[0]]))
    garbage = Garbage()
    for i in range(1, len(steps)):
        script, garbage = ruleset.partial_update(CFG, {WEB: (steps[i - 1], steps[i])}, garbage)
        nft.apply(ns, script)
        if i % 3 == 0:  # raw netlink deletes, as the Proxier collects
            deleted = nft.delete_objects_in(ns, {
                table: nft.TableObjects(g.elements, g.sets, g.chains)
                for table, g in garbage.by_table().items()})
            assert deleted == len(garbage)
            garbage = Garbage()
    nft.apply(ns, garbage.collect_script())  # and as nft text
    listed = nft.list_table(ns, ruleset.TABLE)
    text = describe(listed)
    assert "awaiting deletion" not in text, text
    assert "#0 -> 10.244.1.7:8080  pod web-7 on worker1" in text
    assert "#1 -> 10.244.1.8:8080  pod web-8 on worker1" in text
    expected = ruleset.port_objects(steps[-1])
    for chain in expected.chains:
        assert f"chain {chain} {{" in listed
    # Without affinity no endpoint has a chain: one DNAT map holds both.
    assert listed.count("\tchain endpoint-") == 0 and listed.count("\tmap dispatch-") == 0
    assert listed.count("\tmap dnat-") == 1


def test_full_sync_replaces_what_is_there(make_netns):
    ns = make_netns("full")
    nft.apply(ns, ruleset.full_ruleset(CFG, [_port(2, 3)]))
    nft.apply(ns, ruleset.full_ruleset(CFG, [_port(9)]))
    listed = nft.list_table(ns, ruleset.TABLE)
    assert "10.244.1.9:8080" in listed and "10.244.1.2:8080" not in listed


def test_raw_deletes_are_all_or_nothing(make_netns):
    ns = make_netns("del")
    nft.apply(ns, ruleset.full_ruleset(CFG, [_port(2, 3)]))
    before = nft.list_table(ns, ruleset.TABLE)
    live = ruleset.port_objects(_port(2, 3))
    with pytest.raises(nft.NftError, match="nothing deleted"):
        # The dispatch map is still referenced by the Service chain: refused, and
        # the chain that could have gone stays too.
        nft.delete_objects(ns, ruleset.TABLE, sets=sorted(live.sets),
                           chains=["mark-for-masquerade"])
    assert nft.list_table(ns, ruleset.TABLE) == before
