"""``run_trace``: one traced probe, from names to a verdict.

The order matters, and every step that acquires something has its release
in one ``finally``:

1. resolve SRC and DST (``resolve``), pick the protocol and port, ask the
   source's kernel which address it sends from, reserve a source port;
2. build the probe with scapy *before* any capture opens, so the import
   (the one slow step) does not widen the capture window;
3. open the capture sockets in every namespace of the lab (``capture``) and
   the nftables trace in every node namespace (``nftrace``);
4. send the probe, and read until its answer is back in the source's
   namespace or the deadline passes;
5. close the sockets and delete the trace's tables (the ``finally``: also on
   an error or Ctrl-C), then correlate (``correlate``), decide
   (``verdict``), and write the pcaps.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any, Callable

from netlab.topology import LabPlan
from netlab.trace import correlate, labview, probe, verdict
from netlab.trace.capture import CaptureSet, wait_for_kernel_stamps
from netlab.trace.model import Frame, Place, TraceResult
from netlab.trace.nftrace import NfTrace
from netlab.trace.packets import parse_frame
from netlab.trace.resolve import (
    Resolver,
    lab_pods_and_services,
    resolve_source,
    resolve_target,
)

DEFAULT_TIMEOUT = 2.0
PROTOCOLS = ("tcp", "udp", "icmp")


class TraceError(RuntimeError):
    """A trace that could not run at all (unknown lab, bad SRC/DST, bad options)."""


def lab_plan(lab: str) -> LabPlan:
    """The lab's address plan, from the topology recorded when it came up."""
    from netlab.lab.state import load_state

    state = load_state(lab)
    if state is None or not state.spec:
        raise TraceError(f"no lab named {lab} is up")
    return state.plan()


def _route_check(netns: str, dst: str) -> str | None:
    """None when ``netns`` has a route to ``dst``, else the kernel's reason."""
    def lookup() -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((dst, 9))
            except OSError as exc:
                return exc.strerror or str(exc)
        return None

    from netlab.kernel.netns import run_in_netns

    try:
        return run_in_netns(netns, lookup)
    except OSError:
        return None


def choose_protocol(dst: Place, proto: str | None) -> str:
    if proto is not None:
        if proto not in PROTOCOLS:
            raise TraceError(f"--proto must be one of {', '.join(PROTOCOLS)}")
        return proto
    if dst.protocol in ("tcp", "udp"):
        return dst.protocol
    return "tcp" if dst.port else "icmp"


def run_trace(lab: str, src: str, dst: str, *, port: int | None = None,
              proto: str | None = None, namespace: str = "default",
              timeout: float = DEFAULT_TIMEOUT, pcap_dir: str | Path | None = None,
              resolver: Resolver | None = None, plan: LabPlan | None = None,
              on_sent: Callable[[], Any] | None = None) -> TraceResult:
    """Trace one probe from SRC to DST in ``lab``; see the module docstring.

    ``resolver`` defaults to the lab's API when it answers, else the records
    (``resolve.auto_resolver``). ``on_sent`` runs right after the probe left
    (tests use it to interrupt a trace midway).
    """
    started = time.monotonic()
    plan = plan or lab_plan(lab)
    pods, services = lab_pods_and_services(lab, plan, resolver)
    try:
        src_place = resolve_source(src, plan, pods, namespace)
        dst_place = resolve_target(dst, plan, pods, services, namespace, port)
    except ValueError as exc:
        raise TraceError(str(exc)) from exc
    protocol = choose_protocol(dst_place, proto)
    if protocol != "icmp" and not dst_place.port:
        raise TraceError(f"a {protocol} probe needs a port: add --port N")
    if dst_place.ip is None:
        raise TraceError(f"{dst} has no address to send to")
    assert src_place.netns is not None
    view = labview.LabView(plan, pods)
    send_error: str | None = None
    reserved: socket.socket | None = None
    try:
        src_ip = probe.source_address(src_place.netns, dst_place.ip, dst_place.port)
    except probe.SendError as exc:
        send_error, src_ip = str(exc.strerror or exc), src_place.ip or "0.0.0.0"
    sport = None
    if protocol != "icmp" and send_error is None:
        reserved = probe.reserve_port(src_place.netns, protocol, src_ip)
        sport = reserved.getsockname()[1]
    payload = probe.dns_query(dst_place.query) if dst_place.query and protocol == "udp" \
        else None
    the_probe = probe.new_probe(protocol, src_ip, dst_place.ip, sport, dst_place.port, payload)
    frames: list[Frame] = []
    tracer: NfTrace | None = None
    captures: CaptureSet | None = None
    stamped = True
    texts: dict[Any, Any] = {}
    ifnames: dict[str, dict[int, str]] = {}
    try:
        packet = probe.build(the_probe)
        captures = CaptureSet(view.namespaces())
        stamped = wait_for_kernel_stamps()
        reply_pair = (dst_place.ip, src_ip) if dst_place.kind in ("pod", "ip") else None
        tracer = NfTrace(view.node_namespaces(), the_probe, reply_pair)
        tracer.start()
        if send_error is None:
            try:
                probe.send(src_place.netns, packet, dst_place.ip)
            except probe.SendError as exc:
                send_error = str(exc.strerror or exc)
        if on_sent is not None:
            on_sent()
        if send_error is None:
            frames = _wait(captures, tracer, the_probe, src_place.netns, timeout)
        frames += captures.drain()
        tracer.drain()
        texts = tracer.rule_texts()
        ifnames = tracer.interface_names()
    finally:
        if captures is not None:
            captures.close()
        if tracer is not None:
            tracer.close()
        if reserved is not None:
            with contextlib.suppress(OSError):
                reserved.close()
    hops = correlate.correlate(frames, the_probe, view, tracer.events, texts, ifnames,
                               own_table=tracer.table,
                               vxlan_port=plan.topology.cluster.vxlan_port)
    result = TraceResult(
        lab=lab, src=src_place, dst=dst_place, probe=the_probe, hops=hops,
        verdict=verdict.decide(hops, the_probe, src_place, view, _route_check, send_error),
        namespaces=captures.namespaces if captures else [], nftrace=tracer.traced)
    if not stamped:
        result.warnings.append("the kernel did not stamp the captured frames in time: "
                               "the hops are in the order they were read")
    result.warnings += [f"no capture in {ns}: {why}" for ns, why in captures.failed.items()]
    result.warnings += [f"no nftables trace in {ns}: {why}" for ns, why in tracer.errors.items()]
    if pcap_dir is not None:
        result.pcaps = _write_pcaps(pcap_dir, hops)
    result.duration_ms = (time.monotonic() - started) * 1000
    return result


def _write_pcaps(directory: str | Path, hops: list[Any]) -> list[dict[str, Any]]:
    from netlab.trace.pcap import write_pcaps

    return write_pcaps(directory, hops)


def _wait(captures: CaptureSet, tracer: NfTrace, the_probe: Any, src_netns: str,
          timeout: float) -> list[Frame]:
    """Read until the answer is back in the source's namespace, or the deadline."""
    classifier = correlate.Classifier(the_probe)
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return frames
        batch = captures.poll(min(left, 0.05))
        tracer.drain()  # keep the netlink buffers from filling on a busy node
        frames += batch
        for frame in batch:
            packet = parse_frame(frame.data)
            if packet is None:
                continue
            path = classifier.classify(packet)
            if path == "reply" and frame.netns == src_netns and not frame.outgoing:
                return frames
