"""``netlab policy show NODE`` and ``netlab policy check SRC DST PORT/PROTO``.

``show`` prints the node's compiled NetworkPolicy table as the kernel holds it
(every chain, set and rule labelled with its policy, direction and rule
number), under a list of the pods isolated there. ``check`` answers whether
SRC may open a connection to DST from the compiled rules, without sending a
packet, and names the policies that decided. Exit status 0 (allowed) or 1
(denied); 2 for a lab, name or port that is wrong.
"""

from __future__ import annotations

import json
import sys

import click

from netlab.cli.common import fail


@click.group()
def policy() -> None:
    """NetworkPolicy: the compiled rules of a node, and what they decide."""


def _lab_nodes(lab: str | None) -> tuple[str, dict[str, dict]]:
    from netlab.lab import lifecycle, state

    try:
        lab = state.implied_lab(lab)
        return lab, {n["name"]: n for n in lifecycle.status(lab)["nodes"]}
    except lifecycle.LabError as err:
        fail(str(err), 2)


@policy.command()
@click.option("--lab", help="The lab (implied when only one is up).")
@click.argument("node")
def show(lab: str | None, node: str) -> None:
    """Print NODE's policy table, labelled by policy, direction and rule."""
    from netlab.kernel import nft
    from netlab.node.netpol import ruleset
    from netlab.node.netpol.inspect import describe_table

    lab, nodes = _lab_nodes(lab)
    if node not in nodes or not nodes[node]["podSubnet"]:
        fail(f"lab {lab} has no cluster node {node!r} (cluster nodes: "
             f"{', '.join(n for n, v in nodes.items() if v['podSubnet'])})", 2)
    text = nft.list_table(nodes[node]["namespace"], ruleset.TABLE, ruleset.FAMILY)
    if text is None:
        click.echo(f"no policy table in {nodes[node]['namespace']}: is the agent running? "
                   f"(see /run/netlab/{lab}/logs/netpol-{node}.log)")
        return
    click.echo(describe_table(text), nl=False)


@policy.command()
@click.option("--lab", help="The lab (implied when only one is up).")
@click.option("-n", "--namespace", default="default", show_default=True,
              help="The namespace of SRC and DST given without one.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.argument("src")
@click.argument("dst")
@click.argument("port")
def check(lab: str | None, namespace: str, output: str, src: str, dst: str,
          port: str) -> None:
    """May SRC open a connection to DST on PORT/PROTO (80/tcp, 53/udp, icmp)?

    SRC and DST: a pod (NS/NAME, or NAME with -n), a node, an IPv4 address;
    DST may be svc/[NS/]NAME, judged per ready endpoint after DNAT.
    """
    from netlab.client import SyncClient, lab_client
    from netlab.node.netpol import inspect

    lab, nodes = _lab_nodes(lab)
    addresses = {name: v["underlayIP"] for name, v in nodes.items() if v.get("underlayIP")}
    try:
        number, proto = inspect.parse_port(port)
    except inspect.CheckError as err:
        fail(str(err), 2)
    client = SyncClient(lab_client(lab, timeout=10.0))
    try:
        objects = {kind: client.list(kind).get("items", [])
                   for kind in ("networkpolicies", "pods", "namespaces", "services",
                                "endpointslices")}
    finally:
        client.close()
    cluster = inspect.load_cluster(objects)
    try:
        sources = inspect.resolve(src, cluster, addresses, namespace)
        targets = inspect.resolve(dst, cluster, addresses, namespace, objects["services"],
                                  objects["endpointslices"], number, proto)
    except inspect.CheckError as err:
        fail(str(err), 2)
    subnets = {name: v["podSubnet"] for name, v in nodes.items() if v.get("podSubnet")}
    results = [inspect.check(cluster, s, t, number, proto, addresses, subnets)
               for s in sources for t in targets]
    if output == "json":
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for r in results:
            click.echo("\n".join(r.lines()))
    sys.exit(0 if all(r.decision.allowed for r in results) else 1)


COMMANDS = [policy]
