"""``netlab fault``: break a lab on purpose and watch it heal.

Thin: parse, call ``netlab.lab.faults``, print one line. The lead registers
the group in ``cli/main.py`` (``main.add_command(fault)``).

    netlab fault link-down worker2      # unplug worker2 from the physical network
    netlab fault link-up worker2        # plug it back in
    netlab fault kill kubelet worker2   # kill -9 a component; the supervisor restarts it
    netlab fault kill scheduler
    netlab fault status                 # each node's link
"""

from __future__ import annotations

import json
import os
import signal
from typing import Optional

import click

from netlab.cli.common import fail, lab_option
from netlab.cli.complete import complete_nodes


def _lab(lab: Optional[str]) -> str:
    from netlab.lab import state

    if os.geteuid() != 0:
        fail("netlab needs root to inject faults into a lab; run it with sudo")
    try:
        return state.implied_lab(lab)
    except state.LabError as err:
        fail(str(err), 2)


LAB_OPTION = lab_option


@click.group("fault")
def fault() -> None:
    """Break a lab on purpose: cut a node's link, kill a component."""


def _link(lab: Optional[str], node: str, up: bool) -> None:
    from netlab.lab import faults

    name = _lab(lab)
    try:
        change = faults.set_link(name, node, up)
    except faults.FaultError as err:
        fail(str(err), 2)
    state = "up" if up else "down"
    if change.changed:
        click.echo(f"{node}: link {state} ({change.port} in {change.netns})")
    else:
        click.echo(f"{node}: link already {state} ({change.port} in {change.netns})")


@fault.command("link-down")
@LAB_OPTION
@click.argument("node", shell_complete=complete_nodes)
def link_down(lab: Optional[str], node: str) -> None:
    """Take NODE's underlay link down: its kubelet and pods lose the network."""
    _link(lab, node, False)


@fault.command("link-up")
@LAB_OPTION
@click.argument("node", shell_complete=complete_nodes)
def link_up(lab: Optional[str], node: str) -> None:
    """Bring NODE's underlay link back up."""
    _link(lab, node, True)


@fault.command("kill")
@LAB_OPTION
@click.option("-s", "--signal", "sig", default="KILL", show_default=True,
              help="Signal to send (KILL, TERM, ...).")
@click.argument("component")
@click.argument("node", required=False, shell_complete=complete_nodes)
def kill(lab: Optional[str], sig: str, component: str, node: Optional[str]) -> None:
    """Kill COMPONENT (apiserver, scheduler, kubelet...) [on NODE] by its recorded pid."""
    from netlab.lab import faults

    name = _lab(lab)
    try:
        signum = signal.Signals[sig.upper() if sig.upper().startswith("SIG")
                                else f"SIG{sig.upper()}"]
    except KeyError:
        fail(f"unknown signal {sig!r}", 2)
    try:
        killed = faults.kill_component(name, component, node, signum)
    except faults.FaultError as err:
        fail(str(err), 2)
    where = f" on {killed.node}" if killed.node else ""
    click.echo(f"{killed.component}{where}: sent {killed.signal} to pid {killed.pid}; "
               "the supervisor will restart it")


@fault.command("status")
@LAB_OPTION
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def status(lab: Optional[str], output: str) -> None:
    """Show each node's underlay link."""
    from netlab.cli.render import columns
    from netlab.lab import faults

    name = _lab(lab)
    try:
        states = faults.link_states(name)
    except faults.FaultError as err:
        fail(str(err), 2)
    if output == "json":
        click.echo(json.dumps({"lab": name, "links": [{"node": n, "up": up}
                                                      for n, up in states.items()]},
                              indent=2))
        return
    click.echo(columns(["NODE", "LINK"], [[n, "up" if up else "DOWN"]
                                          for n, up in states.items()]))
