"""The ``netlab`` command: parse, call the library, render. No logic lives here.

Exit codes: 0 success, 1 an operation failed, 2 bad input (a topology that
does not validate, a name that does not exist, wrong usage).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable

import click

from netlab.cli.common import exec_in, fail, lab_option, node_namespace
from netlab.cli.complete import complete_labs, complete_nodes
from netlab.cli.render import columns
from netlab.topology import TopologyError, load_topology, plan_lab


def _progress(quiet: bool) -> Callable[[str], None]:
    if quiet or not sys.stderr.isatty():
        return lambda _: None
    start = time.monotonic()

    def show(step: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.2f}s] {step}", err=True)

    return show


def _load(path: str):
    try:
        return load_topology(path)
    except TopologyError as err:
        click.echo(err.format(), err=True)
        sys.exit(2)


NODE_COLUMNS = ["NODE", "ROLE", "NAMESPACE", "UNDERLAY-IP", "POD-SUBNET"]


def _node_table(rows: list[dict[str, Any]]) -> str:
    return columns(NODE_COLUMNS, [[r["name"], r["role"], r["namespace"], r["underlayIP"],
                                   r["podSubnet"] or "-"] for r in rows])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netlab")
def main() -> None:
    """netlab: the Kubernetes architecture in miniature, in network namespaces."""


@main.command()
@click.argument("topology", type=click.Path(dir_okay=False))
def validate(topology: str) -> None:
    """Check a topology file and print its address plan; touch nothing."""
    topo = _load(topology)
    plan = plan_lab(topo)
    from netlab.lab.lifecycle import node_rows

    click.echo(f"{topology}: valid lab '{topo.name}' with {len(topo.nodes)} nodes, "
               f"overlay {topo.cluster.overlay}")
    click.echo(_node_table(node_rows(plan)))


@main.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--network-only", is_flag=True,
              help="Build the network but start no control plane (a plain network lab).")
def up(topology: str, dry_run: bool, quiet: bool, network_only: bool) -> None:
    """Validate TOPOLOGY and build the lab it describes."""
    topo = _load(topology)
    from netlab.lab import lifecycle, network

    if dry_run:
        plan = plan_lab(topo)
        click.echo(f"# lab {topo.name}: the plan; nothing was created")
        click.echo("\n".join(network.describe_network(plan)))
        return
    _require_root()
    started = time.monotonic()
    try:
        state = lifecycle.up(topo, progress=_progress(quiet), control_plane=not network_only)
    except lifecycle.LabError as err:
        fail(str(err))
    if not quiet:
        click.echo(f"lab {state.lab} is up ({time.monotonic() - started:.2f}s)")
    click.echo(_node_table(state.nodes))


@main.command()
@click.argument("lab", required=False, shell_complete=complete_labs)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def down(lab: str | None, quiet: bool) -> None:
    """Remove a lab: its processes, namespaces and state. Safe to repeat."""
    _require_root()
    from netlab.lab import lifecycle, state

    try:
        lab = state.implied_lab(lab)
    except lifecycle.LabError as err:
        if lab is None and "no lab is up" in str(err):
            click.echo("no lab is up")
            return
        fail(str(err), 2)
    result = lifecycle.down(lab, progress=_progress(quiet))
    if not result.found:
        click.echo(f"no lab named {lab} is up")
        return
    click.echo(f"lab {lab} is down ({len(result.namespaces)} namespaces removed)")


@main.command()
@click.argument("lab", required=False, shell_complete=complete_labs)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def status(lab: str | None, output: str) -> None:
    """Show a lab's nodes and whether their namespaces exist."""
    from netlab.lab import lifecycle, state

    try:
        info = lifecycle.status(state.implied_lab(lab), probe=True)
    except lifecycle.LabError as err:
        fail(str(err), 2)
    if output == "json":
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"lab {info['lab']}: {info['phase']}, overlay {info['overlay']}, "
               f"up {info['age']:.0f}s, from {info['topology']}")
    click.echo(_node_table(info["nodes"]))
    click.echo(_store_line(info["store"]))


def _store_line(store: dict[str, Any]) -> str:
    if store["backend"] != "etcd":
        return f"store: sqlite ({store['path']})"
    parts = []
    for m in store["members"]:
        if "healthy" not in m:
            health = "not probed"
        elif m["healthy"]:
            health = (f"healthy, {'leader' if m.get('leader') else 'follower'}, "
                      f"etcd {m.get('version')}, revision {m.get('revision')}, "
                      f"db {m.get('dbSize', 0) // 1024} KiB")
        else:
            health = f"unhealthy: {m.get('error')}"
            if m.get("version"):  # it answers, but has no quorum
                health += f", etcd {m.get('version')}, revision {m.get('revision')}"
        parts.append(f"{m['endpoint']} ({health})" if store.get("external")
                     else f"member {m['name']} {m['endpoint']} ({health})")
    if store.get("external"):
        return (f"store: etcd outside the lab, {len(parts)} endpoint"
                f"{'s' if len(parts) != 1 else ''}: " + "; ".join(parts))
    return f"store: etcd, {len(parts)} member{'s' if len(parts) != 1 else ''}: " + "; ".join(parts)


@main.command(context_settings={"ignore_unknown_options": True})
@lab_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def etcdctl(lab: str | None, args: tuple[str, ...]) -> None:
    """Run etcdctl against the lab's etcd: netlab etcdctl -- get /registry/... --prefix.

    Runs in the control-plane node's namespace with ETCDCTL_API=3 and the lab's
    endpoints (every member) and client certificate; for labs with 'cluster.store: etcd'.
    With an etcd of your own (endpoints in the topology), runs on the host with its
    endpoints and the topology's caFile, certFile and keyFile."""
    _require_root()
    from netlab.lab import components, lifecycle, state

    try:
        lab = state.implied_lab(lab)
        record = state.load_state(lab)
        if record is None:
            raise lifecycle.LabError(f"no lab named {lab} is up")
    except lifecycle.LabError as err:
        fail(str(err), 2)
    client = components.etcd_client(record.plan())
    if client is None:
        fail(f"lab {lab} keeps its store in SQLite, not etcd; "
             "set 'cluster.store: etcd' in its topology to run etcd", 2)
    env = {"ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": ",".join(client.endpoints)}
    for name, file in (("ETCDCTL_CACERT", client.ca), ("ETCDCTL_CERT", client.cert),
                       ("ETCDCTL_KEY", client.key)):
        if file:
            env[name] = file
    if client.netns is None:  # the user's own etcd, outside the lab
        try:
            os.execvpe("etcdctl", ["etcdctl", *args], {**os.environ, **env})
        except FileNotFoundError:
            fail("etcdctl: command not found", 127)
    exec_in(client.netns, ["etcdctl", *args], env)


@main.command("list")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def list_labs(output: str) -> None:
    """List the labs that are up."""
    from netlab.lab import lifecycle

    rows = lifecycle.labs()
    if output == "json":
        click.echo(json.dumps({"labs": rows}, indent=2))
        return
    if not rows:
        click.echo("no lab is up")
        return
    click.echo(columns(["LAB", "PHASE", "NODES", "TOPOLOGY"],
                       [[r["lab"], r["phase"], str(r["nodes"]), r["topology"]] for r in rows]))


@main.command()
@lab_option
@click.argument("node", shell_complete=complete_nodes)
def shell(lab: str | None, node: str) -> None:
    """Open an interactive shell inside NODE's network namespace."""
    _require_root()
    namespace = node_namespace(lab, node)
    shell_path = os.environ.get("SHELL") or "/bin/bash"
    click.echo(f"shell in {namespace}; 'exit' to leave", err=True)
    exec_in(namespace, [shell_path], {"NETLAB_NODE": node, "PS1": f"[{namespace}] \\w# "})


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL; labs, nodes, pods and Services complete.

    \b
    bash:  eval "$(netlab completion bash)"   (or save it in /etc/bash_completion.d/netlab)
    zsh:   eval "$(netlab completion zsh)"
    fish:  netlab completion fish > ~/.config/fish/completions/netlab.fish
    """
    from netlab.cli.complete import script

    click.echo(script(shell, main))


def _register_commands() -> None:
    """The kubectl-style, pod (logs, exec, top), image, proxy, trace and graph commands
    live in their own modules; each imports its heavy dependencies (aiohttp, pyroute2,
    scapy) only when it runs."""
    from netlab.cli import dns, examples, fault, graph, images, kube, pods, policy, proxy, trace

    for module in (dns, graph, images, kube, pods, policy, proxy, trace):
        for command in module.COMMANDS:
            main.add_command(command)
    main.add_command(fault.fault)
    examples.add_examples(main)


_register_commands()


def _require_root() -> None:
    if os.geteuid() != 0:
        fail("netlab needs root to create network namespaces; run it with sudo", 1)


if __name__ == "__main__":
    main(prog_name="netlab")  # as the console script: usage lines and _NETLAB_COMPLETE
