"""The User-Agent each component sends: the API server names field managers after it."""

from __future__ import annotations

import sys
import types

import pytest

from netlab.client.http import default_user_agent

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("module, agent", [
    ("netlab.master.controllers.__main__", "kube-controller-manager/netlab"),
    ("netlab.master.scheduler.__main__", "kube-scheduler/netlab"),
    ("netlab.node.kubelet.__main__", "kubelet/netlab"),
    ("netlab.cli.main", "netlab/netlab"),
])
def test_components_name_themselves_as_upstream(monkeypatch, module, agent):
    fake = types.ModuleType("__main__")
    fake.__spec__ = types.SimpleNamespace(name=module)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    assert default_user_agent() == agent
