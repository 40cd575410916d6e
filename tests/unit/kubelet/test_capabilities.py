"""The capability set a container keeps, as containerd computes it from
``securityContext.capabilities``."""

from __future__ import annotations

import pytest

from netlab.node.runtime import capabilities as caps
from netlab.node.runtime.spec import ContainerSpec

pytestmark = pytest.mark.unit


def test_the_default_is_containerds_fourteen():
    assert caps.container_set() == caps.DEFAULT and len(caps.DEFAULT) == 14
    assert "SYS_ADMIN" not in caps.DEFAULT and "NET_ADMIN" not in caps.DEFAULT


def test_add_and_drop_in_any_spelling():
    kept = caps.container_set(add=["net_admin", "CAP_SYS_TIME"], drop=["NET_RAW"])
    assert {"NET_ADMIN", "SYS_TIME"} <= kept and "NET_RAW" not in kept


def test_drop_all_then_add_keeps_only_the_added():
    assert caps.container_set(add=["NET_BIND_SERVICE"], drop=["ALL"]) == {"NET_BIND_SERVICE"}
    assert caps.container_set(drop=["ALL"]) == frozenset()
    assert caps.container_set(add=["ALL"]) == frozenset(caps.NUMBERS)


def test_an_unknown_capability_is_named():
    with pytest.raises(caps.CapabilityError, match="'NET_ADMINN'"):
        caps.container_set(add=["NET_ADMINN"])


def test_security_context_reaches_the_runtime_spec():
    spec = ContainerSpec.from_k8s({"name": "c", "securityContext": {
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL"]}}})
    assert spec.kept_capabilities() == (caps.DEFAULT | {"NET_ADMIN"}) - {"KILL"}
    privileged = ContainerSpec.from_k8s({"name": "c", "securityContext": {"privileged": True}})
    assert privileged.kept_capabilities() is None


def test_asking_for_mknod_is_read_in_every_spelling():
    """Where nothing filters device nodes the runtime withholds MKNOD unless the pod asks
    for it; ``CAP_MKNOD``, ``mknod`` and ``ALL`` ask for it as much as ``MKNOD`` does."""
    from netlab.node.runtime import ContainerSpec
    from netlab.node.runtime.containers import _asks_for

    for added in (("MKNOD",), ("CAP_MKNOD",), ("mknod",), ("ALL",), ("NET_ADMIN", "cap_mknod")):
        assert _asks_for(ContainerSpec("c", cap_add=added), "MKNOD"), added
    for added in ((), ("NET_ADMIN",), ("NO_SUCH_CAP",)):
        assert not _asks_for(ContainerSpec("c", cap_add=added), "MKNOD"), added
