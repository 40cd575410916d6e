"""Pod commands: ``netlab logs``, ``netlab exec`` and ``netlab top``.

- ``logs POD [-c C] [-f] [--previous] [--tail N] [--timestamps]``: through the
  API server's ``pods/log``, which streams from the pod's kubelet: the same
  path as ``kubectl logs``.
- ``exec POD [-c C] [-i] [-t] -- CMD``: runs CMD inside the container (its
  network, UTS, PID and mount namespaces and its cgroup) through the
  container runtime on this host; the API only says where the pod is. When
  the name is not a pod but one of the lab's nodes, it runs in that node's
  namespace instead, as ``netlab exec NODE`` always has.
- ``top nodes|pods``: the usage each kubelet publishes on its Node object
  (``netlab.node.kubelet.metrics``), in ``kubectl top``'s columns.

Thin: parse, call the library, render.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import click

from netlab.api.views import annotations_of, pod_spec, status_of
from netlab.cli.common import exec_in, fail, lab_option, node_namespace, standalone_group
from netlab.cli.complete import complete_pods, complete_targets
from netlab.cli.render import columns


def _lab(lab: str | None) -> str:
    from netlab.lab import state

    try:
        return state.implied_lab(lab)
    except state.LabError as err:
        fail(str(err), 2)


def _client(lab: str):
    from netlab.client import SyncClient, lab_client

    return SyncClient(lab_client(lab))


def _get_pod(client: Any, name: str, namespace: str,
             quiet: bool = False) -> dict[str, Any] | None:
    """The pod, or None if there is none; an unreachable API is an error unless ``quiet``
    (then None too)."""
    from netlab.client import APIError

    try:
        return client.get("pods", name, namespace)
    except APIError as err:
        if err.not_found:
            return None
        fail(str(err))
    except OSError as err:
        if quiet:
            return None
        fail(f"the lab's API server is not answering ({err})")


def _container(pod: dict[str, Any], wanted: str | None) -> str:
    spec = pod_spec(pod)
    names = [c.get("name") or "" for c in spec.get("containers") or []]
    init = [c.get("name") or "" for c in spec.get("initContainers") or []]
    if wanted:
        if wanted not in names + init:
            fail(f'container {wanted} is not valid for pod {pod["metadata"]["name"]}', 2)
        return wanted
    default = annotations_of(pod).get(
        "kubectl.kubernetes.io/default-container")
    if default in names:
        return default
    if len(names) > 1:
        click.echo(f'Defaulted container "{names[0]}" out of: {", ".join(names)}', err=True)
    return names[0]


namespace_option = click.option("-n", "--namespace", default="default", show_default=True)


@click.command()
@lab_option
@namespace_option
@click.argument("pod", shell_complete=complete_pods)
@click.option("-c", "--container", default=None)
@click.option("-f", "--follow", is_flag=True, help="Stream the log until the container ends.")
@click.option("-p", "--previous", is_flag=True, help="The previous attempt's log.")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@click.option("--timestamps", is_flag=True)
@click.option("--since", "since_seconds", type=int, default=None, metavar="SECONDS",
              help="Only lines from the last SECONDS.")
def logs(lab: str | None, namespace: str, pod: str, container: str | None, follow: bool,
         previous: bool, tail: int | None, timestamps: bool, since_seconds: int | None) -> None:
    """Print a container's log, as kubectl logs does."""
    import asyncio

    import aiohttp

    from netlab.client import APIError, resource_path
    from netlab.client.http import _status_of

    lab = _lab(lab)
    with _client(lab) as client:
        obj = _get_pod(client, pod, namespace)
        if obj is None:
            fail(f'pods "{pod}" not found', 1)
        name = _container(obj, container)
        params = {k: v for k, v in {
            "container": name, "follow": "true" if follow else None,
            "previous": "true" if previous else None,
            "timestamps": "true" if timestamps else None,
            "tailLines": tail, "sinceSeconds": since_seconds}.items() if v is not None}

        async def stream() -> None:
            session = await client.client.session()
            url = client.client.base_url + resource_path("pods", namespace, pod, "log")
            async with session.get(url, params=params) as resp:
                if resp.status >= 400:
                    raise APIError(resp.status, _status_of(resp.status, await resp.read()))
                async for chunk in resp.content.iter_any():
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()

        try:
            client.run(stream())
        except APIError as err:
            fail(str(err))
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            fail(f"the log stream broke: {err}")
        except KeyboardInterrupt:
            pass


@click.command("exec", context_settings={"ignore_unknown_options": True})
@lab_option
@namespace_option
@click.option("-c", "--container", default=None)
@click.option("-i", "--stdin", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="The command gets this terminal.")
@click.argument("target", shell_complete=complete_targets)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab: str | None, namespace: str, container: str | None, stdin: bool, tty: bool,
          target: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in a pod's container: netlab exec web -- ip addr
    (or in a node's namespace when TARGET is a node: netlab exec worker1 -- ip route)."""
    if os.geteuid() != 0:
        fail("netlab needs root to enter a pod's namespaces; run it with sudo", 1)
    lab = _lab(lab)
    from netlab.lab.state import load_state

    state = load_state(lab)
    nodes = [n["name"] for n in state.nodes] if state else []
    pod = None
    if state is not None and state.processes.get("supervisor"):  # a lab with an API
        pod = _find_pod(lab, target, namespace, quiet=target in nodes)
    if pod is None:
        if target in nodes:
            _exec_in_node(lab, target, list(command))
        fail(f'pods "{target}" not found in namespace {namespace}, and lab {lab} has no node '
              f"{target!r} (nodes: {', '.join(nodes)})", 2)
    _exec_in_pod(lab, pod, _container(pod, container), list(command), stdin or tty)


def _find_pod(lab: str, name: str, namespace: str, quiet: bool) -> dict[str, Any] | None:
    """The pod, or None; an unreachable API is an error unless a node is the fallback."""
    with _client(lab) as client:
        return _get_pod(client, name, namespace, quiet)


def _exec_in_node(lab: str, node: str, argv: list[str]) -> NoReturn:
    exec_in(node_namespace(lab, node), argv, {"NETLAB_NODE": node})
    sys.exit(0)  # not reached: _exec_in replaces this process


def _exec_in_pod(lab: str, pod: dict[str, Any], container: str, argv: list[str],
                 stdin: bool) -> NoReturn:
    from netlab.lab.state import load_state
    from netlab.node.runtime import ContainerError, Runtime, SandboxError

    node = pod_spec(pod).get("nodeName")
    if not node:
        fail(f"pod {pod['metadata']['name']} is not scheduled to a node yet")
    state = load_state(lab)
    assert state is not None
    plan = state.plan()
    try:
        spec = Runtime(lab, plan.node(node)).exec_in_container(
            pod["metadata"]["uid"], container, argv)
    except (ContainerError, SandboxError) as err:
        fail(str(err))
    if not stdin:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
    sys.stdout.flush()
    os.execvpe(spec.argv[0], spec.argv, spec.env)


# --- top --------------------------------------------------------------------------------------


@click.command()
@lab_option
@click.argument("kind", type=click.Choice(["nodes", "node", "no", "pods", "pod", "po"]))
@click.argument("name", required=False)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def top(lab: str | None, kind: str, name: str | None, namespace: str, all_namespaces: bool,
        output: str) -> None:
    """CPU and memory of nodes or pods, as kubectl top shows them."""
    from netlab.node.kubelet import metrics

    lab = _lab(lab)
    with _client(lab) as client:
        nodes = client.list("nodes").get("items", [])
        if kind in ("nodes", "node", "no"):
            items = [m for m in (metrics.node_metrics(n) for n in nodes) if m is not None]
            if name:
                items = [m for m in items if m["metadata"]["name"] == name]
            if output == "json":
                click.echo(json.dumps({"kind": "NodeMetricsList", "apiVersion":
                                       metrics.METRICS_API, "items": items}, indent=2))
                return
            if not items:
                fail("metrics not available yet", 1)
            alloc = {n["metadata"]["name"]: status_of(n).get("allocatable") or {}
                     for n in nodes}
            rows = []
            for m in items:
                cpu = metrics.cpu_of(m["usage"]["cpu"])
                mem = metrics.memory_of(m["usage"]["memory"])
                a = alloc.get(m["metadata"]["name"], {})
                cap_cpu = metrics.cpu_of(a.get("cpu", "0"))
                cap_mem = metrics.memory_of(a.get("memory", "0"))
                rows.append([m["metadata"]["name"], f"{cpu}m",
                             f"{cpu * 100 // cap_cpu}%" if cap_cpu else "<unknown>",
                             f"{mem // (1 << 20)}Mi",
                             f"{mem * 100 // cap_mem}%" if cap_mem else "<unknown>"])
            click.echo(columns(["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
                               rows))
            return
        items = [p for n in nodes for p in metrics.pod_metrics(n)]
        if not all_namespaces:
            items = [p for p in items if p["metadata"]["namespace"] == namespace]
        if name:
            items = [p for p in items if p["metadata"]["name"] == name]
        if output == "json":
            click.echo(json.dumps({"kind": "PodMetricsList", "apiVersion": metrics.METRICS_API,
                                   "items": items}, indent=2))
            return
        if not items:
            fail(f"no metrics for pods in namespace {namespace} (yet)"
                  if not all_namespaces else "no pod metrics (yet)", 1)
        rows = []
        for p in sorted(items, key=lambda p: (p["metadata"]["namespace"],
                                              p["metadata"]["name"])):
            usage = p["containers"][0]["usage"]
            row = [p["metadata"]["name"], f"{metrics.cpu_of(usage['cpu'])}m",
                   f"{metrics.memory_of(usage['memory']) // (1 << 20)}Mi"]
            rows.append([p["metadata"]["namespace"], *row] if all_namespaces else row)
        head = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
        click.echo(columns(["NAMESPACE", *head] if all_namespaces else head, rows))


COMMANDS = [logs, exec_, top]


main = standalone_group(COMMANDS, "The pod commands alone (``python -m netlab.cli.pods``); "
                        "``netlab`` registers them.")

if __name__ == "__main__":
    main()
