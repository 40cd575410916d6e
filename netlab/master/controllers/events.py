"""Events the controllers record: ``kubectl describe`` shows why things happened.

Kubernetes' controllers tell users what they did through core/v1 Events
(``ScalingReplicaSet``, ``SuccessfulCreate``, ``SuccessfulRescale``,
``Completed``...), attached to the object they acted for, with the controller's
name as the event's source. Each controller gets its own recorder from
``netlab.client.events`` (never blocking a reconcile, aggregating repeats);
this module only hands them out and starts and stops them together.
"""

from __future__ import annotations

from netlab.client import Client
from netlab.client.events import NORMAL, WARNING
from netlab.client.events import EventRecorder as ComponentRecorder

__all__ = ["NORMAL", "WARNING", "ComponentRecorder", "EventRecorder"]


class EventRecorder:
    """The controller manager's recorders, one per controller name."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._recorders: dict[str, ComponentRecorder] = {}
        self._started = False

    def for_component(self, component: str) -> ComponentRecorder:
        recorder = self._recorders.get(component)
        if recorder is None:
            recorder = ComponentRecorder(self.client, component, senders=1)
            self._recorders[component] = recorder
            if self._started:
                recorder.start()
        return recorder

    def start(self) -> None:
        self._started = True
        for recorder in self._recorders.values():
            recorder.start()

    async def stop(self) -> None:
        for recorder in self._recorders.values():
            await recorder.stop()
