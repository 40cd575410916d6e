"""Image pulls for the kubelet: pull policy, pull secrets, one shared pull per image.

The pod worker asks :func:`needs_pull` whether a container's image must come
from its registry before the container can start, as the kubelet's image
manager (``pkg/kubelet/images``) decides it:

- ``Never``: the store's copy or nothing (``ErrImageNeverPull``);
- ``IfNotPresent``: pulled only when the store does not have it;
- ``Always`` (the API server's default for ``:latest`` and untagged images):
  pulled every time a container starts; layers the store has are not fetched again.

netlab pulls only from a registry the image reference names (``10.0.0.5:5000/app``,
``localhost:5000/app``, ``registry.example/app``): an image of Docker Hub
(``busybox``, ``nginx:1.25``, ``docker.io/...``) is never pulled, since a lab has no
way to the internet; it runs from the store or as a built-in, as before. Built-in
images (``netlab/echo``, agnhost, pause) are never pulled either.

Credentials are the kubelet's: the pod's ``imagePullSecrets`` and its
ServiceAccount's (the admission step that copies them into the pod is not in
netlab's API server, so the kubelet reads the ServiceAccount itself), turned into
a keyring (``netlab.images.credentials``); every matching credential is tried in
turn, anonymously when none matches.

:class:`ImagePuller` runs pulls as tasks on the kubelet's loop (network I/O is
asynchronous, unpacking runs in a thread), so a pod worker never blocks on one:
through its :class:`PodPulls` (upstream's ``EnsureImageExists``) it starts the
pull, waits as it was (``ContainerCreating``, or ``ImagePullBackOff`` while
retrying), and is woken when the pull ends. Pods that want the same image with
the same credentials at the same time share one pull. A failure is
``ErrImagePull`` until the worker's next sync, which is within the back-off
(5 s doubling to 300 s, keyed by pod and image as upstream's) and says
``ImagePullBackOff``; the events are upstream's (``Pulling``, ``Pulled``
"Successfully pulled image", ``Failed`` "Failed to pull image", ``BackOff``
"Back-off pulling image").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import aiohttp

from netlab.api.defaults_pod import image_pull_policy
from netlab.api.views import Container, meta_of, pod_spec
from netlab.client import APIError, Client
from netlab.images import builtin_image, registry
from netlab.images.credentials import Credential, CredentialError, Keyring, from_secret
from netlab.images.reference import DEFAULT_REGISTRY, ReferenceError, normalise, parse
from netlab.images.store import ImageStore, StoredImage
from netlab.node.kubelet.events import NORMAL, WARNING
from netlab.node.kubelet.restarts import Backoff
from netlab.units import format_duration

log = logging.getLogger("netlab.kubelet.images")

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
# Upstream's image back-off starts at 10 s and doubles to 300 s; a lab starts at 5 s.
PULL_BACKOFF_BASE, PULL_BACKOFF_MAX = 5.0, 300.0


def pull_policy(container: Container) -> str:
    """The container's ``imagePullPolicy``, defaulted from the tag as the API server does."""
    policy = container.get("imagePullPolicy")
    return policy if isinstance(policy, str) and policy else image_pull_policy(
        container.get("image") or "")


def pullable(image: str) -> bool:
    """Whether ``image`` comes from a registry netlab pulls from (see the module)."""
    if builtin_image(image) is not None:
        return False
    try:
        return parse(image).registry != DEFAULT_REGISTRY
    except ReferenceError:
        return False


def needs_pull(container: Container, stored: Optional[StoredImage]) -> bool:
    image = container.get("image") or ""
    if not pullable(image):
        return False
    policy = pull_policy(container)
    return policy == "Always" or (policy == "IfNotPresent" and stored is None)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text truncated to milliseconds (``523ms``, ``1.204s``,
    ``1m2.5s``), as in ``Successfully pulled image "x" in 1.204s``."""
    return format_duration(int(seconds * 1000) / 1000)


@dataclass(frozen=True)
class Pulled:
    """A pull that ended: the result or the error, and how long the pull itself took."""

    result: Optional[registry.PullResult]
    error: Optional[str]
    seconds: float


class ImagePuller:
    """The node's pulls in flight, shared by the pods that want the same image."""

    def __init__(self, store: ImageStore, connect_timeout: float = registry.CONNECT_TIMEOUT,
                 read_timeout: float = registry.READ_TIMEOUT) -> None:
        self.store = store
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._inflight: dict[tuple[str, tuple[Credential, ...]], asyncio.Task[Pulled]] = {}
        self._http: Optional[aiohttp.ClientSession] = None

    def pull(self, image: str, credentials: Sequence[Credential]) -> asyncio.Task[Pulled]:
        """The task pulling ``image`` with ``credentials`` (one already running is shared)."""
        try:
            name = normalise(image)
        except ReferenceError:
            name = image
        key = (name, tuple(credentials))
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._pull(image, list(credentials)))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: tuple[str, tuple[Credential, ...]], task: asyncio.Task) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    def in_flight(self) -> int:
        return len(self._inflight)

    async def _pull(self, image: str, credentials: list[Credential]) -> Pulled:
        if self._http is None or self._http.closed:
            self._http = registry.session(self.connect_timeout, self.read_timeout)
        start = time.monotonic()
        try:
            result = await registry.pull(image, self.store, credentials, self._http)
        except registry.PullError as err:
            log.info("pull of %s failed: %s", image, err)
            return Pulled(None, str(err), time.monotonic() - start)
        except Exception as err:  # a bug or the disk: the pod gets an event, not a hang
            log.warning("pull of %s failed", image, exc_info=True)
            return Pulled(None, f"failed to pull and unpack image \"{image}\": {err}",
                          time.monotonic() - start)
        return Pulled(result, None, time.monotonic() - start)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._http is not None:
            await self._http.close()


async def pull_credentials(client: Client, pod: dict[str, Any],
                           ) -> tuple[Keyring, list[str], list[str]]:
    """The pod's keyring from its and its ServiceAccount's ``imagePullSecrets``; also
    the secrets that could not be read (missing) and those that are not pull secrets
    (their errors), for the kubelet's warning."""
    spec: dict[str, Any] = dict(pod_spec(pod))
    namespace = meta_of(pod).get("namespace") or "default"
    names = [str(ref.get("name")) for ref in spec.get("imagePullSecrets") or []
             if isinstance(ref, dict) and ref.get("name")]
    account = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    try:
        sa = await client.get("serviceaccounts", account, namespace)
        names += [str(ref.get("name")) for ref in sa.get("imagePullSecrets") or []
                  if isinstance(ref, dict) and ref.get("name")]
    except APIError as err:
        if not err.not_found:
            raise
    keyring = Keyring()
    missing: list[str] = []
    invalid: list[str] = []
    for name in dict.fromkeys(names):
        try:
            secret = await client.get("secrets", name, namespace)
        except APIError as err:
            if not err.not_found:
                raise
            missing.append(name)
            continue
        try:
            for key, credential in from_secret(secret).items():
                keyring.add(key, credential)
        except CredentialError as err:
            invalid.append(str(err))
    return keyring, missing, invalid


class Worker(Protocol):
    """What :class:`PodPulls` needs of its pod worker (``pods.PodWorker``)."""

    uid: str
    waiting: dict[str, tuple[str, str]]

    def event(self, pod: dict[str, Any], type_: str, reason: str, message: str,
              container: Optional[str] = None, init: bool = False) -> None: ...

    def first(self, key: Any) -> bool: ...

    def wake(self) -> None: ...

    def wake_later(self, delay: float) -> None: ...


class PodPulls:
    """One pod's pulls: the kubelet's ``EnsureImageExists`` for the containers whose
    image must come from its registry, as the pod worker's syncs call it."""

    def __init__(self, worker: Worker, client: Client, puller: Optional[ImagePuller],
                 backoff: Backoff) -> None:
        self.w = worker
        self.client = client
        self.puller = puller
        self.backoff = backoff
        # container -> (image, its pull, when the worker started waiting for it)
        self.running: dict[str, tuple[str, asyncio.Task[Pulled], float]] = {}
        self.failed: dict[str, float] = {}  # image -> when its last pull failed

    def started(self, container: str) -> bool:
        """Whether a pull of this container's is under way or ended unseen: it is seen
        through to its end, even though the image it stored now makes IfNotPresent
        say there is nothing to pull."""
        return container in self.running

    async def ensure(self, pod: dict[str, Any], c: Container,
                     init: bool) -> Optional[StoredImage]:
        """The image of ``c`` from its registry: the stored image once pulled; None while
        the pull runs, after it failed (``ErrImagePull``) or during its back-off
        (``ImagePullBackOff``), each with the kubelet's events."""
        w = self.w
        name, image = c.get("name", ""), c.get("image", "")
        running = self.running.get(name)
        if running is not None and running[0] != image:  # the pod's image changed
            self.running.pop(name)
            running = None
        if running is not None:
            return self._ended(pod, name, image, init, *running[1:])
        key = (w.uid, image)
        failed = self.failed.get(image)
        remaining = 0.0 if failed is None else self.backoff.remaining(key, failed, time.time())
        if remaining > 0:
            w.waiting[name] = (IMAGE_PULL_BACKOFF, f'Back-off pulling image "{image}"')
            if w.first(("pull-backoff", name, failed)):
                w.event(pod, NORMAL, "BackOff", f'Back-off pulling image "{image}"', name, init)
                w.event(pod, WARNING, "Failed", f"Error: {IMAGE_PULL_BACKOFF}", name, init)
            w.wake_later(remaining)
            return None
        keyring, missing, invalid = await pull_credentials(self.client, pod)
        if (missing or invalid) and w.first(("pull-secrets", *missing, *invalid)):
            w.event(pod, WARNING, "FailedToRetrieveImagePullSecret",
                    f"Unable to retrieve some image pull secrets ({', '.join(missing + invalid)}"
                    "); attempting to pull the image may not succeed.")
        try:
            credentials = keyring.lookup(parse(image))
        except ReferenceError:
            credentials = []
        w.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', name, init)
        assert self.puller is not None
        task = self.puller.pull(image, credentials)
        self.running[name] = (image, task, time.monotonic())
        task.add_done_callback(lambda _: w.wake())
        return None

    def _ended(self, pod: dict[str, Any], name: str, image: str, init: bool,
               task: asyncio.Task[Pulled], waiting_since: float) -> Optional[StoredImage]:
        w = self.w
        if not task.done():
            return None  # its end wakes the worker
        self.running.pop(name)
        if task.cancelled():  # the kubelet is stopping: nothing to report
            return None
        outcome = task.result()
        if outcome.result is None:
            now = time.time()
            self.backoff.next((w.uid, image), now)
            self.failed[image] = now
            w.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {outcome.error}',
                    name, init)
            w.event(pod, WARNING, "Failed", f"Error: {ERR_IMAGE_PULL}", name, init)
            w.waiting[name] = (ERR_IMAGE_PULL, outcome.error or "")
            # As the kubelet's next sync: still within the back-off, so it says so.
            w.wake_later(min(1.0, self.backoff.delay((w.uid, image)) / 2))
            return None
        result = outcome.result
        w.event(pod, NORMAL, "Pulled", f'Successfully pulled image "{image}" in '
                f"{go_duration(outcome.seconds)} ({go_duration(time.monotonic() - waiting_since)}"
                f" including waiting). Image size: {result.image.size} bytes.", name, init)
        w.waiting.pop(name, None)
        return result.image
