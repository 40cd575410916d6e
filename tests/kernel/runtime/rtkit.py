"""Helpers for the runtime tests: a lab with a ``Runtime`` per node, pods made
through the runtime as the kubelet will make them, and log probes.

The runtime is always called from a thread inside the node's network
namespace, as the kubelet (a process in that namespace) will call it.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from labkit import topology, unique_lab, wait_for, write_topology

from netlab.kernel.netns import run_in_netns
from netlab.lab import lifecycle
from netlab.node.runtime import (
    ContainerSpec,
    ContainerState,
    PodSpec,
    Runtime,
    Sandbox,
    cleanup_lab,
)
from netlab.topology import LabPlan, load_topology, plan_lab

T = TypeVar("T")
PY = sys.executable  # a host command every container can run


@dataclass
class RuntimeLab:
    name: str
    path: Path
    plan: LabPlan
    runtimes: dict[str, Runtime] = field(default_factory=dict)

    def runtime(self, node: str) -> Runtime:
        if node not in self.runtimes:
            self.runtimes[node] = Runtime(self.name, self.plan.node(node))
        return self.runtimes[node]


def as_kubelet(rt: Runtime, fn: Callable[[], T]) -> T:
    """Call the runtime the way the kubelet will: from inside the node's netns."""
    return run_in_netns(rt.node.netns, fn)


def new_lab(directory: Path) -> Iterator[RuntimeLab]:
    data = topology(unique_lab(), workers=2, external=False)
    path = write_topology(directory, data)
    try:
        lifecycle.up(path, control_plane=False)
        yield RuntimeLab(data["name"], path, plan_lab(load_topology(path)))
    finally:
        try:
            cleanup_lab(data["name"])
        finally:
            lifecycle.down(data["name"])


class Pods:
    """Creates pods through the runtime; removes them (no grace) after the test."""

    def __init__(self, lab: RuntimeLab):
        self.lab = lab
        self.created: list[tuple[Runtime, Sandbox]] = []

    def sandbox(self, node: str, name: str, namespace: str = "default") -> Sandbox:
        rt = self.lab.runtime(node)
        pod = PodSpec(namespace, name, str(uuid.uuid4()))
        sb = as_kubelet(rt, lambda: rt.run_pod_sandbox(pod))
        self.created.append((rt, sb))
        return sb

    def run(self, node: str, name: str, *command: str, restart_count: int = 0,
            **spec: Any) -> tuple[Sandbox, ContainerState]:
        """A pod with one container ``c`` running ``command``."""
        sb = self.sandbox(node, name)
        rt = self.lab.runtime(node)
        st = as_kubelet(rt, lambda: rt.start_container(
            sb, ContainerSpec("c", command=command, **spec), restart_count))
        return sb, st

    def cleanup(self) -> None:
        for rt, sb in self.created:
            as_kubelet(rt, lambda rt=rt, sb=sb: rt.remove_pod_sandbox(sb, grace_seconds=0))


def log_text(state: ContainerState) -> str:
    """The container's output without the CRI prefix (timestamp, stream, tag)."""
    try:
        raw = Path(state.log_path).read_text()
    except FileNotFoundError:
        return ""
    # A partial record (tag P: conmon read part of a line) continues on the next one.
    return "".join(parts[3] + ("" if parts[2] == "P" else "\n")
                   for parts in (line.split(" ", 3) for line in raw.splitlines()
                                 if line.count(" ") >= 3))


def wait_log(state: ContainerState, text: str, timeout: float = 10.0) -> str:
    return wait_for(lambda: text in log_text(state) and log_text(state), timeout,
                    what=f"{text!r} in {state.log_path}")


def wait_exited(rt: Runtime, sb: Sandbox, name: str = "c", timeout: float = 15.0) -> ContainerState:
    return wait_for(lambda: (lambda st: st if st and st.state == "exited" else None)(
        rt.container_status(sb, name)), timeout, what=f"container {name} to exit")
