"""Starting, probing and stopping a lab's control plane from ``up`` and ``down``.

``start`` writes the lab's bearer token and launches the supervisor in its own
session, recording its pid and start time. ``wait_ready`` probes the API
server's ``/readyz`` over the unix socket until it answers, or the deadline
passes, or the supervisor dies — never by sleeping a fixed time. ``stop``
stops the supervisor by its recorded pid, checked with psutil, so a reused pid
is never signalled. An etcd member that fails is explained in etcd's own words:
``wait_etcd`` (for ``up``) and ``etcd_status`` (for ``netlab status``) quote the
last error in the member's component log.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

import aiohttp
import psutil

from netlab.api.views import meta_of, node_status
from netlab.client import APIError, lab_client
from netlab.client.apply import apply_object
from netlab.kernel.processes import is_running, raise_oom_score, stop_pids
from netlab.lab import exhaustion
from netlab.lab.component_logs import etcd_log_error, etcd_log_tail, log_tail
from netlab.lab.components import EtcdClient
from netlab.lab.exhaustion import Exhaustion
from netlab.lab.state import (
    LabState,
    components_path,
    data_dir,
    endpoints_path,
    lab_dir,
    log_dir,
    read_json,
    token_path,
)
from netlab.topology.model import Workload

RETRY_INTERVAL = 0.1  # after a failed list or watch of the Nodes, while the API is busy


class ControlPlaneError(RuntimeError):
    pass


class ResourceExhausted(ControlPlaneError):
    """A component ran out of open files or memory (``exhaustion`` says which)."""

    def __init__(self, found: Exhaustion):
        self.exhaustion = found
        super().__init__(f"{found.who} ran out of "
                         f"{'open files' if found.resource == 'files' else 'memory'}: "
                         f"{found.evidence}")


# The logs a wait reads for exhaustion while it waits; the node agents' only at the end.
_CONTROL_LOGS = ("supervisor", "apiserver", "etcd-")
# How often a wait looks (a read of a few logs' ends and components.json).
CHECK_INTERVAL = 1.0
# A component's name as the user knows it.
_WHO = {"apiserver": "the API server", "supervisor": "the supervisor"}


def exhaustion_in_lab(lab: str, since_kills: int | None,
                      every_log: bool = False) -> Exhaustion | None:
    """A component of ``lab`` that ran out of open files or memory: killed by SIGKILL
    (the OOM killer, ``since_kills`` being the kernel's count when ``up`` began), or
    saying so in its log: the control plane's logs, or with ``every_log`` all."""
    record = read_json(components_path(lab)) or {}
    killed = exhaustion.killed_components(record, since_kills, exhaustion.oom_kills(), _WHO)
    if killed is not None:
        return killed
    # An API server out of descriptors may log nothing (uvloop drops the connection it
    # cannot accept): its count at its limit says it.
    for name, row in sorted(record.items(), key=lambda item: item[0] != "apiserver"):
        if row.get("pid") and (every_log or name.startswith(_CONTROL_LOGS)):
            full = exhaustion.fds_at_limit(row["pid"], _WHO.get(name, name))
            if full is not None:
                return full
    try:
        logs = sorted(log_dir(lab).glob("*.log"))
    except OSError:
        return None
    # The API server first: the node agents' errors often only quote its.
    logs.sort(key=lambda p: (p.stem != "apiserver", p.stem))
    for path in logs:
        if every_log or path.stem.startswith(_CONTROL_LOGS):
            found = exhaustion.from_log(path, _WHO.get(path.stem, path.stem))
            if found is not None:
                return found
    if every_log:  # what failed leaves no word of its own: was it the OOM killer?
        return exhaustion.oom_killed_meanwhile(since_kills, exhaustion.oom_kills(),
                                               _supervisor_gone(lab))
    return None


def _supervisor_gone(lab: str) -> bool:
    state = read_json(lab_dir(lab) / "state.json") or {}
    sup = (state.get("processes") or {}).get("supervisor") or {}
    return bool(sup) and not is_running(sup.get("pid", 0), sup.get("createTime"))


def exhaustion_check(lab: str, since_kills: int | None) -> Callable[..., None]:
    """What ``up``'s waits call on every probe: raises ``ResourceExhausted`` as soon as
    a component ran out, rather than waiting out the deadline (a component the OOM
    killer ends is restarted and killed again, and never gets ready). Looks at most
    once every ``CHECK_INTERVAL``, unless called with ``force=True``."""
    last = [0.0]

    def check(force: bool = False) -> None:
        now = time.monotonic()
        if now - last[0] < CHECK_INTERVAL and not force:
            return
        last[0] = now
        found = exhaustion_in_lab(lab, since_kills)
        if found is not None:
            raise ResourceExhausted(found)

    return check


def start(state: LabState, etcd_addresses: list[str] | None = None) -> None:
    """Start the supervisor; ``etcd_addresses`` (for ``cluster.store: etcd``) also
    issues the etcd member's and clients' certificates for those addresses."""
    lab = state.lab
    log_dir(lab).mkdir(parents=True, exist_ok=True)
    data_dir(lab).mkdir(parents=True, exist_ok=True, mode=0o700)
    token = token_path(lab)
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(24) + "\n")
    from netlab.lab.pki import create_pki  # cryptography is only needed here

    control_ip = next(n["underlayIP"] for n in state.nodes if n["role"] == "control-plane")
    cluster = state.plan().topology.cluster
    create_pki(lab_dir(lab), lab, [control_ip], etcd_addresses=etcd_addresses,
               dns_domain=cluster.dns_domain,
               service_ip=str(next(cluster.service_subnet.hosts())),
               kubelets={n.name: str(n.underlay.ip) for n in state.plan().nodes
                         if n.in_cluster})
    # The supervisor waits, as a shell before it becomes Python, until up has recorded
    # its pid: an up killed in between would otherwise leave a supervisor no record
    # names, restarting components forever. Then the shell reads end-of-file and exits.
    gate = ["sh", "-c", 'read -r _ && exec "$@" </dev/null', "sh"]
    with open(log_dir(lab) / "supervisor.log", "ab") as logfile:
        proc = subprocess.Popen([*gate, sys.executable, "-m", "netlab.lab.supervisor", lab],
                                stdin=subprocess.PIPE, stdout=logfile, stderr=logfile,
                                start_new_session=True, close_fds=True, cwd="/",
                                preexec_fn=_prefer_for_oom_kill)
    assert proc.stdin is not None
    try:
        state.processes["supervisor"] = {"pid": proc.pid,
                                         "createTime": psutil.Process(proc.pid).create_time()}
        state.save()
        proc.stdin.write(b"go\n")  # the pid exec keeps is the one recorded
    finally:
        proc.stdin.close()


# The lab's processes' oom_score_adj (the supervisor's, which its components inherit,
# and which the fork server raises further for them): when memory runs out during
# ``up``, the kernel kills one of them rather than ``up``, which then rolls back and
# says so; killed itself, it could do neither.
LAB_OOM_SCORE_ADJ = 500


def _prefer_for_oom_kill() -> None:
    raise_oom_score(to=LAB_OOM_SCORE_ADJ)


def wait_ready(lab: str, timeout: float, state: LabState,
               check: Callable[[], None] | None = None) -> None:
    """Probe until the API server is ready; explain with the logs if it never is.
    ``check`` (``exhaustion_check``) is called on every probe."""
    sup = state.processes.get("supervisor", {})
    client = lab_client(lab, timeout=2.0)

    async def probe() -> None:
        deadline = time.monotonic() + timeout
        try:
            while True:
                if read_json(endpoints_path(lab)) is not None and await client.readyz():
                    return
                if check is not None:
                    check()
                if not is_running(sup.get("pid", 0), sup.get("createTime")):
                    # Killed (the OOM killer's SIGKILL), it leaves an empty log.
                    said = log_tail(log_dir(lab) / "supervisor.log")
                    raise ControlPlaneError("the supervisor exited; " + (
                        f"its log says:\n{said}" if said else "its log is empty"))
                if time.monotonic() > deadline:
                    raise ControlPlaneError(
                        f"the API server was not ready after {timeout:.0f}s; its log says:\n"
                        + log_tail(log_dir(lab) / "apiserver.log"))
                await asyncio.sleep(0.05)  # probe interval
        finally:
            await client.close()

    asyncio.run(probe())


def _etcd_probe(client: EtcdClient, action: str, endpoint: str, netns_name: str | None,
                timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the etcd probe with ``client``'s certificates, inside ``netns_name`` (where
    a lab member listens) or, for an etcd outside the lab, in the host's namespace."""
    from netlab.kernel import netns

    tls = [arg for flag, file in (("--ca", client.ca), ("--cert", client.cert),
                                  ("--key", client.key)) if file for arg in (flag, file)]
    return subprocess.run(
        [sys.executable, "-m", "netlab.master.store.etcd_server", action, endpoint, *tls,
         "--timeout", str(timeout)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout + 10,
        preexec_fn=(lambda: netns.join_netns(netns_name)) if netns_name else None, cwd="/")


def wait_etcd(client: EtcdClient, member: str, endpoint: str, netns_name: str,
              timeout: float, state: LabState, crash_limit: int = 3,
              component: str = "etcd", check: Callable[[], None] | None = None) -> None:
    """Probe the lab's etcd member's health (with a deadline) from inside its
    namespace; give up early if it keeps exiting, and explain with its log."""
    lab = state.lab
    sup = state.processes.get("supervisor", {})
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        result = _etcd_probe(client, "wait", endpoint, netns_name,
                             max(0.5, min(2.0, remaining)))
        if result.returncode == 0:
            return
        if check is not None:
            check()
        record = (read_json(components_path(lab)) or {}).get(component) or {}
        if record.get("restarts", 0) >= crash_limit:
            why = (f"it exited {record['restarts']} times (last exit status "
                   f"{record.get('lastExit')})")
        elif not is_running(sup.get("pid", 0), sup.get("createTime")):
            why = "the supervisor exited"
        elif time.monotonic() > deadline:
            why = f"it was not healthy after {timeout:.0f}s ({result.stderr.strip()})"
        else:
            continue
        log = log_dir(lab) / f"{component}.log"
        words = etcd_log_error(log)
        raise ControlPlaneError(
            f"etcd member {member} ({endpoint}) did not start: {why}"
            + (f"; etcd says: {words}" if words else "")
            + f"; its log ({log}) ends:\n" + etcd_log_tail(log))


def check_external_etcd(client: EtcdClient, timeout: float) -> None:
    """Before anything of the lab starts: an etcd outside the lab answers healthy at
    one of its endpoints within ``timeout``, or the error names each endpoint and what
    it said (refused, a certificate etcd rejected, no leader)."""
    deadline = time.monotonic() + timeout
    errors: dict[str, str] = {}
    while True:
        for endpoint in client.endpoints:
            remaining = deadline - time.monotonic()
            result = _etcd_probe(client, "wait", endpoint, None, max(0.5, min(2.0, remaining)))
            if result.returncode == 0:
                return
            lines = result.stderr.strip().splitlines()
            errors[endpoint] = lines[-1] if lines else f"exit status {result.returncode}"
        if time.monotonic() > deadline:
            raise ControlPlaneError(
                f"the etcd at {', '.join(client.endpoints)} (cluster.store.etcd.endpoints) "
                f"did not answer healthy within {timeout:.0f}s: "
                + "; ".join(f"{e}: {why}" for e, why in errors.items())
                + ". Check that it runs and is reachable from this host, and that "
                "caFile, certFile and keyFile are the ones it trusts")


def etcd_status(client: EtcdClient, endpoint: str, netns_name: str | None,
                lab: str | None = None, component: str | None = None) -> dict:
    """The member's status as it answers it (``member_status``). When it does not
    answer and ``component`` names its supervised process in ``lab``, the error says
    why from the member's side: whether it runs, its restarts, and etcd's own last
    error in its log."""
    result = _etcd_probe(client, "status", endpoint, netns_name, 5.0)
    try:
        status = json.loads(result.stdout)
    except ValueError:
        status = {"endpoint": endpoint, "healthy": False, "error": result.stderr.strip()}
    if (lab is not None and component is not None and not status.get("healthy")
            and "version" not in status):
        status["error"] = _member_down(lab, component, str(status.get("error") or "no answer"))
    return status


def _member_down(lab: str, component: str, probe_error: str) -> str:
    record = (read_json(components_path(lab)) or {}).get(component) or {}
    log = log_dir(lab) / f"{component}.log"
    # No pid in the supervisor's record: it exited and waits out its restart backoff.
    why = "not running" if record and not record.get("pid") else f"no answer ({probe_error})"
    if record.get("restarts"):
        why += (f", restarted {record['restarts']} times (last exit status "
                f"{record.get('lastExit')})")
    words = etcd_log_error(log)
    return why + (f"; etcd says: {words}" if words else "") + f"; its log: {log}"


def _node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node_status(node).get("conditions") or [])


def wait_nodes_ready(lab: str, nodes: Iterable[str], timeout: float,
                     check: Callable[[], None] | None = None) -> None:
    """Wait until every named Node is registered and Ready; name the laggards if not.

    It lists the Nodes, then watches them from that list's resourceVersion, so the
    last Node's Ready is seen the moment it is written (a poll found it up to its
    interval late), and a big lab's API server sends each Node's changes once
    instead of the whole list on every poll. A failed list or watch is retried (a
    big lab's API server is busy registering its nodes) until the deadline.
    ``check`` (``exhaustion_check``) is called every second beside it: a lab that
    ran out of files or memory fails at once, not at the deadline."""
    wanted = set(nodes)
    client = lab_client(lab, timeout=10.0)

    async def until_ready(ready: set[str]) -> None:
        while True:
            try:
                listing = await client.list("nodes")
            except (asyncio.TimeoutError, aiohttp.ClientError, APIError):
                await asyncio.sleep(RETRY_INTERVAL)  # retry interval while the API is busy
                continue
            ready.clear()
            ready.update(n["metadata"]["name"] for n in listing.get("items", [])
                         if _node_ready(n))
            if wanted <= ready:
                return
            try:
                async for event in client.watch(
                        "nodes", resource_version=listing["metadata"].get("resourceVersion")):
                    if event.get("type") == "BOOKMARK":
                        continue
                    node = event.get("object") or {}
                    name = meta_of(node).get("name")
                    if event.get("type") == "ERROR" or not name:
                        break  # an expired resourceVersion, say: list again
                    if event.get("type") != "DELETED" and _node_ready(node):
                        ready.add(name)
                    else:
                        ready.discard(name)
                    if wanted <= ready:
                        return
            except (asyncio.TimeoutError, aiohttp.ClientError, APIError, ValueError):
                await asyncio.sleep(RETRY_INTERVAL)  # retry interval while the API is busy

    async def checking(check: Callable[[], None]) -> None:
        while True:
            check()
            await asyncio.sleep(CHECK_INTERVAL)  # look again a second later

    async def probe() -> None:
        ready: set[str] = set()
        try:
            waits = [asyncio.ensure_future(until_ready(ready))]
            if check is not None:
                waits.append(asyncio.ensure_future(checking(check)))
            try:
                done, _ = await asyncio.wait(waits, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            if not done:
                raise asyncio.TimeoutError
            done.pop().result()  # the checker's exhaustion error, if it was that
        except asyncio.TimeoutError:
            missing = sorted(wanted - ready)
            logs = "\n".join(f"kubelet-{n}: " + log_tail(log_dir(lab) / f"kubelet-{n}.log", 3)
                             for n in missing[:5])
            raise ControlPlaneError(f"{len(missing)} nodes not Ready after {timeout:.0f}s: "
                                    f"{', '.join(missing)}\n{logs}") from None
        finally:
            await client.close()

    asyncio.run(probe())


def wait_components_started(lab: str, timeout: float,
                            check: Callable[[], None] | None = None) -> None:
    """Wait until the supervisor has started every component (each has a pid in
    ``components.json``); name those it has not, with their logs, if it never does.

    The Nodes are Ready once their kubelets are, and in a big lab the supervisor may
    still be starting the last kube-proxies and policy agents then (a 100-node lab:
    its Nodes Ready in 30 s, some agents forked after that): a Service created the
    moment ``up`` returned would not yet be programmed on those nodes."""
    deadline = time.monotonic() + timeout
    while True:
        table = read_json(components_path(lab)) or {}
        waiting = sorted(name for name, row in table.items() if not row.get("pid"))
        if table and not waiting:
            return
        if check is not None:
            check()
        if time.monotonic() > deadline:
            logs = "\n".join(f"{name}: " + log_tail(log_dir(lab) / f"{name}.log", 3)
                             for name in waiting[:5])
            raise ControlPlaneError(f"{len(waiting)} components not running after "
                                    f"{timeout:.0f}s: {', '.join(waiting)}\n{logs}")
        time.sleep(0.05)  # probe interval: the supervisor rewrites the file at each start


def apply_workloads(lab: str, workloads: Iterable[Workload]) -> list[str]:
    async def run() -> list[str]:
        results = []
        async with lab_client(lab) as client:
            for workload in workloads:
                meta = meta_of(workload.manifest)
                try:
                    outcome, _ = await apply_object(client, workload.manifest)
                except Exception as exc:
                    raise ControlPlaneError(f"{workload.origin}: {exc}") from exc
                results.append(f"{workload.manifest.get('kind')}/{meta.get('name')} {outcome}")
        return results

    return asyncio.run(run())


def stop(state: LabState) -> bool:
    """Stop the supervisor (which stops its components). Safe if it is long gone.
    True when it was running."""
    sup = state.processes.get("supervisor")
    if sup and is_running(sup["pid"], sup.get("createTime")):
        stop_pids([sup["pid"]], timeout=10.0)
        return True
    return False


def endpoints(lab: str) -> dict[str, str]:
    data = read_json(endpoints_path(lab))
    if not data:
        raise ControlPlaneError(f"lab {lab} has no API server endpoints recorded in {lab_dir(lab)}")
    return data
