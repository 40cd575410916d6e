"""The controller manager: one process, one shared informer per resource, every controller.

As in kube-controller-manager, the controllers share a single API client and
a single informer per resource (``SharedInformers``), so the pods are listed
and watched once however many controllers look at them. Start-up order is
what makes the process restart-safe:

1. every controller registers its event handlers (and indexes);
2. the informers start and the manager waits until each has its first list;
3. only then do the workers reconcile.

A controller never acts on a partial view, so a ``kill -9`` at any moment
and a restart by the supervisor converge to exactly the desired state. The
node lifecycle controller (``netlab.master.nodelifecycle``) runs here too,
on the same informers, when it is enabled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from netlab.client import Client
from netlab.client.workqueue import SharedInformers, run_together
from netlab.master.controllers.base import Context, Controller, Options
from netlab.master.controllers.cronjob import CronJobController
from netlab.master.controllers.daemonset import DaemonSetController
from netlab.master.controllers.deployment import DeploymentController
from netlab.master.controllers.disruption import DisruptionController
from netlab.master.controllers.endpoints import EndpointsController
from netlab.master.controllers.endpointslice import EndpointSliceController
from netlab.master.controllers.endpointslicemirroring import EndpointSliceMirroringController
from netlab.master.controllers.events import EventRecorder
from netlab.master.controllers.gc import GarbageCollector
from netlab.master.controllers.hpa import HPAController
from netlab.master.controllers.job import JobController
from netlab.master.controllers.namespace import NamespaceController
from netlab.master.controllers.persistentvolume import PersistentVolumeController
from netlab.master.controllers.pvcprotection import PVCProtectionController
from netlab.master.controllers.replicaset import ReplicaSetController
from netlab.master.controllers.replication import ReplicationManager
from netlab.master.controllers.rootcacert import RootCACertPublisher
from netlab.master.controllers.serviceaccount import ServiceAccountController
from netlab.master.controllers.statefulset import StatefulSetController

log = logging.getLogger("netlab.controllers.manager")

# Name (as in --controllers) -> class, in the order they are built.
CONTROLLERS: dict[str, Callable[[Context], Controller]] = {
    "deployment": DeploymentController,
    "replicaset": ReplicaSetController,
    "replicationcontroller": ReplicationManager,
    "serviceaccount": ServiceAccountController,
    "root-ca-cert-publisher": RootCACertPublisher,
    "endpoints": EndpointsController,
    "endpointslice": EndpointSliceController,
    "endpointslicemirroring": EndpointSliceMirroringController,
    "job": JobController,
    "cronjob": CronJobController,
    "disruption": DisruptionController,
    "daemonset": DaemonSetController,
    "statefulset": StatefulSetController,
    "horizontalpodautoscaling": HPAController,
    "persistentvolume-binder": PersistentVolumeController,
    "pvc-protection": PVCProtectionController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
}
NODE_LIFECYCLE = "nodelifecycle"
ALL = (*CONTROLLERS, NODE_LIFECYCLE)


class ControllerManager:
    def __init__(self, client: Client, options: Optional[Options] = None,
                 enabled: Optional[list[str]] = None,
                 node_lifecycle: Optional[tuple[float, float]] = None) -> None:
        """``node_lifecycle``: (grace, eviction timeout) to run that controller too."""
        self.client = client
        self.informers = SharedInformers(client)
        self.events = EventRecorder(client)
        self.ctx = Context(client, self.informers, self.events, options or Options())
        wanted = set(enabled or ALL)
        unknown = wanted - set(ALL)
        if unknown:
            raise ValueError(f"unknown controllers: {', '.join(sorted(unknown))}")
        self.controllers = [factory(self.ctx) for name, factory in CONTROLLERS.items()
                            if name in wanted]
        self.node_lifecycle: Any = None
        if NODE_LIFECYCLE in wanted and node_lifecycle is not None:
            from netlab.master.nodelifecycle import NodeLifecycleController

            grace, eviction = node_lifecycle
            self.node_lifecycle = NodeLifecycleController(
                client, self.informers, grace, eviction,
                recorder=self.ctx.recorder("node-controller"))
        self.synced = asyncio.Event()

    async def _api_ready(self) -> None:
        """Wait for the API server (it may be starting alongside us), quietly."""
        delay = 0.1
        while not await self.client.readyz():
            if delay == 0.1:
                log.info("waiting for the API server")
            await asyncio.sleep(delay)  # retry backoff while the server is unreachable
            delay = min(delay * 2, 2.0)

    async def run(self) -> None:
        """Start everything; return only when cancelled."""
        await self._api_ready()
        self.events.start()
        self.informers.start()
        try:
            await self.informers.wait_synced()
            counts = {i.resource: len(i.cache) for i in self.informers._informers.values()}
            log.info("caches synced (%s); starting %s", ", ".join(
                f"{n} {r}" for r, n in sorted(counts.items())),
                ", ".join(c.name for c in self.controllers)
                + (", nodelifecycle" if self.node_lifecycle else ""))
            self.synced.set()
            loops = [c.run() for c in self.controllers]
            if self.node_lifecycle is not None:
                loops.append(self.node_lifecycle.run())
            await run_together(loops)
        finally:
            await self.informers.stop()
            await self.events.stop()
