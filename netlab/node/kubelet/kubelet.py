"""The kubelet: the parts put together, in the order a restart needs them.

``Kubelet.run``:

1. adopts what the runtime still runs (sandboxes and containers from before a
   restart: same processes, IPs and restart counts; nothing is started);
2. serves its HTTPS endpoint (logs, stats) on the node's underlay address;
3. registers the Node (retrying until the API server answers);
4. starts the informers: all Nodes (the overlay's peers, and our own Node's
   deletion) and the Pods bound to this node (``spec.nodeName=<node>``), whose
   events feed the pod workers; once the pod list is complete, sandboxes of
   pods the API no longer has are cleaned up;
5. runs the heartbeat, the overlay agent and the metrics loop until SIGTERM.

On SIGTERM it stops its own tasks and leaves every pod running: pods outlive
the kubelet, and the next one adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import aiohttp

from netlab.api.timefmt import format_time
from netlab.api.views import meta_of, uid_of
from netlab.client import Client
from netlab.client.informer import Informer
from netlab.kernel.processes import trim_heap
from netlab.node.kubelet import metrics
from netlab.node.kubelet.certs import ensure_serving_cert
from netlab.node.kubelet.config import KubeletConfig
from netlab.node.kubelet.cri import AsyncRuntime
from netlab.node.kubelet.events import NORMAL, EventRecorder, node_ref
from netlab.node.kubelet.node import NodeAgent
from netlab.node.kubelet.pods import PodWorkers, Services
from netlab.node.kubelet.restarts import Backoff
from netlab.node.kubelet.server import KubeletServer
from netlab.node.kubelet.startgate import StartGate
from netlab.node.kubelet.statussync import StatusManager
from netlab.node.overlay import OverlayAgent
from netlab.node.runtime import ContainerError, ExecSpec, Runtime, SandboxError
from netlab.node.runtime.containers import AttachInfo
from netlab.node.runtime.paths import lab_state_dir

log = logging.getLogger("netlab.kubelet")
SERVICES_SYNC_TIMEOUT = 5.0  # seconds the first pod starts wait for the Services list


class Kubelet:
    def __init__(self, cfg: KubeletConfig) -> None:
        self.cfg = cfg
        self.started = format_time(datetime.now(timezone.utc))
        self.client = Client(cfg.api_server, token=cfg.token,
                             ca_file=str(cfg.ca_file) if cfg.ca_file else None, timeout=10.0)
        self.runtime = Runtime(cfg.lab, cfg.node_plan(), pod_mtu=cfg.pod_mtu)
        self.cri = AsyncRuntime(self.runtime)
        self.events = EventRecorder(self.client, cfg.node)
        self.status = StatusManager(self.client)
        self.node_informer = Informer(self.client, "nodes")
        self.node = NodeAgent(cfg, self.client, self.events,
                              lambda: self.node_informer.get(cfg.node))
        self.overlay = OverlayAgent(cfg.node, self.cri.call)
        self.http: aiohttp.ClientSession | None = None
        self.workers: PodWorkers | None = None  # set in run(): needs the loop
        self.pod_informer = Informer(self.client, "pods",
                                     field_selector=f"spec.nodeName={cfg.node}")
        # Services, for the containers' KUBERNETES_SERVICE_HOST and kin (serviceenv.py).
        self.service_informer = Informer(self.client, "services")
        self.server: KubeletServer | None = None
        self._summary: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task] = []

    # -- lookups for the server -----------------------------------------------------------

    def summary(self) -> dict[str, Any] | None:
        return self._summary

    async def log_source(self, namespace: str, pod: str, container: str, previous: bool
                         ) -> tuple[int, str] | tuple[Path, Callable[[], Any]]:
        """Where a container's log is, and how to know it has ended; or (code, message)."""
        assert self.workers is not None
        worker = self.workers.find(namespace, pod)
        if worker is None or worker.sandbox is None:
            return 404, f'pod "{pod}" in namespace "{namespace}" is not running on node ' \
                        f'"{self.cfg.node}"'
        uid = worker.uid
        path = await self.cri.call(self.runtime.log_path, uid, container, previous)
        if path is None or not path.exists():
            if previous:
                return 400, f'previous terminated container "{container}" in pod "{pod}" ' \
                            "not found"
            reason = worker.waiting.get(container, ("ContainerCreating", ""))[0]
            return 400, f'container "{container}" in pod "{pod}" is waiting to start: {reason}'
        attempt = int(path.name.split(".")[0])

        async def finished() -> bool:
            st = await self.cri.call(self.runtime.container_status, uid, container, attempt)
            return st is None or st.state == "exited"

        return path, finished

    async def attach_source(self, namespace: str, pod: str, container: str
                            ) -> tuple[int, str] | tuple[Path, Callable[[], Any]] | AttachInfo:
        """A running container's conmon attach endpoints when it was started with stdin
        or a terminal; else its log, as ``log_source`` (output-only attach). A container
        that is not running cannot be attached to: upstream's kubelet looks for it among
        the running ones only (GetAttach), and ``kubectl run -i`` then shows the log,
        which holds the output of a command that ended before the attach."""
        assert self.workers is not None
        worker = self.workers.find(namespace, pod)
        if worker is not None and worker.sandbox is not None:
            info = await self.cri.call(self.runtime.attach_info, worker.uid, container)
            if info is None:
                return 500, f"container {container} not found in pod {pod}_{namespace}"
            if info.stdin or info.tty:
                return info
        return await self.log_source(namespace, pod, container, False)

    async def exec_spec(self, namespace: str, pod: str, container: str, argv: list[str]
                        ) -> tuple[int, str] | ExecSpec:
        """How to run ``argv`` in a running container (the runtime's exec, as ``netlab
        exec`` uses it); or (code, message) with the kubelet's wording."""
        assert self.workers is not None
        worker = self.workers.find(namespace, pod)
        if worker is None or worker.sandbox is None:
            return 404, "pod does not exist"
        try:
            return await self.cri.call(self.runtime.exec_in_container, worker.uid, container,
                                       argv)
        except (ContainerError, SandboxError):
            return 400, f'container not found ("{container}")'

    async def port_forward_target(self, namespace: str, pod: str
                                  ) -> tuple[int, str] | tuple[str, str, str]:
        """(pod IP, pod UID, pod network namespace) to forward ports to; or (code,
        message)."""
        assert self.workers is not None
        worker = self.workers.find(namespace, pod)
        if worker is None or worker.sandbox is None or not worker.sandbox.ip:
            return 404, "pod does not exist"
        return worker.sandbox.ip, worker.uid, worker.sandbox.netns

    # -- loops ------------------------------------------------------------------------------

    async def _metrics_loop(self) -> None:
        """Measure usage every metrics period; publish it on the Node and for the server."""
        await self.node.registered.wait()
        window = 1.0
        published: Any = None  # the node's usage last written on the Node, and when
        published_at = 0.0
        trimmed_for: frozenset[str] | None = None  # the pods when the heap was last trimmed
        while True:
            began = time.monotonic()
            try:
                usage = await self.cri.call(self.runtime.usage, window)
                assert self.workers is not None
                names = self.workers.names()
                now = datetime.now(timezone.utc)
                self._summary = metrics.summary(self.cfg.node, usage, names, now, self.started)
                if metrics.usage_is_news(usage, published, any(u in names for u in usage.pods),
                                         began - published_at, self.cfg.cpu_millis,
                                         self.cfg.memory_bytes,
                                         self.cfg.status_report_interval):
                    await self.node.publish_usage(metrics.usage_annotation(
                        usage, names, now,
                        round(usage.node.window, 1) or self.cfg.metrics_interval))
                    published, published_at = usage.node, began
            except asyncio.CancelledError:
                raise
            except Exception as err:  # measuring is best effort; pods come first
                log.info("usage not published: %s", err)
            # Trimming walks the whole heap (1 ms): only after the pods changed, which
            # is when a burst has grown it, not every period of an idle node.
            pods_now = frozenset(self.workers.names()) if self.workers is not None else None
            if pods_now != trimmed_for:
                trim_heap()
                trimmed_for = pods_now
            # The metrics period (kubelet's housekeeping interval).
            await asyncio.sleep(max(0.0, self.cfg.metrics_interval - (time.monotonic() - began)))

    def _on_node(self, kind: str, node: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.overlay.node_event(kind, node)
        if kind == "DELETED" and meta_of(node).get("name") == self.cfg.node:
            self.node.node_deleted()

    async def _pods_synced(self) -> None:
        await self.pod_informer.synced.wait()
        assert self.workers is not None
        self.workers.reap_orphans({uid_of(p)
                                   for p in self.pod_informer.items()})

    # -- lifecycle --------------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext:
        directory = self.cfg.cert_dir or lab_state_dir(self.cfg.lab) / "kubelet" / self.cfg.node
        cert, key = ensure_serving_cert(directory, self.cfg.host_ip, self.cfg.node)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (SIGTERM); a failure to start raises."""
        body = asyncio.ensure_future(self._run())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({body, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            body.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await body  # re-raises what made the kubelet fail to start
            await self.shutdown()

    async def _run(self) -> None:
        cfg = self.cfg
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        start_gate = StartGate(cfg.parallel_starts)
        self.events.defer = start_gate.has_room  # events yield to pods queued to start
        self.workers = PodWorkers(Services(cfg, self.cri, self.client, self.events, self.status,
                                           Backoff(cfg.backoff_base, cfg.backoff_max),
                                           self.http, start_gate,
                                           services=self.service_informer.items))
        adopted = await self.cri.call(self.runtime.adopt)
        if adopted:
            log.info("adopted %d pods: %s", len(adopted),
                     ", ".join(f"{a.sandbox.namespace}/{a.sandbox.name}" for a in adopted))
        self.workers.set_adopted(adopted)
        self.events.start()
        self.server = KubeletServer(self, cfg.token)
        await self.server.start(cfg.host_ip, cfg.port, self._tls())
        self.events.record(node_ref(cfg.node), NORMAL, "Starting", "Starting kubelet.")
        await self.node.register()
        self.node_informer.add_handler(self._on_node)
        self.pod_informer.add_handler(self.workers.handle)
        self._tasks = [self.node_informer.start(), self.service_informer.start()]
        # Containers get the Services' variables as they start, so the Services come
        # first (a kubelet that cannot list them within the deadline starts pods anyway).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.service_informer.synced.wait(), SERVICES_SYNC_TIMEOUT)
        self._tasks += [self.pod_informer.start(),
                       asyncio.ensure_future(self._pods_synced()),
                       asyncio.ensure_future(self.node.run()),
                       asyncio.ensure_future(self._metrics_loop())]
        if cfg.overlay == "vxlan":
            self._tasks.append(asyncio.ensure_future(self.overlay.run(self.node_informer.synced)))
        log.info("kubelet of node %s running", cfg.node)
        await asyncio.Future()  # until cancelled by run()

    async def shutdown(self) -> None:
        log.info("stopping; pods keep running")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.workers is not None:
            await self.workers.stop()
            if self.workers.s.puller is not None:
                await self.workers.s.puller.close()
        await self.events.drain(timeout=1.0)
        await self.events.stop()
        if self.server is not None:
            await self.server.stop()
        if self.http is not None:
            await self.http.close()
        await self.client.close()
        self.cri.close()
