"""The target of an ephemeral container is checked when its spec is made: the PID
observed before the image pull must still be the target's PID 1, in a PID namespace
that is not the kubelet's own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netlab.node.kubelet.ephemeral import pid_namespace
from netlab.node.kubelet.spec import ContainerConfigError
from netlab.node.runtime import ContainerState
from netlab.node.runtime.paths import process_start_time


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_no_target_no_namespace():
    assert pid_namespace(None) is None


def test_a_pid_that_is_now_another_process_is_refused(child):
    # The target's PID 1 exited and its number went to another process: never join it.
    start = process_start_time(child.pid)
    assert start is not None
    stale = ContainerState("c", 0, "running", pid=child.pid, pid_start_time=start - 5)
    with pytest.raises(ContainerConfigError, match='target container "c" is not running'):
        pid_namespace(stale)


def test_a_target_that_exited_is_refused(child):
    start = process_start_time(child.pid)
    child.kill()
    child.wait()
    gone = ContainerState("c", 0, "running", pid=child.pid, pid_start_time=start)
    with pytest.raises(ContainerConfigError, match="is not running"):
        pid_namespace(gone)


def test_the_kubelets_own_pid_namespace_is_refused(child):
    # A process of the node (same PID namespace as the kubelet) is never a container's
    # PID 1: a debugger joining it would see every process of the host.
    host = ContainerState("c", 0, "running", pid=child.pid,
                          pid_start_time=process_start_time(child.pid))
    with pytest.raises(ContainerConfigError, match="PID namespace is the node's"):
        pid_namespace(host)
