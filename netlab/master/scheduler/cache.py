"""The scheduler's cache: every node, and what is placed on it, kept current by events.

kube-scheduler does not ask the API what is on a node before each decision;
it keeps a ``NodeInfo`` per node, updated from its informers, and *assumes*
each pod onto its chosen node the moment it decides, before the binding is
even sent. The next pod is then judged against that assumption, so bindings
can run in the background, many at a time, without two pods being promised
the same free cpu.

An assumed pod becomes a bound one when the informer reports it with its
``nodeName`` (whichever comes first, that event or the binding's answer), and
is forgotten if its binding fails. Pods that finished (Succeeded, Failed)
hold nothing, as in kube-scheduler.

The cache reports whether a change could let an unschedulable pod fit now
(a node appeared or changed what filters read, a placed pod went away), so the
scheduling queue retries those pods on exactly such events.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api.views import meta_of, name_of, pod_spec, pod_status
from netlab.master.scheduler.nodeinfo import NodeInfo, PodInfo, pod_info

TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_key(pod: dict[str, Any]) -> str:
    meta = meta_of(pod)
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


def holds_resources(pod: dict[str, Any]) -> bool:
    """A bound pod that has not finished: it counts against its node."""
    return bool(pod_spec(pod).get("nodeName")) and \
        pod_status(pod).get("phase") not in TERMINAL_PHASES


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._placed: dict[str, str] = {}  # pod key -> node name (bound or assumed)
        self._assumed: set[str] = set()
        self._list: Optional[list[NodeInfo]] = None  # nodes that exist, cached between changes

    # --- nodes ---------------------------------------------------------------------------------

    def _node(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            # Pods may be seen before their node: keep their accounting until it shows up.
            info = self.nodes[name] = NodeInfo(name=name, exists=False)
        return info

    def update_node(self, node: dict[str, Any]) -> bool:
        """Apply an added or modified Node; True if pods that did not fit might now."""
        name = name_of(node)
        info = self._node(name)
        before = info.filter_signature() if info.exists else None
        info.set_node(node)
        self._list = None
        return before != info.filter_signature()

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        self._list = None
        if info.pods:
            info.exists = False  # its pods are still accounted for until they go
        else:
            del self.nodes[name]

    def node_list(self) -> list[NodeInfo]:
        """The nodes pods may be placed on (those whose Node object exists)."""
        if self._list is None:
            self._list = sorted((n for n in self.nodes.values() if n.exists),
                                key=lambda n: n.name)
        return self._list

    # --- pods ----------------------------------------------------------------------------------

    def node_of(self, key: str) -> Optional[str]:
        return self._placed.get(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def assume(self, pod: PodInfo, node: str) -> None:
        """Place ``pod`` on ``node`` now, ahead of its binding."""
        self._drop(pod.key)
        self._node(node).add_pod(pod)
        self._placed[pod.key] = node
        self._assumed.add(pod.key)

    def forget(self, key: str) -> None:
        """A binding failed: undo the assumption (a bound pod is left alone)."""
        if key in self._assumed:
            self._drop(key)

    def update_pod(self, pod: dict[str, Any]) -> bool:
        """Apply an added or modified Pod; True if it freed room on a node."""
        key = pod_key(pod)
        node = pod_spec(pod).get("nodeName")
        if node and holds_resources(pod):  # (which has a nodeName)
            was = self._placed.get(key)
            if was == node:
                # A status update of a pod already counted, or the binding of an assumed
                # one confirmed: its requirements are those we assumed it with.
                self._assumed.discard(key)
                return False
            self._drop(key)
            self._node(node).add_pod(pod_info(pod))
            self._placed[key] = node
            return was is not None and was != node
        if key in self._assumed and not node and \
                pod_status(pod).get("phase") not in TERMINAL_PHASES:
            return False  # still pending in the API while its binding is in flight
        return self._drop(key)

    def remove_pod(self, pod: dict[str, Any]) -> bool:
        """A deleted Pod; True if it freed room on a node."""
        return self._drop(pod_key(pod))

    def _drop(self, key: str) -> bool:
        self._assumed.discard(key)
        node = self._placed.pop(key, None)
        if node is None:
            return False
        info = self.nodes.get(node)
        if info is not None:
            info.remove_pod(key)
            if not info.exists and not info.pods:
                del self.nodes[node]
        return True
