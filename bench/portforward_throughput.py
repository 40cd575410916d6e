#!/usr/bin/env python3
"""Throughput through ``kubectl port-forward`` against a direct connection to the pod, same run.

Run as root:  .venv/bin/python bench/portforward_throughput.py [--mib 256] [--runs 5]
                  [--kubectl PATH] [--profile DIR]

A lab with one worker runs a pod whose server (the host's python3, as a pod
``command``) sends zeros to every connection on port 9000 until the client closes.
Each round reads ``--mib`` MiB twice, alternating the order: once over a direct
TCP connection to the pod's IP from the control-plane node's namespace (where the
API server runs), once through ``kubectl port-forward`` on 127.0.0.1 (kubectl ->
API server's SPDY session -> WebSocket over TLS to the kubelet -> the pod).
Printed: the median MiB/s of each and their ratio (target >= 0.3), and the CPU
seconds kubectl, the API server and the kubelet spent per GiB forwarded.

The floor (skipped with ``--no-floor``): in each round, the same reads through the same
hops relayed by socat, C and OpenSSL with no Python or framing anywhere, the lab's own
certificates verified on each TLS hop. socat as kubelet, in the worker's namespace: a
TLS listener on its underlay address that connects to the pod; socat as the API
server, in the control plane's: a TLS listener on its loopback (with the API server's
certificate) that dials the former over TLS; socat as kubectl: a TCP listener on that
loopback that dials the latter over TLS; the reader, as for the direct read, in the
control plane's namespace. It is what any implementation of those three TLS endpoints
costs on this machine: kube-apiserver's hop is a TLS relay too, and kubectl's is Go.

``--profile DIR`` samples the API server and the kubelet with py-spy (``pip install
py-spy``; with native frames, so time in ssl and zlib shows) while the forwarded
rounds run, and writes DIR/apiserver.txt and DIR/kubelet.txt: collapsed stacks, and a
summary of the functions that the most samples were in (self) at the top.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
from kubelet_pods import lab_with_pod

from netlab.kernel import netns
from netlab.lab.pki import kubelet_cert_paths, pki_paths
from netlab.lab.state import components_path, read_json
from netlab.paths import lab_dir
from netlab.topology.plan import node_netns

SERVER = """\
import socket, threading
zeros = bytes(1 << 20)
def serve(conn):
    with conn:
        try:
            while True:
                conn.sendall(zeros)
        except OSError:
            pass
listener = socket.create_server(("0.0.0.0", 9000), backlog=16)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-pf"},
       "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
           "name": "zeros", "image": "netlab/echo", "command": ["python3", "-c", SERVER],
           "readinessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1}}]}}


def read_exactly(sock: socket.socket, size: int) -> float:
    """MiB/s reading ``size`` bytes from ``sock``."""
    buf = bytearray(1 << 20)
    got = 0
    start = time.perf_counter()
    while got < size:
        n = sock.recv_into(buf)
        if not n:
            raise SystemExit(f"the stream ended after {got} bytes")
        got += n
    return size / (1 << 20) / (time.perf_counter() - start)


def read_all(sock: socket.socket, size: int) -> float:
    """MiB/s reading ``size`` bytes from ``sock`` (then closed)."""
    with sock:
        return read_exactly(sock, size)


def drain(sock: socket.socket) -> None:
    """Half-close ``sock`` and read it to its end."""
    sock.shutdown(socket.SHUT_WR)
    buf = bytearray(1 << 20)
    while sock.recv_into(buf):
        pass


def summarize(raw: str, top: int = 40) -> str:
    """The functions most samples ended in, then the collapsed stacks as py-spy wrote them."""
    self_count: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        self_count[stack.split(";")[-1]] += int(count)
    lines = [f"{n * 100 / max(total, 1):5.1f}%  {name}" for name, n in self_count.most_common(top)]
    return "\n".join([f"samples: {total}", *lines, "", raw])


# socat reads this much at a time (its TLS side gets at most one 16 KiB record per read).
SOCAT_BUFFER = 256 << 10
FLOOR_PORTS = {"kubelet": 19443, "apiserver": 19444, "kubectl": 19445}
LISTEN_TIMEOUT = 10.0


def listening(pid: int, port: int) -> bool:
    """Whether a socket listens on ``port`` in ``pid``'s network namespace."""
    with open(f"/proc/{pid}/net/tcp") as table:
        next(table)
        return any(f":{port:04X}" in line.split()[1] and line.split()[3] == "0A"
                   for line in table)


@contextlib.contextmanager
def socat(ns: str, *addresses: str) -> Iterator[subprocess.Popen[bytes]]:
    """One socat relaying one connection between ``addresses``, in namespace ``ns``,
    once its listener is up; stopped (by its pid) if it has not ended by itself."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "socat", "-b", str(SOCAT_BUFFER),
                             *addresses], stderr=subprocess.DEVNULL)
    try:
        port = int(addresses[0].split(":")[1].split(",")[0])
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while not listening(proc.pid, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"socat did not listen on {port} in {ns}")
            time.sleep(0.01)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def floor_read(lab: str, worker: str, worker_ip: str, pod_ip: str, size: int,
               cpu: dict[str, float]) -> float:
    """MiB/s reading ``size`` bytes through the socat chain (see the docstring); adds each
    socat's CPU seconds to ``cpu``."""
    server = pki_paths(lab_dir(lab))
    ca = server.ca_cert
    kubelet_cert, kubelet_key = kubelet_cert_paths(lab_dir(lab), worker)
    cp, wk = node_netns(lab, "control-plane"), node_netns(lab, worker)
    ports = FLOOR_PORTS
    hops = [
        ("kubelet", wk, f"OPENSSL-LISTEN:{ports['kubelet']},bind={worker_ip},reuseaddr,"
                        f"cert={kubelet_cert},key={kubelet_key},verify=0",
         f"TCP:{pod_ip}:9000"),
        ("apiserver", cp, f"OPENSSL-LISTEN:{ports['apiserver']},bind=127.0.0.1,reuseaddr,"
                          f"cert={server.server_cert},key={server.server_key},verify=0",
         f"OPENSSL:{worker_ip}:{ports['kubelet']},cafile={ca}"),
        ("kubectl", cp, f"TCP-LISTEN:{ports['kubectl']},bind=127.0.0.1,reuseaddr",
         f"OPENSSL:127.0.0.1:{ports['apiserver']},cafile={ca}"),
    ]
    with contextlib.ExitStack() as stack:
        procs = [(name, stack.enter_context(socat(ns, *addresses)))
                 for name, ns, *addresses in hops]
        rate = read_all(netns.run_in_netns(
            cp, lambda: socket.create_connection(("127.0.0.1", ports["kubectl"]))), size)
        for name, proc in procs:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc.wait(timeout=LISTEN_TIMEOUT)  # each ends with its connection
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name] += (after.ru_utime + after.ru_stime -
                          before.ru_utime - before.ru_stime)
    return rate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kubectl", default="/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the API server and kubelet")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the socat chain of the same hops")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    lab = f"nlb{os.getpid() % 100000}"
    topo = {"name": lab, "nodes": [{"name": "control-plane", "role": "control-plane"},
                                   {"name": "worker1", "role": "worker"}]}
    size = args.mib << 20
    with lab_with_pod(topo, 2, POD, args.kubectl) as kubectl:
        forward = None
        try:
            ip = subprocess.run([*kubectl, "get", "pod", "bench-pf", "-o",
                                 "jsonpath={.status.podIP}"], capture_output=True, text=True,
                                check=True).stdout
            local = free_port()
            forward = subprocess.Popen([*kubectl, "port-forward", "--address", "127.0.0.1",
                                        "pod/bench-pf", f"{local}:9000"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert forward.stdout is not None
            if b"Forwarding from" not in forward.stdout.readline():
                raise SystemExit("kubectl port-forward did not start")
            ns = node_netns(lab, "control-plane")

            def direct() -> float:
                return read_all(netns.run_in_netns(
                    ns, lambda: socket.create_connection((ip, 9000))), size)

            node = subprocess.run([*kubectl, "get", "pod", "bench-pf", "-o",
                                   "jsonpath={.spec.nodeName}"], capture_output=True,
                                  text=True, check=True).stdout
            components = read_json(components_path(lab)) or {}
            hops = {"kubectl": psutil.Process(forward.pid),
                    "apiserver": psutil.Process(components["apiserver"]["pid"]),
                    "kubelet": psutil.Process(components[f"kubelet-{node}"]["pid"])}
            cpu = dict.fromkeys(hops, 0.0)
            sys_cpu = dict.fromkeys(hops, 0.0)

            def forwarded() -> float:
                before = {k: p.cpu_times()[:2] for k, p in hops.items()}
                with socket.create_connection(("127.0.0.1", local)) as sock:
                    rate = read_exactly(sock, size)
                    for k, p in hops.items():
                        user, system = p.cpu_times()[:2]
                        cpu[k] += user + system - sum(before[k])
                        sys_cpu[k] += system - before[k][1]
                    # Drained, not closed while data flows: kubectl before 1.32 (SPDY)
                    # wedges one of its frame queues on the late data of a stream whose
                    # reader left, and later connections time out (client-go's fix
                    # came in 1.32; docs/benchmarks.md).
                    drain(sock)
                return rate

            direct(), forwarded()  # warm both
            cpu, sys_cpu = dict.fromkeys(hops, 0.0), dict.fromkeys(hops, 0.0)
            spies = []
            if args.profile:
                spy = shutil.which("py-spy") or os.path.join(os.path.dirname(
                    os.path.abspath(sys.executable)), "py-spy")
                os.makedirs(args.profile, exist_ok=True)
                for name in ("apiserver", "kubelet"):
                    out = os.path.join(args.profile, f"{name}.raw")
                    spies.append((out, subprocess.Popen(
                        [spy, "record", "--pid", str(hops[name].pid), "--native",
                         "--format", "raw", "--rate", "200", "-o", out],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            worker_ip = subprocess.run(
                [*kubectl, "get", "node", node, "-o",
                 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}'],
                capture_output=True, text=True, check=True).stdout
            floor_cpu = dict.fromkeys(hops, 0.0)

            def floor() -> float:
                return floor_read(lab, node, worker_ip, ip, size, floor_cpu)

            d_rates, f_rates, c_rates = [], [], []
            for i in range(args.runs):
                rounds = [(direct, d_rates), (forwarded, f_rates)]
                if not args.no_floor:
                    rounds.append((floor, c_rates))
                for run, into in rounds if i % 2 == 0 else reversed(rounds):
                    into.append(run())
            for out, proc in spies:
                proc.send_signal(2)  # py-spy writes its file on SIGINT
                proc.wait(timeout=60)
                if os.path.exists(out):
                    with open(out) as f, open(out[:-4] + ".txt", "w") as summary:
                        summary.write(summarize(f.read()))
        finally:
            if forward is not None:
                forward.kill()
                forward.wait()
    d50, f50 = statistics.median(d_rates), statistics.median(f_rates)
    print(f"direct to the pod:        {d50:8.1f} MiB/s (median of {args.runs}, "
          f"{args.mib} MiB each)")
    print(f"through kubectl port-forward: {f50:8.1f} MiB/s")
    print(f"ratio port-forward/direct: {f50 / d50:.3f} (target >= 0.3)")
    gib = args.runs * size / (1 << 30)
    print("CPU seconds per GiB forwarded (of which in the kernel): " +
          ", ".join(f"{k} {v / gib:.2f} ({sys_cpu[k] / gib:.2f})" for k, v in cpu.items()) +
          f"; total {sum(cpu.values()) / gib:.2f}")
    if c_rates:
        c50 = statistics.median(c_rates)
        print(f"floor, the same hops relayed by socat: {c50:8.1f} MiB/s, ratio "
              f"{c50 / d50:.3f}; port-forward/floor {f50 / c50:.2f}")
        print("socat's CPU seconds per GiB, as: " +
              ", ".join(f"{k} {v / gib:.2f}" for k, v in floor_cpu.items()) +
              f"; total {sum(floor_cpu.values()) / gib:.2f}")
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
