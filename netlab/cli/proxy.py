"""``netlab proxy show NODE``: a node's kube-proxy ruleset, labelled by service and endpoint."""

from __future__ import annotations

import json
import sys

import click

from netlab.cli.common import lab_option
from netlab.cli.complete import complete_nodes


@click.group()
def proxy() -> None:
    """Inspect the nftables kube-proxy of a node."""


@proxy.command()
@lab_option
@click.argument("node", shell_complete=complete_nodes)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def show(lab: str | None, node: str, output: str) -> None:
    """Print NODE's proxy table, each chain labelled with its service and endpoint."""
    from netlab.lab import lifecycle, state
    from netlab.node.proxy import ruleset
    from netlab.node.proxy.describe import describe, summary
    from netlab.node.proxy.syncer import list_proxy_tables

    try:
        lab = state.implied_lab(lab)
        nodes = {n["name"]: n for n in lifecycle.status(lab)["nodes"]}
    except lifecycle.LabError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    if node not in nodes or not nodes[node]["podSubnet"]:
        click.echo(f"error: lab {lab} has no cluster node {node!r} "
                   f"(cluster nodes: {', '.join(n for n, v in nodes.items() if v['podSubnet'])})",
                   err=True)
        sys.exit(2)
    text = list_proxy_tables(nodes[node]["namespace"])
    if text is None:
        click.echo(f"no proxy table in {nodes[node]['namespace']}: is the proxy running? "
                   f"(see /run/netlab/{lab}/logs/proxy-{node}.log)")
        return
    if output == "json":
        click.echo(json.dumps({"lab": lab, "node": node, "table": f"{ruleset.FAMILY} "
                               f"{ruleset.TABLE}", "servicePorts": summary(text)}, indent=2))
        return
    click.echo(describe(text))


COMMANDS = [proxy]
