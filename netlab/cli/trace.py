"""``netlab trace`` and ``netlab capture``: follow one probe, or watch an interface live.

- ``trace SRC DST [--port N] [--proto tcp|udp|icmp] [--reply/--no-reply]
  [-o table|json|svg|html] [--output-file F] [--pcap DIR]``: sends one tagged
  probe and reports every hop it and its answer made (see ``netlab.trace``; the
  JSON schema is in ``netlab.trace.report``; svg and html draw that document as
  swimlanes, ``netlab.graph.tracepic``). Exit status 0 when the probe was delivered, 1
  when it was refused or lost, 2 for a name or option that is wrong.
- ``capture NODE|POD [IFACE] [-- tcpdump args]``: replaces itself with
  ``tcpdump`` inside the node's or pod's network namespace (``any`` for a
  node, ``eth0`` for a pod, unless IFACE names one of the namespace's
  interfaces), for those who want the raw packets.

Thin: parse, call the library, render. The lead registers ``trace`` and
``capture`` (``COMMANDS``) in ``netlab.cli.main``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
from typing import TYPE_CHECKING

import click

from netlab.cli.common import fail, lab_option, standalone_group
from netlab.cli.complete import complete_targets, complete_trace_targets

if TYPE_CHECKING:
    from netlab.trace.model import TraceResult


def _lab(lab: str | None) -> str:
    from netlab.lab.state import LabError, implied_lab

    try:
        return implied_lab(lab)
    except LabError as err:
        fail(f"{err} (use --lab)", 2)


def _require_root() -> None:
    if os.geteuid() != 0:
        fail("tracing needs root (capture sockets and nftables in the lab's namespaces); "
              "run it with sudo", 1)


def _terminate_as_exit(signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C does, so the trace's cleanup runs.
    sys.exit(128 + signum)


@click.command("trace")
@lab_option
@click.argument("src", shell_complete=complete_targets)
@click.argument("dst", shell_complete=complete_trace_targets)
@click.option("--port", type=int, help="Destination port (for a pod, node or address).")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]),
              help="Probe protocol; default: the Service port's, tcp with a port, else icmp.")
@click.option("--reply/--no-reply", default=True, show_default=True,
              help="Show the reply path.")
@click.option("-o", "--output", type=click.Choice(["table", "json", "svg", "html"]),
              default="table", show_default=True,
              help="svg and html draw the hops as swimlanes per namespace (needs Graphviz).")
@click.option("--output-file", type=click.Path(dir_okay=False),
              help="Write the output here instead of stdout.")
@click.option("--pcap", "pcap_dir", type=click.Path(file_okay=False),
              help="Write one pcap per interface the probe crossed into this directory.")
@click.option("-n", "--namespace", default="default", show_default=True,
              help="Kubernetes namespace of pod and Service names.")
@click.option("--timeout", type=float, default=2.0, show_default=True,
              help="Seconds to wait for the answer.")
def trace(lab: str | None, src: str, dst: str, port: int | None, proto: str | None,
          reply: bool, output: str, output_file: str | None, pcap_dir: str | None,
          namespace: str, timeout: float) -> None:
    """Send one tagged probe from SRC to DST and show every hop it makes.

    SRC is a pod or a node (cluster or external). DST is a pod, a node,
    svc/NAME[:PORT], node/NAME:PORT (a NodePort) or IP[:PORT].

    \b
    Examples:
      netlab trace web-1 svc/web:80                   # a pod to a Service, hop by hop
      netlab trace client node/worker1:30080          # an outside client to a NodePort
      netlab trace web-1 svc/web -o html --output-file trace.html   # swimlanes, one page
    """
    _require_root()
    from netlab.trace.engine import TraceError, run_trace

    lab = _lab(lab)
    previous = signal.signal(signal.SIGTERM, _terminate_as_exit)
    try:
        result = run_trace(lab, src, dst, port=port, proto=proto, namespace=namespace,
                           timeout=timeout, pcap_dir=pcap_dir)
    except TraceError as err:
        fail(str(err), 2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _show(result, output, output_file, reply)
    sys.exit(0 if result.verdict.result == "delivered" else 1)


def _show(result: TraceResult, output: str, output_file: str | None, reply: bool) -> None:
    from netlab.cli.graph import write_picture
    from netlab.trace import report

    if output in ("svg", "html"):
        from netlab.graph.graphviz import GraphvizError
        from netlab.graph.output import render
        from netlab.graph.tracepic import trace_scene

        try:
            data = render(trace_scene(report.to_json(result, reply=reply)), output)
        except GraphvizError as err:
            fail(str(err), 1)
    elif output == "json":
        data = (json.dumps(report.to_json(result, reply=reply), indent=2) + "\n").encode()
    else:
        data = (report.to_table(result, reply=reply) + "\n").encode()
    write_picture(data, output, output_file)


def _interfaces(netns: str) -> set[str]:
    from netlab.kernel.netns import run_in_netns

    return {name for _, name in run_in_netns(netns, socket.if_nameindex)}


def _capture_target(lab: str, target: str, namespace: str) -> tuple[str, str]:
    """(network namespace, default interface) of a node or a pod."""
    from netlab.trace.engine import TraceError, lab_plan
    from netlab.trace.resolve import ResolveError, lab_pods_and_services, resolve_source

    try:
        plan = lab_plan(lab)
    except TraceError as err:
        fail(str(err), 2)
    a_node = target in [n.name for n in plan.nodes] or target.startswith("node/")
    pods = [] if a_node else lab_pods_and_services(lab, plan, services=False)[0]
    try:
        place = resolve_source(target, plan, pods, namespace)
    except ResolveError as err:
        fail(str(err), 2)
    assert place.netns is not None
    return place.netns, "eth0" if place.kind == "pod" else "any"


@click.command("capture", context_settings={"ignore_unknown_options": True})
@lab_option
@click.option("-n", "--namespace", default="default", show_default=True,
              help="Kubernetes namespace of a pod name.")
@click.argument("target", shell_complete=complete_targets)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def capture(lab: str | None, namespace: str, target: str, args: tuple[str, ...]) -> None:
    """Live tcpdump inside NODE's or POD's namespace: capture worker1 vxlan0 -- -c 5

    IFACE defaults to 'any' on a node and eth0 in a pod; everything else goes
    to tcpdump as it is.
    """
    _require_root()
    lab = _lab(lab)
    netns, iface = _capture_target(lab, target, namespace)
    from netlab.kernel import netns as nsmod

    if not nsmod.exists(netns):
        fail(f"the namespace {netns} is gone", 1)
    rest = list(args)
    if rest and not rest[0].startswith("-") and (rest[0] == "any"
                                                  or rest[0] in _interfaces(netns)):
        iface = rest.pop(0)
    binary = shutil.which("tcpdump")
    if binary is None:
        fail("tcpdump is not installed (apt-get install tcpdump)", 1)
    argv = [binary, "-n", "-i", iface, *rest]
    click.echo(f"capturing on {iface} in {netns}: {' '.join(argv[1:])}", err=True)
    sys.stdout.flush()
    nsmod.enter_netns(netns)
    os.execv(binary, argv)


COMMANDS = [trace, capture]


main = standalone_group(COMMANDS, "The trace commands alone (``python -m netlab.cli.trace``); "
                        "``netlab`` registers them.")

if __name__ == "__main__":
    main()
