"""``netlab dns lookup NAME [-n NS] [--type A] [--node NODE]``: what a pod would get.

Runs the resolver of a ``ClusterFirst`` pod in namespace NS (search path
``NS.svc.<zone> svc.<zone> <zone>``, ``ndots:5``) inside a worker node's namespace,
against the kube-dns Service address, so the queries take the path a pod's take:
kube-proxy, the underlay, the DNS component. Prints every name tried with its
answer code, then the records. Exit status 0 when a name resolved, 1 when none did,
2 for a lab or node that is wrong.

Thin: parse, call ``netlab.dns.lookup`` inside the namespace, render.
"""

from __future__ import annotations

import json

import click

from netlab.cli.common import fail, lab_option, node_namespace
from netlab.cli.complete import complete_services


@click.group()
def dns() -> None:
    """Cluster DNS: ask it what a pod would."""


@dns.command()
@click.argument("name", shell_complete=complete_services)
@click.option("-n", "--namespace", default="default", show_default=True,
              help="The namespace of the pod asking (its search path).")
@click.option("--type", "rdtype", default="A", show_default=True,
              help="The record type: A, SRV, PTR, CNAME, TXT ...")
@click.option("--node", help="The node to ask from (default: the first worker).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@lab_option
def lookup(name: str, namespace: str, rdtype: str, node: str | None, output: str,
           lab: str | None) -> None:
    """Resolve NAME as a pod in NAMESPACE would, showing the search-path expansion."""
    from netlab.dns.addon import cluster_dns_ip
    from netlab.dns.lookup import cluster_searches
    from netlab.dns.lookup import lookup as resolve
    from netlab.kernel.netns import run_in_netns
    from netlab.lab.state import LabError, implied_lab, load_state
    from netlab.topology import TopologyError

    try:
        lab = implied_lab(lab)
    except LabError as err:
        fail(f"{err} (use --lab)", 2)
    state = load_state(lab)
    if state is None or not state.spec:
        fail(f"lab {lab} is not up", 2)
    try:
        topology = state.plan().topology
    except TopologyError as err:
        fail(str(err), 2)
    workers = [n.name for n in topology.cluster_nodes if n.role == "worker"]
    node = node or (workers[0] if workers else topology.control_plane.name)
    netns = node_namespace(lab, node)
    server = cluster_dns_ip(topology.cluster.service_subnet)
    searches = cluster_searches(namespace, topology.cluster.dns_domain)
    attempts = run_in_netns(netns, lambda: resolve(server, name, searches, rdtype.upper()))
    last = attempts[-1]
    if output == "json":
        click.echo(json.dumps({
            "name": name, "namespace": namespace, "node": node, "nameserver": server,
            "search": list(searches), "ndots": 5, "type": rdtype.upper(),
            "attempts": [{"name": a.name, "rcode": a.rcode, "tcp": a.tcp, "answers": a.answers}
                         for a in attempts]}, indent=2))
        raise SystemExit(0 if last.answers else 1)
    click.echo(f";; as a pod in {namespace} on {node}: nameserver {server}, "
               f"search {' '.join(searches)}, ndots:5")
    for attempt in attempts:
        via = " (truncated over UDP, retried over TCP)" if attempt.tcp else ""
        click.echo(f"{attempt.name:<50} {attempt.rcode}{via}")
    if last.answers:
        click.echo("")
        for line in last.answers:
            click.echo(line)
    raise SystemExit(0 if last.answers else 1)


COMMANDS = [dns]
