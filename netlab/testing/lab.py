"""``TestLab``: one running lab as a test sees it, with helpers that return data.

Every helper answers with values a test can assert on (dicts, tuples,
booleans, ``CompletedProcess``), never with text to parse:

- ``apply(manifest)``: a YAML string (one or more documents), a dict, a list
  of dicts, or a path; returns the objects as the API server stored them;
- ``wait(kind, name, condition, timeout)``: watches the object until
  ``condition`` holds (a callable on the object, or ``"Ready"``,
  ``"Available"``, ``"Complete"``, ``"Ready=False"``, a phase such as
  ``"Running"``, or ``"Deleted"``) and returns it;
- ``exec(pod_or_node, cmd)``: ``(exit code, stdout, stderr)``;
- ``kubectl(*args)``: real kubectl with the lab's kubeconfig;
- ``client``: the official ``kubernetes`` client's ``ApiClient`` for the lab;
- ``api``: netlab's own synchronous API client (``get``, ``list``, ``create``...);
- ``trace(src, dst, ...)``: the ``netlab.trace/v1`` dict of one traced probe;
- ``fault(action, ...)``: ``link-down``/``link-up`` a node, ``kill`` a component;
- ``reach(src, dst, port, proto)``: True when real traffic from ``src``'s
  namespace gets an answer from ``dst``; only addresses of the lab are allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Union

import yaml

from netlab.api.views import meta_of, spec_of, status_of
from netlab.topology import LabPlan

Manifest = Union[str, Path, dict, list]
Condition = Union[str, Callable[[dict], Any]]


class LabTimeout(AssertionError):
    """``wait`` gave up: the condition did not hold before the deadline."""


def _netlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def _conditions(obj: dict) -> dict[str, str]:
    return {c.get("type"): c.get("status")
            for c in status_of(obj).get("conditions") or []}


def condition_check(condition: Condition) -> Callable[[dict], bool]:
    """A predicate on an object from ``wait``'s ``condition`` argument."""
    if callable(condition):
        return lambda obj: bool(condition(obj))
    text = condition.strip()
    if "=" in text:
        ctype, _, wanted = text.partition("=")
        return lambda obj: _conditions(obj).get(ctype) == wanted
    if text == "NotReady":
        return lambda obj: _conditions(obj).get("Ready") in ("False", "Unknown")

    def check(obj: dict) -> bool:
        status = status_of(obj)
        conds = _conditions(obj)
        if conds.get(text) == "True":
            if text == "Available" and obj.get("kind") == "Deployment":
                spec = spec_of(obj)
                return (status.get("availableReplicas") or 0) >= spec.get("replicas", 1) and (
                    status.get("observedGeneration", 0)
                    >= meta_of(obj).get("generation", 0))
            return True
        return status.get("phase") == text
    return check


class TestLab:
    """A lab brought up by the plugin; see the module docstring for the helpers."""

    __test__ = False  # not a test class, whatever pytest's python_classes say

    def __init__(self, name: str, topology: Path, plan: LabPlan, workdir: Path,
                 base_dir: Path, control_plane: bool = True):
        self.name = name
        self.control_plane = control_plane
        self.topology = topology  # the user's file
        self.plan = plan
        self.workdir = workdir
        self.base_dir = base_dir  # relative manifest paths are read from here
        self._kubeconfig: Path | None = None
        self._api: Any = None
        self._client: Any = None
        self.links_down: set[str] = set()

    def __repr__(self) -> str:
        return f"<netlab lab {self.name} from {self.topology}>"

    # --- the lab's shape ----------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return [n.name for n in self.plan.nodes]

    def node_ip(self, node: str) -> str:
        """The node's address on the physical network."""
        return str(self.plan.node(node).underlay.ip)

    def netns(self, node: str) -> str:
        """The node's network namespace."""
        return self.plan.node(node).netns

    # --- API access ---------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """netlab's own API client (``netlab.client.SyncClient``): plain dicts."""
        if self._api is None:
            from netlab.client import SyncClient, lab_client

            self._api = SyncClient(lab_client(self.name))
        return self._api

    @property
    def kubeconfig(self) -> Path:
        """The lab's kubeconfig file, as ``netlab kubeconfig`` writes it."""
        if self._kubeconfig is None:
            out = _netlab("kubeconfig", "--lab", self.name)
            if out.returncode != 0:
                raise RuntimeError(f"netlab kubeconfig failed: {out.stderr.strip()}")
            path = self.workdir / "kubeconfig"
            path.write_text(out.stdout)
            path.chmod(0o600)
            self._kubeconfig = path
        return self._kubeconfig

    @property
    def client(self) -> Any:
        """The official ``kubernetes`` client's ``ApiClient``, configured for this lab:
        ``kubernetes.client.CoreV1Api(lab.client).list_node()``."""
        if self._client is None:
            try:
                from kubernetes import config
            except ImportError:
                import pytest

                pytest.skip("lab.client needs the 'kubernetes' package (pip install kubernetes)")
            self._client = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._client

    def kubectl(self, *args: str, stdin: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        """``kubectl ARGS`` with the lab's kubeconfig; never raises on a non-zero exit."""
        import shutil

        binary = shutil.which("kubectl")
        if binary is None:
            import pytest

            pytest.skip("lab.kubectl needs kubectl on PATH")
        return subprocess.run([binary, "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, input=stdin, timeout=timeout,
                              check=False)

    def _documents(self, manifest: Manifest) -> list[dict]:
        if isinstance(manifest, dict):
            return [manifest]
        if isinstance(manifest, list):
            return [d for m in manifest for d in self._documents(m)]
        if isinstance(manifest, Path) or (isinstance(manifest, str) and "\n" not in manifest
                                          and manifest.strip().endswith((".yaml", ".yml",
                                                                         ".json"))):
            path = Path(manifest)
            if not path.is_absolute():
                path = self.base_dir / path
            manifest = path.read_text()
        return [d for d in yaml.safe_load_all(manifest) if d]

    def apply(self, manifest: Manifest, namespace: str | None = None) -> list[dict]:
        """Create or update every object (as ``kubectl apply``); return them as stored."""
        from netlab.client.apply import apply_object

        out = []
        for doc in self._documents(manifest):
            if namespace and not meta_of(doc).get("namespace"):
                doc = {**doc, "metadata": {**meta_of(doc),
                                           "namespace": namespace}}
            _, obj = self.api.run(apply_object(self.api.client, doc))
            out.append(obj)
        return out

    def delete(self, kind: str, name: str, namespace: str | None = "default") -> None:
        """Delete one object; a missing one is fine."""
        from netlab.api import resources
        from netlab.client import APIError

        ns = namespace if resources.resolve(kind).namespaced else None
        try:
            self.api.delete(kind, name, ns, propagation="Background")
        except APIError as err:
            if not err.not_found:
                raise

    def get(self, kind: str, name: str, namespace: str | None = "default") -> dict | None:
        from netlab.api import resources
        from netlab.client import APIError

        ns = namespace if resources.resolve(kind).namespaced else None
        try:
            return self.api.get(kind, name, ns)
        except APIError as err:
            if err.not_found:
                return None
            raise

    def wait(self, kind: str, name: str, condition: Condition = "Ready",
             timeout: float = 60.0, namespace: str | None = "default") -> dict | None:
        """Watch ``kind``/``name`` until ``condition`` holds; return the object (None for
        ``"Deleted"``). Raises ``LabTimeout`` with the last state seen."""
        from netlab.api import resources

        ns = namespace if resources.resolve(kind).namespaced else None
        deleted = isinstance(condition, str) and condition.lower() in ("deleted", "delete")
        check = (lambda obj: False) if deleted else condition_check(condition)
        return asyncio.run(self._wait(kind, name, ns, check, deleted, timeout, condition))

    async def _wait(self, kind: str, name: str, ns: str | None, check: Callable[[dict], bool],
                    deleted: bool, timeout: float, condition: Condition) -> dict | None:
        from netlab.client import lab_client

        deadline = time.monotonic() + timeout
        last: dict | None = None
        selector = f"metadata.name={name}"
        async with lab_client(self.name, timeout=10) as client:
            while True:
                listing = await client.list(kind, ns, field_selector=selector)
                items = listing.get("items") or []
                last = items[0] if items else None
                if last is None and deleted:
                    return None
                if last is not None and check(last):
                    return last
                version = meta_of(listing).get("resourceVersion")
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stream = client.watch(kind, ns, resource_version=version,
                                      field_selector=selector,
                                      timeout_seconds=max(1, int(left) + 1))
                try:
                    while True:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        try:
                            event = await asyncio.wait_for(stream.__anext__(), left)
                        except (StopAsyncIteration, asyncio.TimeoutError):
                            break
                        kind_of = event.get("type")
                        if kind_of == "ERROR":
                            break  # e.g. 410 Gone: list again
                        if kind_of == "BOOKMARK":
                            continue
                        obj = event.get("object") or {}
                        if kind_of == "DELETED":
                            last = None
                            if deleted:
                                return None
                            continue
                        last = obj
                        if check(obj):
                            return obj
                finally:
                    with contextlib.suppress(Exception):
                        await stream.aclose()
                if time.monotonic() >= deadline:
                    break
        what = condition if isinstance(condition, str) else getattr(
            condition, "__name__", "the condition")
        seen = "it does not exist" if last is None else (
            f"last status: {status_of(last)!r}"[:800])
        raise LabTimeout(f"{kind}/{name} did not become {what} within {timeout:.0f}s; {seen}")

    # --- inside the lab ---------------------------------------------------------------

    def exec(self, target: str, cmd: str | Iterable[str], namespace: str = "default",
             container: str | None = None, timeout: float = 60) -> tuple[int, str, str]:
        """Run ``cmd`` in a pod's container, or in a node's namespace when ``target`` is
        a node (as ``netlab exec``); return (exit code, stdout, stderr)."""
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        extra = ["-c", container] if container else []
        out = _netlab("exec", "--lab", self.name, "-n", namespace, *extra, target, "--", *argv,
                      timeout=timeout)
        return out.returncode, out.stdout, out.stderr

    def trace(self, src: str, dst: str, port: int | None = None, proto: str | None = None,
              namespace: str = "default", timeout: float = 2.0,
              reply: bool = True) -> dict[str, Any]:
        """One traced probe (as ``netlab trace -o json``): the ``netlab.trace/v1`` dict."""
        from netlab.trace import report
        from netlab.trace.engine import run_trace

        result = run_trace(self.name, src, dst, port=port, proto=proto, namespace=namespace,
                           timeout=timeout, plan=self.plan)
        return report.to_json(result, reply=reply)

    def fault(self, action: str, *args: str, **kwargs: Any) -> dict[str, Any]:
        """``fault("link-down", "worker2")``, ``fault("link-up", "worker2")``,
        ``fault("kill", "kubelet", "worker2")``: what ``netlab fault`` does; returns what
        changed. A link a test leaves down is brought back up when the test ends."""
        from netlab.lab import faults

        if action in ("link-down", "link-up"):
            (node,) = args
            change = faults.set_link(self.name, node, action == "link-up")
            if action == "link-down":
                self.links_down.add(node)
            else:
                self.links_down.discard(node)
            return {**asdict(change), "changed": change.changed}
        if action == "kill":
            import signal

            sig = kwargs.get("signal", signal.SIGKILL)
            if not 1 <= len(args) <= 2:
                raise TypeError("fault('kill', COMPONENT[, NODE]) takes one or two arguments")
            on_node = args[1] if len(args) == 2 else None
            return asdict(faults.kill_component(self.name, args[0], on_node, sig=sig))
        raise ValueError(f"unknown fault {action!r}: link-down, link-up or kill")

    @contextlib.contextmanager
    def link_down(self, node: str) -> Iterator[dict[str, Any]]:
        """``with lab.link_down("worker2"):`` the node is cut off inside the block only."""
        change = self.fault("link-down", node)
        try:
            yield change
        finally:
            self.fault("link-up", node)

    def restore_links(self) -> None:
        for node in sorted(self.links_down):
            self.fault("link-up", node)

    # --- traffic ----------------------------------------------------------------------

    def _resolve(self, src: str, dst: str, port: int | None, namespace: str):
        from netlab.trace.resolve import lab_pods_and_services, resolve_source, resolve_target

        pods, services = lab_pods_and_services(self.name, self.plan)
        return (resolve_source(src, self.plan, pods, namespace),
                resolve_target(dst, self.plan, pods, services, namespace, port))

    def _inside_lab(self, ip: str) -> bool:
        address = ipaddress.IPv4Address(ip)
        cluster = self.plan.topology.cluster
        networks = [n.subnet for n in self.plan.topology.networks]
        return any(address in net for net in (*networks, cluster.pod_subnet,
                                               cluster.service_subnet))

    def reach(self, src: str, dst: str, port: int | None = None, proto: str = "tcp",
              namespace: str = "default", timeout: float = 1.0, within: float = 0.0) -> bool:
        """Does real traffic from ``src`` (pod or node) get an answer from ``dst``?

        ``dst``: a pod, a node, ``svc/NAME[:PORT]``, ``node/NAME:NODEPORT`` or a lab IP.
        tcp: the connection is accepted; udp: a datagram comes back (echo servers
        answer); icmp: ping answers. Refused, reset, unreachable or silent: False.
        ``timeout`` bounds one attempt; ``within`` keeps probing until the first answer
        or that many seconds (every node's kube-proxy follows the API a sync behind,
        so a Service that was just created answers a moment later).
        """
        deadline = time.monotonic() + within
        while True:
            if self._reach_once(src, dst, port, proto, namespace, timeout):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)  # the probe interval, bounded by the deadline

    def _reach_once(self, src: str, dst: str, port: int | None, proto: str, namespace: str,
                    timeout: float) -> bool:
        source, target = self._resolve(src, dst, port, namespace)
        if target.ip is None or not self._inside_lab(target.ip):
            raise ValueError(f"{dst} ({target.ip}) is not an address of lab {self.name}; "
                             "reach() only sends inside the lab")
        proto = proto.lower()
        if proto == "icmp":
            out = subprocess.run(["ip", "netns", "exec", source.netns, "ping", "-n", "-c", "1",
                                  "-W", str(max(1, int(timeout))), target.ip],
                                 capture_output=True, check=False)
            return out.returncode == 0
        if not target.port:
            raise ValueError(f"reach over {proto} needs a port")
        from netlab.kernel.netns import run_in_netns

        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = run_in_netns(source.netns, lambda: socket.socket(socket.AF_INET, kind))
        with sock:
            sock.settimeout(timeout)
            try:
                if proto == "tcp":
                    sock.connect((target.ip, target.port))
                    return True
                sock.sendto(b"netlab reach\n", (target.ip, target.port))
                return bool(sock.recv(2048))
            except OSError:
                return False

    def close(self) -> None:
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
