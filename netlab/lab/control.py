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
from collections.abc import Iterable
from typing import Any

import psutil

from netlab.api.views import meta_of, node_status
from netlab.client import lab_client
from netlab.client.apply import apply_object
from netlab.kernel.processes import is_running, stop_pids
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


class ControlPlaneError(RuntimeError):
    pass


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
    with open(log_dir(lab) / "supervisor.log", "ab") as logfile:
        proc = subprocess.Popen([sys.executable, "-m", "netlab.lab.supervisor", lab],
                                stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                                start_new_session=True, close_fds=True, cwd="/")
    state.processes["supervisor"] = {"pid": proc.pid,
                                     "createTime": psutil.Process(proc.pid).create_time()}
    state.save()


def _tail(path: os.PathLike, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace").strip()
    except OSError:
        return "(no log)"


def wait_ready(lab: str, timeout: float, state: LabState) -> None:
    """Probe until the API server is ready; explain with the logs if it never is."""
    sup = state.processes.get("supervisor", {})
    client = lab_client(lab, timeout=2.0)

    async def probe() -> None:
        deadline = time.monotonic() + timeout
        try:
            while True:
                if read_json(endpoints_path(lab)) is not None and await client.readyz():
                    return
                if not is_running(sup.get("pid", 0), sup.get("createTime")):
                    raise ControlPlaneError(
                        "the supervisor exited; its log says:\n"
                        + _tail(log_dir(lab) / "supervisor.log"))
                if time.monotonic() > deadline:
                    raise ControlPlaneError(
                        f"the API server was not ready after {timeout:.0f}s; its log says:\n"
                        + _tail(log_dir(lab) / "apiserver.log"))
                await asyncio.sleep(0.05)  # probe interval
        finally:
            await client.close()

    asyncio.run(probe())


def _etcd_probe(lab: str, action: str, endpoint: str, netns_name: str,
                timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the etcd probe inside ``netns_name`` (where the member listens), with the
    lab's etcd client certificate."""
    from netlab.kernel import netns
    from netlab.lab.pki import etcd_pki_paths

    pki = etcd_pki_paths(lab_dir(lab))
    return subprocess.run(
        [sys.executable, "-m", "netlab.master.store.etcd_server", action, endpoint,
         "--ca", str(pki.ca_cert), "--cert", str(pki.client_cert), "--key", str(pki.client_key),
         "--timeout", str(timeout)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout + 10,
        preexec_fn=lambda: netns.join_netns(netns_name), cwd="/")


def wait_etcd(lab: str, member: str, endpoint: str, netns_name: str, timeout: float,
              state: LabState, crash_limit: int = 3, component: str = "etcd") -> None:
    """Probe the etcd member's health (with a deadline) from inside its namespace; give
    up early if it keeps exiting, and explain with its log."""
    sup = state.processes.get("supervisor", {})
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        result = _etcd_probe(lab, "wait", endpoint, netns_name, max(0.5, min(2.0, remaining)))
        if result.returncode == 0:
            return
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
            + f"; its log ({log}) ends:\n" + _etcd_log_tail(log))


# The levels of etcd's (zap) log that say why it failed or stopped.
_ETCD_ERROR_LEVELS = ("error", "dpanic", "panic", "fatal")
# etcd fields that are no part of what went wrong.
_ETCD_NOISE = ("level", "ts", "caller", "msg", "error", "stacktrace")


def _etcd_entry(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _etcd_words(entry: dict[str, Any]) -> str:
    words = str(entry.get("msg", ""))
    if entry.get("error"):
        words += f": {entry['error']}"
    extra = [f"{k}={v}" for k, v in entry.items() if k not in _ETCD_NOISE]
    return words + (f" ({', '.join(extra)})" if extra else "")


def etcd_log_error(path: os.PathLike, runs: int = 2) -> str | None:
    """etcd's own words for what went wrong, from a member's component log: the last
    entry at level error or worse (its message, error and fields, not the stack trace),
    else a bare Go panic line, from the newest of the last ``runs`` runs (the
    supervisor's ``--- ... starting`` lines part them) that logged one. Two runs, so
    that a member restarted a moment ago and still starting is explained by the run
    that failed before it. None when there is no such line."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 256 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    parts: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("--- ") and " starting " in line:
            parts.append([])
        else:
            parts[-1].append(line)
    for lines in reversed(parts[-runs:]):
        entries = [e for e in map(_etcd_entry, lines) if e is not None]
        errors = [e for e in entries if e.get("level") in _ETCD_ERROR_LEVELS]
        if errors:
            return _etcd_words(errors[-1])
        panics = [line for line in lines if line.startswith(("panic: ", "fatal error: "))]
        if panics:
            return panics[0]
    return None


def _etcd_log_tail(path: os.PathLike, lines: int = 6) -> str:
    """The last ``lines`` lines of a member's last run (the supervisor's ``--- ...
    starting`` line begins a run), without Go stack traces: none in etcd's entries,
    and no goroutine dump after a panic (it would fill the tail)."""
    out: list[str] = []
    in_dump = False
    for line in _tail(path, 200).splitlines():
        if line.startswith("goroutine ") and line.endswith("]:"):
            in_dump = True
        elif line.startswith(("{", "--- ")):
            in_dump = False
        if in_dump:
            continue
        entry = _etcd_entry(line)
        if entry is not None and "stacktrace" in entry:
            line = json.dumps({k: v for k, v in entry.items() if k != "stacktrace"},
                              separators=(",", ":"))
        if line.startswith("--- ") and " starting " in line:
            out = []  # an earlier run's lines repeat or mislead
        out.append(line)
    return "\n".join(out[-lines:]).strip()


def etcd_status(lab: str, endpoint: str, netns_name: str,
                component: str | None = None) -> dict:
    """The member's status as it answers it (``member_status``). When it does not
    answer and ``component`` names its supervised process, the error says why from the
    member's side: whether it runs, its restarts, and etcd's own last error in its log."""
    result = _etcd_probe(lab, "status", endpoint, netns_name, 5.0)
    try:
        status = json.loads(result.stdout)
    except ValueError:
        status = {"endpoint": endpoint, "healthy": False, "error": result.stderr.strip()}
    if component is not None and not status.get("healthy") and "version" not in status:
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


def wait_nodes_ready(lab: str, nodes: Iterable[str], timeout: float) -> None:
    """Probe until every named Node is registered and Ready; name the laggards if not."""
    wanted = set(nodes)
    client = lab_client(lab, timeout=5.0)

    async def probe() -> None:
        deadline = time.monotonic() + timeout
        try:
            while True:
                listing = await client.list("nodes")
                ready = {n["metadata"]["name"] for n in listing.get("items", []) if _node_ready(n)}
                missing = sorted(wanted - ready)
                if not missing:
                    return
                if time.monotonic() > deadline:
                    logs = "\n".join(f"kubelet-{n}: " + _tail(log_dir(lab) / f"kubelet-{n}.log", 3)
                                     for n in missing)
                    raise ControlPlaneError(
                        f"nodes not Ready after {timeout:.0f}s: {', '.join(missing)}\n{logs}")
                await asyncio.sleep(0.1)  # probe interval
        finally:
            await client.close()

    asyncio.run(probe())


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


def stop(state: LabState) -> None:
    """Stop the supervisor (which stops its components). Safe if it is long gone."""
    sup = state.processes.get("supervisor")
    if sup and is_running(sup["pid"], sup.get("createTime")):
        stop_pids([sup["pid"]], timeout=10.0)


def endpoints(lab: str) -> dict[str, str]:
    data = read_json(endpoints_path(lab))
    if not data:
        raise ControlPlaneError(f"lab {lab} has no API server endpoints recorded in {lab_dir(lab)}")
    return data
