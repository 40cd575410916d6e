"""Pod workers: one task per pod, which makes the runtime match the Pod object.

As in the real kubelet, all work on a pod goes through that pod's worker, one
sync at a time, so nothing about one pod ever races with itself, while
different pods proceed in parallel. A worker sleeps until something wakes it:
a new version of the Pod (the informer), a container exit (a pidfd, see
``cri``), a probe result, the end of a back-off, or the slow safety-net
resync. Each sync is level-based: it reads the runtime's state and converges,
so a lost wake-up or a kubelet restart costs nothing.

A sync, for a pod that should run:

1. the sandbox (netns, veth, IP): created, or adopted after a kubelet restart
   (recreated if the adoption found it broken: ``SandboxChanged``);
2. init containers, in order, each to success (``restartPolicy`` decides what
   a failure means);
3. each container: start it (env and argv from ``spec``), keep watching it,
   and when it has exited apply ``restartPolicy`` with the crash-loop
   back-off (``restarts``), waiting as ``CrashLoopBackOff``; a failed liveness
   or startup probe kills it first;
4. the status (``status``), handed to the status manager.

A pod marked for deletion (or gone from the API, or found orphaned after a
restart) is terminated instead: SIGTERM to every container, the grace period,
SIGKILL (the runtime), a final status, the sandbox removed (netns, veth, IP),
then the Pod deleted with grace 0 and a uid precondition, which is what lets
the API server finally drop it. Events tell every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

import aiohttp

from netlab.api.persistentvolumes import pod_claim_volumes
from netlab.api.serviceaccount_admission import ROOT_CA_CONFIGMAP
from netlab.api.timefmt import format_time
from netlab.api.views import Container, is_terminating, meta_of, pod_spec, pod_status
from netlab.client import APIError, Client, resource_path
from netlab.images import UNKNOWN_IMAGE_REASON, builtin_image
from netlab.images.store import ImageStore
from netlab.node.kubelet import claims, envsources, ephemeral, serviceenv, volumemanager
from netlab.node.kubelet import status as podstatus
from netlab.node.kubelet import volumes as volplugins
from netlab.node.kubelet.atomic_writer import FileProjection
from netlab.node.kubelet.config import KubeletConfig
from netlab.node.kubelet.cri import AsyncRuntime, ExitWatch
from netlab.node.kubelet.dns import read_resolv_conf, sandbox_spec
from netlab.node.kubelet.events import NORMAL, WARNING, EventRecorder, pod_ref
from netlab.node.kubelet.images import (
    PULL_BACKOFF_BASE,
    PULL_BACKOFF_MAX,
    ImagePuller,
    PodPulls,
    needs_pull,
)
from netlab.node.kubelet.prober import PodProber
from netlab.node.kubelet.restarts import Backoff, should_restart
from netlab.node.kubelet.spec import (
    CONFIG_ERROR,
    CREATE_ERROR,
    ContainerConfigError,
    PodContext,
    container_env,
    container_spec,
    image_id,
)
from netlab.node.kubelet.startgate import StartGate
from netlab.node.kubelet.statussync import StatusManager
from netlab.node.kubelet.tokens import TokenError, TokenManager
from netlab.node.runtime import AdoptedPod, ContainerError, ContainerState, CreateError, Sandbox
from netlab.paths import local_path_dir
from netlab.units import format_duration

log = logging.getLogger("netlab.kubelet.pods")

RETRY_START, RETRY_MAX = 0.5, 30.0
# Seconds between attempts to create a container whose ConfigMap/Secret is missing.
CONFIG_RETRY_START, CONFIG_RETRY_MAX = 1.0, 10.0
MIN_GRACE = 2  # seconds: the kubelet's minimumGracePeriodInSeconds
# How often a running pod's configMap/secret/downwardAPI/projected volumes are written
# again from the API (upstream: the pod's periodic sync, with a cache TTL).
VOLUME_RESYNC = 10.0
# How long a namespace's kube-root-ca.crt, which every pod's service-account volume
# reads, is reused (upstream's cache-based object manager keeps objects a minute; its
# default watch-based one makes no request per pod). The lab's CA never changes; a
# GET per pod start was one of the few API requests each pod costs.
ROOT_CA_TTL = 60.0


@dataclass
class Services:
    """What every pod worker shares."""

    cfg: KubeletConfig
    cri: AsyncRuntime
    client: Client
    events: EventRecorder
    status: StatusManager
    backoff: Backoff
    http: aiohttp.ClientSession  # for httpGet probes
    start_slots: StartGate  # pods starting for the first time, at once
    # The host's image store, shared by every lab (netlab image load, busybox at set-up).
    images: ImageStore = field(default_factory=ImageStore)
    puller: Optional[ImagePuller] = None  # pulls into ``images``; made from it by default
    # ImagePullBackOff: keyed by (pod uid, image), timed from the failed pull's end.
    pull_backoff: Backoff = field(default_factory=lambda: Backoff(PULL_BACKOFF_BASE,
                                                                  PULL_BACKOFF_MAX))

    tokens: Optional[TokenManager] = None  # projected service-account tokens
    # Each namespace's kube-root-ca.crt ConfigMap and when it was read (ROOT_CA_TTL).
    root_ca: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    # The Services the kubelet's informer holds, for the containers' variables.
    services: Callable[[], list[dict[str, Any]]] = list

    def __post_init__(self) -> None:
        if self.puller is None:
            self.puller = ImagePuller(self.images)
        if self.tokens is None:
            client = self.client

            async def request(namespace: str, account: str, body: dict[str, Any]) -> Any:
                return await client.request(
                    "POST", resource_path("serviceaccounts", namespace, account, "token"),
                    body=body)

            self.tokens = TokenManager(request)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text, as in kubelet's back-off messages (``1m20s``): whole
    seconds, milliseconds below one."""
    return format_duration(round(seconds * 1000) / 1000 if seconds < 1 else round(seconds))


def _relevant(pod: dict[str, Any]) -> tuple:
    """What in a Pod can change what the worker does (a status echo does not)."""
    meta = meta_of(pod)
    return (meta.get("deletionTimestamp"), meta.get("deletionGracePeriodSeconds"),
            meta.get("labels"), meta.get("annotations"), pod.get("spec"))


class PodWorker:
    def __init__(self, services: Services, uid: str, on_done: Callable[[str], None]) -> None:
        self.s = services
        self.uid = uid
        self.on_done = on_done
        self.pod: Optional[dict[str, Any]] = None  # the latest Pod (None: gone from the API)
        self.known: Optional[dict[str, Any]] = None  # the last Pod seen, even once gone
        self.removed = False
        self.adopted: Optional[AdoptedPod] = None
        self.sandbox: Optional[Sandbox] = None
        self.waiting: dict[str, tuple[str, str]] = {}  # container -> Waiting reason, message
        self.config_retry: dict[str, float] = {}  # container -> next config-error retry delay
        self.volume_paths: dict[str, str] = {}  # volume name -> host path, once ready
        self.volume_host_paths: set[str] = set()  # claim volumes that are static hostPaths
        self.volume_retry = CONFIG_RETRY_START
        self.kill: dict[tuple[str, int], str] = {}  # (container, attempt) -> why
        self.watches: dict[str, tuple[int, ExitWatch]] = {}
        self.prober = PodProber(self)
        self.image_ids: dict[str, str] = {}  # image as written -> imageID of what ran
        self.pulls = PodPulls(self, services.client, services.puller, services.pull_backoff)
        self.finished = False  # reached Succeeded/Failed: nothing runs again
        self.terminated = False
        self._torn_down = False
        self.rejected: Optional[tuple[str, str]] = None
        self.start_time = format_time(datetime.now(timezone.utc))
        self._once: set[Any] = set()
        self._wake = asyncio.Event()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at = 0.0
        self._retry = RETRY_START
        self.task: Optional[asyncio.Task] = None
        self.syncs = 0

    # -- inputs -------------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def update(self, pod: dict[str, Any]) -> None:
        old, self.pod, self.known = self.pod, pod, pod
        self.s.status.observed(pod)
        if old is None or _relevant(old) != _relevant(pod):
            self.wake()

    def removed_from_api(self, pod: Optional[dict[str, Any]]) -> None:
        self.pod, self.removed = None, True
        if pod is not None:
            self.known = pod
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wake_later(self, delay: float) -> None:
        """Wake in ``delay`` seconds (the earliest of all requested wake-ups wins)."""
        at = time.monotonic() + delay
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_later(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.wake()

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self.terminated:
                await self._wake.wait()
                self._wake.clear()
                try:
                    await self.sync()
                    self._retry = RETRY_START
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # a failed sync is retried, never fatal
                    log.warning("sync of pod %s failed: %s", self.describe(), err,
                                exc_info=not isinstance(err, (APIError, OSError)))
                    self.wake_later(self._retry)
                    self._retry = min(self._retry * 2, RETRY_MAX)
                if not self.terminated:
                    self.wake_later(self.s.cfg.sync_period)  # the safety-net resync
        finally:
            self._cancel_all()
            self.on_done(self.uid)

    def describe(self) -> str:
        meta = meta_of(self.pod or self.known or {})
        if meta:
            return f"{meta.get('namespace')}/{meta.get('name')}"
        sb = self.sandbox or (self.adopted.sandbox if self.adopted else None)
        if sb is not None:
            return f"{sb.namespace}/{sb.name}"
        return self.uid

    async def sync(self) -> None:
        self.syncs += 1
        pod = self.pod
        if pod is None or is_terminating(pod):
            await self.terminate()
            return
        if self.rejected is not None:
            self.s.status.set(pod, podstatus.rejected_status(pod, *self.rejected,
                                                             datetime.now(timezone.utc)))
            return
        phase = pod_status(pod).get("phase")
        if phase in podstatus.TERMINAL_PHASES:
            self.finished = True
            if self.sandbox is None and self.adopted is None:
                return  # finished before we knew it: nothing of it here, nothing to say
        if self.finished:
            if self.sandbox is None and self.adopted is not None:
                self.sandbox, self.adopted = self.adopted.sandbox, None  # keep its podIP
            self._cancel_all()
            await self._report()
            return
        if pod_spec(pod).get("hostNetwork") and self._first("hostNetwork"):
            self.event(pod, WARNING, "HostNetworkNotSupported",
                        "netlab gives every pod its own network namespace; hostNetwork is "
                        "ignored")
        if self.sandbox is None:
            # A pod's first start holds one of a few start slots to its first status:
            # a burst of pods then comes up in order, each quickly, instead of every
            # pod waiting for every other pod's sandbox before any container starts.
            async with self.s.start_slots:
                await self._setup(pod)
        else:
            await self._setup(pod)

    async def _setup(self, pod: dict[str, Any]) -> None:
        if not await self._ensure_sandbox(pod):
            await self._report()
            return
        if not await self._sync_volumes(pod):
            await self._report()
            return
        names = self._names(pod)
        observed = await self.s.cri.observe(self.uid, names)
        if await self._sync_init(pod, observed):
            await self._sync_containers(pod, observed)
            await ephemeral.sync(self, pod, observed)
        await self._report()

    # -- the sandbox --------------------------------------------------------------------------

    async def _ensure_sandbox(self, pod: dict[str, Any]) -> bool:
        if self.sandbox is not None:
            return True
        if self.adopted is not None:
            adopted, self.adopted = self.adopted, None
            if not adopted.problems and adopted.sandbox.state == "ready":
                self.sandbox = adopted.sandbox
                return True
            self.event(pod, NORMAL, "SandboxChanged",
                        f"Pod sandbox changed ({'; '.join(adopted.problems) or 'incomplete'}), "
                        "it will be killed and re-created.")
            await self.s.cri.stop_pod_sandbox(self.uid, 0)
        cfg = self.s.cfg
        config, warnings = sandbox_spec(pod, cfg.cluster_dns, cfg.cluster_domain,
                                        read_resolv_conf(cfg.resolv_conf))
        for warning in warnings:
            self.event(pod, WARNING, "DNSConfigForming", warning)
        try:
            self.sandbox = await self.s.cri.run_pod_sandbox(config)
        except Exception as err:
            self.event(pod, WARNING, "FailedCreatePodSandBox",
                        f"Failed to create pod sandbox: {err}")
            self.wake_later(self._retry)
            self._retry = min(self._retry * 2, RETRY_MAX)
            return False
        return True

    # -- volumes ------------------------------------------------------------------------------

    async def _sync_volumes(self, pod: dict[str, Any]) -> bool:
        """Set up (or refresh) every volume of the pod; True once all have been ready.
        A volume that fails gets upstream's FailedMount event; until it has been set
        up once the pod waits, its containers ContainerCreating, and later syncs try
        again."""
        volumes = pod_spec(pod).get("volumes") or []
        if not volumes:
            return True
        assert self.sandbox is not None
        pod_dir = self.sandbox.path
        wanted = volplugins.referenced(pod)
        try:
            sources = await self._fetch(wanted)
            claim_paths, claim_failed = await self._claim_paths(pod)
        except (APIError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            # The API server is away: volumes set up once keep their files and the
            # containers are still looked after (restarts go on); a later sync refreshes.
            log.info("volumes of pod %s not refreshed: %s", self.describe(), err)
            self.wake_later(self.volume_retry)
            self.volume_retry = min(self.volume_retry * 2, CONFIG_RETRY_MAX)
            return all(str(v.get("name") or "") in self.volume_paths for v in volumes)
        context = self._context()
        tokens, token_failed = await self._projected_tokens(pod, volumes)

        def work() -> tuple[dict[str, str], dict[str, str]]:
            ready, failed = {}, {**token_failed, **claim_failed}
            for volume in volumes:
                name = str(volume.get("name") or "")
                if name in failed:
                    continue
                try:
                    ready[name] = volumemanager.setup_volume(pod_dir, volume, pod, context,
                                                             sources, tokens.get(name),
                                                             claim_paths.get(name))
                except (volplugins.VolumeError, OSError) as err:
                    failed[name] = str(err)
            return ready, failed

        ready, failed = await self.s.cri.call(work)
        # A volume set up once stays as it was when a refresh fails (its ConfigMap was
        # deleted): the running containers keep it, and their sync goes on.
        self.volume_paths.update(ready)
        self.volume_host_paths.update(name for name, where in claim_paths.items()
                                      if name in ready and not where.provisioned)
        for name, message in failed.items():
            if self._first(("FailedMount", name, message)):
                self.event(pod, WARNING, "FailedMount",
                           f'MountVolume.SetUp failed for volume "{name}" : {message}')
        if failed:
            self.wake_later(self.volume_retry)
            self.volume_retry = min(self.volume_retry * 2, CONFIG_RETRY_MAX)
        else:
            self.volume_retry = CONFIG_RETRY_START
        if wanted - {(envsources.CONFIGMAP, ROOT_CA_CONFIGMAP)} or \
                any(volplugins.volume_type(v) == "downwardAPI" for v in volumes):
            # The pod's own ConfigMaps and Secrets: their changes reach the files soon.
            # (The service-account volume every pod has changes with its token, which
            # the periodic resync renews in time, and the lab's CA, which is fixed.)
            self.wake_later(VOLUME_RESYNC)
        return all(str(v.get("name") or "") in self.volume_paths for v in volumes)

    async def _projected_tokens(self, pod: dict[str, Any], volumes: list[dict[str, Any]]
                                ) -> tuple[dict[str, dict[str, FileProjection]], dict[str, str]]:
        """The token files of each projected volume's serviceAccountToken sources, by
        volume name, and the volumes whose token could not be had (with why)."""
        assert self.s.tokens is not None
        m = meta_of(pod)
        account = str(pod_spec(pod).get("serviceAccountName") or "default")
        files: dict[str, dict[str, FileProjection]] = {}
        failed: dict[str, str] = {}
        for volume in volumes:
            projected = volume.get("projected") or {}
            wanted = [s["serviceAccountToken"] for s in projected.get("sources") or []
                      if isinstance(s, dict) and s.get("serviceAccountToken")]
            if not wanted:
                continue
            name = str(volume.get("name") or "")
            mode = volplugins.file_mode(projected.get("defaultMode"))
            try:
                files[name] = {str(src.get("path") or "token"): FileProjection(
                    (await self.s.tokens.token(
                        str(m.get("namespace") or "default"), account, str(m.get("name")),
                        str(m.get("uid")), str(src.get("audience") or ""),
                        src.get("expirationSeconds"))).encode(), mode) for src in wanted}
            except TokenError as err:
                failed[name] = str(err)
        return files, failed

    async def _claim_paths(self, pod: dict[str, Any]
                           ) -> tuple[dict[str, claims.ClaimPath], dict[str, str]]:
        """Each claim volume's bound volume on the host, by volume name, and the claim
        volumes that cannot be mounted yet (not found, not bound: the pod waits), with
        why. The claim and its volume are read afresh on each try."""
        namespace = claims.pod_namespace(pod)
        root = str(local_path_dir(self.s.cfg.lab))
        found: dict[str, claims.ClaimPath] = {}
        failed: dict[str, str] = {}
        for volume_name, claim_name in pod_claim_volumes(pod):
            claim = await self._get_or_none("persistentvolumeclaims", claim_name, namespace)
            pv = None
            wanted = ((claim or {}).get("spec") or {}).get("volumeName")
            if claim is not None and wanted:
                pv = await self._get_or_none("persistentvolumes", str(wanted), None)
            try:
                found[volume_name] = claims.resolve(claim, pv, namespace, claim_name, root)
            except volplugins.VolumeError as err:
                failed[volume_name] = str(err)
        return found, failed

    async def _get_or_none(self, resource: str, name: str,
                           namespace: Optional[str]) -> Optional[dict[str, Any]]:
        try:
            return await self.s.client.get(resource, name, namespace)
        except APIError as err:
            if err.not_found:
                return None
            raise

    async def _fetch(self, wanted: set[tuple[str, str]]) -> dict:
        """GET each named ConfigMap and Secret of the pod's namespace (None: not found)."""
        namespace = meta_of(self.pod or self.known or {}).get("namespace") or "default"
        found: dict = {}
        for kind, name in sorted(wanted):
            root_ca = (kind, name) == (envsources.CONFIGMAP, ROOT_CA_CONFIGMAP)
            held = self.s.root_ca.get(namespace) if root_ca else None
            if held is not None and time.monotonic() - held[0] < ROOT_CA_TTL:
                found[(kind, name)] = held[1]
                continue
            try:
                found[(kind, name)] = await self.s.client.get(kind + "s", name, namespace)
            except APIError as err:
                if not err.not_found:
                    raise
                found[(kind, name)] = None  # not kept: the next sync asks again
            if root_ca and found[(kind, name)] is not None:
                self.s.root_ca[namespace] = (time.monotonic(), found[(kind, name)])
        return found

    # -- containers ---------------------------------------------------------------------------

    @staticmethod
    def _names(pod: dict[str, Any]) -> list[str]:
        spec = pod_spec(pod)
        return [c.get("name", "") for c in (spec.get("initContainers") or []) +
                (spec.get("containers") or []) + (spec.get("ephemeralContainers") or [])]

    async def _sync_init(self, pod: dict[str, Any],
                         observed: dict[str, tuple[Optional[ContainerState], Any]]) -> bool:
        """Run init containers in order; True once all have succeeded."""
        policy = pod_spec(pod).get("restartPolicy") or "Always"
        for c in pod_spec(pod).get("initContainers") or []:
            name = c.get("name", "")
            cur = observed.get(name, (None, None))[0]
            if cur is None:
                await self._start(pod, c, 0, init=True)
                return False
            if cur.state in ("created", "running"):
                if cur.state == "running":
                    self._watch(name, cur)
                else:
                    self.wake_later(0.5)  # the runtime is still starting it: look again
                return False
            if cur.exit_code == 0:
                continue
            if should_restart(policy, cur.exit_code, init=True):
                await self._restart(pod, c, cur, init=True)
            return False
        return True

    async def _sync_containers(self, pod: dict[str, Any],
                               observed: dict[str, tuple[Optional[ContainerState], Any]]) -> None:
        policy = pod_spec(pod).get("restartPolicy") or "Always"
        for c in pod_spec(pod).get("containers") or []:
            name = c.get("name", "")
            cur = observed.get(name, (None, None))[0]
            if cur is None:
                await self._start(pod, c, 0)
                continue
            if cur.state == "created":
                self.wake_later(0.5)  # the runtime is still starting it: look again
                continue
            if cur.state == "running":
                why = self.kill.pop((name, cur.restart_count), None)
                if why is None:
                    self._watch(name, cur)
                    self.prober.ensure(pod, c, cur)
                    continue
                self.prober.stop(name)
                self.event(pod, NORMAL, "Killing", why, name)
                stopped = await self.s.cri.stop_container(self.uid, name,
                                                          self._probe_grace(pod, c))
                if stopped is None or stopped.state != "exited":
                    continue
                cur = stopped
            self.prober.stop(name)
            self._unwatch(name)
            if should_restart(policy, cur.exit_code):
                await self._restart(pod, c, cur)

    async def _restart(self, pod: dict[str, Any], c: Container, cur: ContainerState,
                       init: bool = False) -> None:
        name = c.get("name", "")
        key = (self.uid, name)
        finished = cur.finished_at or time.time()
        remaining = self.s.backoff.remaining(key, finished, time.time())
        if remaining > 0:
            meta = meta_of(pod)
            who = f"{meta.get('name')}_{meta.get('namespace')}({self.uid})"
            delay = go_duration(self.s.backoff.delay(key))
            self.waiting[name] = (podstatus.CRASH_LOOP,
                                  f"back-off {delay} restarting failed container={name} "
                                  f"pod={who}")
            if self._first(("backoff", name, cur.restart_count)):
                self.event(pod, WARNING, "BackOff",
                            f"Back-off restarting failed container {name} in pod {who}", name,
                            init)
            self.wake_later(remaining)
            return
        self.s.backoff.next(key, finished)
        await self._start(pod, c, cur.restart_count + 1, init)

    async def _env_sources(self, pod: dict[str, Any], c: Container) -> dict:
        """GET each ConfigMap and Secret the container's env names (None: not found)."""
        return await self._fetch(envsources.referenced([c]))

    def _context(self) -> PodContext:
        assert self.sandbox is not None
        cfg = self.s.cfg
        pod = self.pod or self.known or {}
        services = serviceenv.visible_services(
            self.s.services(), str(meta_of(pod).get("namespace") or "default"),
            pod_spec(pod).get("enableServiceLinks") is not False)
        return PodContext(node_name=cfg.node, host_ip=cfg.host_ip, pod_ip=self.sandbox.ip or "",
                          hostname=self.sandbox.hostname, node_cpu_millis=cfg.cpu_millis,
                          node_memory_bytes=cfg.memory_bytes,
                          extra_env=serviceenv.service_env(services))

    async def _start(self, pod: dict[str, Any], c: Container, attempt: int,
                     init: bool = False, target: Optional[ContainerState] = None) -> None:
        name = c.get("name", "")
        image = c.get("image", "")
        # The store is the node's image cache. An image of a registry is pulled into
        # it as imagePullPolicy says (images.needs_pull); any other image runs from the
        # store whatever the policy (as after `kind load`), else as a built-in or a
        # host program.
        stored = self.s.images.lookup(image)
        pulled = False
        # A pull this worker started is seen through to its end, even though the image
        # it stored now makes IfNotPresent say there is nothing to pull.
        if self.pulls.started(name) or needs_pull(c, stored):
            stored = await self.pulls.ensure(pod, c, init)
            if stored is None:
                return  # pulling, failed or backing off: the worker is woken for what's next
            pulled = True
        try:
            context = dataclasses.replace(self._context(),
                                          sources=await self._env_sources(pod, c))
            spec = container_spec(pod, c, context, stored,
                                  () if stored else tuple(self.s.images.names()))
            volumes = {str(v.get("name")): v for v in pod_spec(pod).get("volumes") or []}
            spec = dataclasses.replace(spec, mounts=volumemanager.container_mounts(
                c, volumes, self.volume_paths, container_env(pod, c, context),
                frozenset(self.volume_host_paths)),
                pid_namespace=ephemeral.pid_namespace(target))
        except ContainerConfigError as err:
            self.waiting[name] = (err.reason, err.message)
            if err.reason == CONFIG_ERROR:
                # As the kubelet: Failed names the cause, and the next sync tries again
                # (the ConfigMap or key may appear).
                self.event(pod, WARNING, "Failed", f"Error: {err.message}", name, init)
                delay = self.config_retry.get(name, CONFIG_RETRY_START)
                self.config_retry[name] = min(delay * 2, CONFIG_RETRY_MAX)
                self.wake_later(delay)
            else:
                if self._first(("config", name, err.message)):
                    self.event(pod, WARNING, err.reason, err.message, name, init)
                    self.event(pod, WARNING, "Failed", f"Error: {err.reason}", name, init)
                if err.reason == UNKNOWN_IMAGE_REASON:
                    # `netlab image load` may bring it: look again, as the kubelet
                    # tries again for an image it could not get.
                    self.wake_later(CONFIG_RETRY_MAX)
            return
        self.config_retry.pop(name, None)
        self.waiting.pop(name, None)
        self.image_ids[image] = image_id(image, stored)
        if pulled:
            pass  # the pull said "Successfully pulled"
        elif stored is not None or builtin_image(image):
            self.event(pod, NORMAL, "Pulled", f'Container image "{image}" already present '
                        "on machine", name, init)
        elif self._first(("hostcmd", name)):
            self.event(pod, NORMAL, "Pulled", f'Container image "{image}" is not in the image '
                        "store nor built into netlab: running its command on the host", name,
                        init)
        try:
            state = await self.s.cri.start_container(self.uid, spec, attempt)
        except CreateError as err:
            # CRI's CreateContainer failed (a mountPropagation the source's mount
            # cannot carry): the kubelet's CreateContainerError, tried again later.
            self.waiting[name] = (CREATE_ERROR, str(err))
            self.event(pod, WARNING, "Failed", f"Error: {err}", name, init)
            delay = self.config_retry.get(name, CONFIG_RETRY_START)
            self.config_retry[name] = min(delay * 2, CONFIG_RETRY_MAX)
            self.wake_later(delay)
            return
        except ContainerError as err:
            self.event(pod, WARNING, "Failed", f"Error: {err}", name, init)
            self.wake_later(self._retry)
            return
        if state.state == "exited" and state.reason == "StartError":
            self.event(pod, WARNING, "Failed", f"Error: {state.message}", name, init)
            self.wake()  # the next sync applies the restart policy, with back-off
            return
        self.event(pod, NORMAL, "Created", f"Created container {name}", name, init)
        self.event(pod, NORMAL, "Started", f"Started container {name}", name, init)
        if state.warnings:
            self.event(pod, WARNING, "LimitsNotEnforced", "; ".join(state.warnings), name, init)
        if state.state == "running":
            self._watch(name, state)
            if not init:
                self.prober.ensure(pod, c, state)
        else:
            self.wake()

    def _watch(self, name: str, state: ContainerState) -> None:
        have = self.watches.get(name)
        if have is not None and have[0] == state.restart_count:
            return
        self._unwatch(name)
        if state.pid is not None:
            self.watches[name] = (state.restart_count, self.s.cri.watch_exit(state, self.wake))

    def _unwatch(self, name: str) -> None:
        have = self.watches.pop(name, None)
        if have is not None:
            have[1].cancel()

    # -- status -------------------------------------------------------------------------------

    async def _report(self, terminal: bool = False) -> None:
        pod = self.pod
        if pod is None:
            return
        spec = pod_spec(pod)
        observed = await self.s.cri.observe(self.uid, self._names(pod))
        running_ok = not terminal and not self.finished

        def obs(c: Container) -> podstatus.ContainerObservation:
            name = c.get("name", "")
            cur, prev = observed.get(name, (None, None))
            live = cur is not None and cur.state == "running" and running_ok
            started = live and self.prober.started.get(name, c.get("startupProbe") is None)
            ready = started and self.prober.ready.get(name, c.get("readinessProbe") is None)
            return podstatus.ContainerObservation(
                current=cur, previous=prev, waiting=None if terminal else self.waiting.get(name),
                ready=ready, started=started)

        sb = self.sandbox
        observation = podstatus.PodObservation(
            host_ip=self.s.cfg.host_ip, pod_ip=sb.ip if sb else None,
            sandbox_ready=sb is not None and sb.state == "ready" and not terminal,
            init={c.get("name", ""): obs(c) for c in spec.get("initContainers") or []},
            containers={c.get("name", ""): obs(c) for c in spec.get("containers") or []},
            ephemeral={c.get("name", ""): dataclasses.replace(obs(c), ready=False)
                       for c in spec.get("ephemeralContainers") or []},
            terminal=terminal, start_time=self.start_time)
        every = ((spec.get("initContainers") or []) + (spec.get("containers") or [])
                 + (spec.get("ephemeralContainers") or []))
        images = {c.get("image", ""): self.image_ids.get(c.get("image", "")) or
                  image_id(c.get("image", "")) for c in every}
        status = podstatus.pod_status(pod, observation, datetime.now(timezone.utc), images)
        if status["phase"] in podstatus.TERMINAL_PHASES and not self.finished:
            self.finished = True
            self._cancel_all()
        self.s.status.set(pod, status)

    # -- termination --------------------------------------------------------------------------

    def _grace(self, pod: Optional[dict[str, Any]]) -> float:
        """SIGTERM to SIGKILL: the deletion's grace period, else the pod's. A pod gone
        from the API without one (force-deleted, or found orphaned) gets the minimum."""
        meta, spec = meta_of(pod or {}), pod_spec(pod or {})
        grace = meta.get("deletionGracePeriodSeconds")
        if not isinstance(grace, int):
            grace = MIN_GRACE if self.removed else spec.get("terminationGracePeriodSeconds")
        if not isinstance(grace, int):
            grace = 30
        return float(max(grace, MIN_GRACE))

    def _probe_grace(self, pod: dict[str, Any], c: Container) -> float:
        """A probe may set its own terminationGracePeriodSeconds (Kubernetes 1.25+)."""
        for probe in (c.get("livenessProbe"), c.get("startupProbe")):
            value = (probe or {}).get("terminationGracePeriodSeconds")
            if isinstance(value, int):
                return float(max(value, 1))
        return self._grace(pod)

    async def terminate(self) -> None:
        pod = self.pod or self.known
        self._cancel_all()
        if self.sandbox is None and self.adopted is not None:
            self.sandbox, self.adopted = self.adopted.sandbox, None
        if self.sandbox is not None and not self._torn_down:
            grace = self._grace(pod)
            observed = await self.s.cri.observe(self.uid, self._names(pod) if pod else [])
            running = [n for n, (cur, _) in observed.items()
                       if cur is not None and cur.state != "exited"]
            if pod is not None:
                for name in running:
                    self.event(pod, NORMAL, "Killing", f"Stopping container {name}", name)
            await self.s.cri.stop_pod_sandbox(self.uid, grace)
            await self.s.cri.call(volumemanager.teardown, self.sandbox.path)
            if self.s.tokens is not None:
                self.s.tokens.forget(self.uid)
            if self.pod is not None:
                await self._report(terminal=True)
                await self.s.status.flush(self.uid)
            await self.s.cri.remove_pod_sandbox(self.uid)
            self._torn_down = True  # a retry (the API was away) only deletes the Pod
        if self.pod is not None:
            meta = meta_of(self.pod)
            try:
                await self.s.client.request(
                    "DELETE", resource_path("pods", meta.get("namespace"), meta.get("name")),
                    body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                          "preconditions": {"uid": self.uid}})
            except APIError as err:
                if not (err.not_found or err.conflict):  # gone, or a new pod of that name
                    raise
        self.terminated = True
        log.info("pod %s terminated", self.describe())
        self.sandbox = None
        self.s.status.forget(self.uid)
        self.s.backoff.forget_pod(self.uid)
        self.s.pull_backoff.forget_pod(self.uid)  # its pulls may run on: others share them

    def _cancel_all(self) -> None:
        self.prober.stop_all()
        for name in list(self.watches):
            self._unwatch(name)

    # -- helpers ------------------------------------------------------------------------------

    def first(self, key: Any) -> bool:
        """:meth:`_first`, for the helpers that record a worker's events."""
        return self._first(key)

    def _first(self, key: Any) -> bool:
        """True the first time ``key`` is seen: for events said once per cause."""
        if key in self._once:
            return False
        self._once.add(key)
        return True

    def event(self, pod: dict[str, Any], type_: str, reason: str, message: str,
               container: Optional[str] = None, init: bool = False) -> None:
        self.s.events.record(pod_ref(pod, container, init), type_, reason, message)


class PodWorkers:
    """Every pod worker of the node, keyed by pod uid; fed by the pod informer."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.workers: dict[str, PodWorker] = {}
        self.adopted: dict[str, AdoptedPod] = {}

    def set_adopted(self, adopted: list[AdoptedPod]) -> None:
        """What the runtime still runs from before a restart: reattached when the pods
        are seen, cleaned up if they are not (``reap_orphans``)."""
        self.adopted = {a.sandbox.uid: a for a in adopted}
        for a in adopted:
            for st in a.containers:
                if st.state == "exited" and st.restart_count > 0:
                    self.s.backoff.seed((a.sandbox.uid, st.name), st.restart_count,
                                        st.finished_at or time.time())

    def _new(self, uid: str) -> PodWorker:
        worker = PodWorker(self.s, uid, self._done)
        worker.adopted = self.adopted.pop(uid, None)
        self.workers[uid] = worker
        worker.start()
        return worker

    def _done(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None and worker.terminated:
            del self.workers[uid]

    def handle(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        """The pod informer's handler: never blocks."""
        uid = meta_of(pod).get("uid", "")
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is None and uid in self.adopted:
                worker = self._new(uid)
            if worker is not None:
                worker.removed_from_api(pod)
            return
        if pod_spec(pod).get("nodeName") != self.s.cfg.node:
            return
        if worker is None:
            worker = self._new(uid)
            self._admit(worker, pod)
        worker.update(pod)

    def _admit(self, worker: PodWorker, pod: dict[str, Any]) -> None:
        """Kubelet admission: the node's pod capacity (``OutOfpods``)."""
        if worker.adopted is not None or is_terminating(pod):
            return
        if pod_status(pod).get("phase") in podstatus.TERMINAL_PHASES:
            return
        active = sum(1 for w in self.workers.values() if w is not worker and not w.finished
                     and not w.terminated and w.rejected is None)
        if active >= self.s.cfg.max_pods:
            worker.rejected = ("OutOfpods", f"Node didn't have enough resource: pods, "
                               f"requested: 1, used: {active}, capacity: {self.s.cfg.max_pods}")
            worker.finished = True
            self.s.events.record(pod_ref(pod), WARNING, "OutOfpods", worker.rejected[1])

    def reap_orphans(self, known: set[str]) -> None:
        """After the first full list: sandboxes of pods the API no longer has."""
        for uid in [u for u in self.adopted if u not in known]:
            log.info("pod %s/%s was deleted while the kubelet was away: cleaning up",
                     self.adopted[uid].sandbox.namespace, self.adopted[uid].sandbox.name)
            self._new(uid).removed_from_api(None)

    def find(self, namespace: str, name: str) -> Optional[PodWorker]:
        found = [w for w in self.workers.values()
                 if meta_of(w.pod or w.known or {}).get("namespace") == namespace
                 and meta_of(w.pod or w.known or {}).get("name") == name]
        return found[-1] if found else None

    def names(self) -> dict[str, tuple[str, str]]:
        """uid -> (namespace, name) of every pod with a sandbox here."""
        out = {}
        for uid, w in self.workers.items():
            meta = meta_of(w.pod or w.known or {})
            if meta:
                out[uid] = (meta.get("namespace") or "default", meta.get("name", ""))
        return out

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
