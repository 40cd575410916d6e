#!/usr/bin/env python3
"""Pod start-up through the kubelet: 100 pods at once on 3 workers.

Run as root:  .venv/bin/python bench/kubelet_pods.py [--pods 100] [--workers 3]

It brings up a lab (control plane + N workers), waits for the Nodes to be
Ready, then creates the pods at once through the API with ``spec.nodeName``
set round-robin (what the scheduler will do), and watches them. Figures:

- *all Running*: from the first create to the last pod seen Running;
- *start latency* p50/p99 per pod: from its create (binding) being
  acknowledged to the watch event that shows it Running;
- *sequential latency*: the same, one pod at a time (no queueing): what a
  single pod costs end to end;
- kubelet RSS (psutil), the largest of the kubelets, after the burst.

Baselines, measured in the same run on the same lab:

- *crun directly* (the one the ratio is against): the same containers started by
  ``crun run --detach`` from their bundles (``config.json`` from the runtime's own
  builder), in pod sandboxes made beforehand, 16 at a time: what the OCI runtime
  itself costs, with no monitor, no API and no kubelet;
- *runtime library*: the same number of pods through ``Runtime.run_pod_sandbox`` +
  ``start_container`` (sandbox, bundle, conmon, crun), from threads in the node
  namespaces, no API, no kubelet.

Both baselines run the image the burst runs (``--image``), and the output says which
root that is.

The ratio kubelet/crun is everything netlab adds (sandbox, conmon, API writes,
watch, events, status) on top of crun's own work.


Containers run ``sleep 3600``. ``--image`` picks what runs it: ``busybox`` (the
default) is the stored image, so each container gets its own overlay root; an image
that is not stored, such as ``bench/sleep:1``, runs the host's ``sleep`` with the
host's files read-only (in a root of its own), which is how every image ran before
the image store (use it to compare with older commits).
The baselines run the same image (its overlay mounted in crun's mount namespace,
as the runtime does), or the host's ``sleep`` when the burst does.

*lab CPU per pod* is the CPU of the lab's components and of the children they
reaped: conmon's launcher and ``crun start``, not conmon's monitor (it forks away
from the kubelet) nor the ``crun create`` it runs, whose CPU no figure here counts.
*by component* splits it (per pod of the burst, so a kubelet's figure is a third of
what each of its own pods costs it). CPU figures hold on a loaded machine where the
times do not.

``--profile PATH`` profiles the runtime-library baseline with cProfile on
``time.thread_time`` in every thread (the throwaway threads that enter the node's and
the pods' namespaces too) and writes the merged statistics to PATH
(``python -m pstats PATH``). The profiler's own cost inflates pure-Python code most,
so read it for where the time goes, and the unprofiled CPU figures for how much.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import yaml

from netlab.client import lab_client
from netlab.kernel.netns import run_in_netns
from netlab.lab import lifecycle
from netlab.lab.state import components_path, read_json
from netlab.node.runtime import ContainerSpec, PodSpec, Runtime
from netlab.topology import load_topology, plan_lab

COMMAND = ["sleep", "3600"]


def topology(name: str, workers: int) -> dict:
    nodes = [{"name": "control-plane", "role": "control-plane"}]
    nodes += [{"name": f"worker{i}", "role": "worker", "maxPods": 110}
              for i in range(1, workers + 1)]
    return {"name": name, "nodes": nodes}


IMAGE = "busybox"


def pod(name: str, node: str, image: str = IMAGE) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"bench": "kubelet"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": image, "command": COMMAND}]}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def wait_nodes_ready(lab: str, count: int, timeout: float = 60) -> None:
    async with lab_client(lab) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = (await client.list("nodes"))["items"]
            ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in n["status"].get("conditions", []))]
            if len(ready) >= count:
                return
            await asyncio.sleep(0.1)  # probe interval
    raise SystemExit("nodes did not become Ready")


@contextlib.contextmanager
def running_lab(topology_data: dict, ready_nodes: int) -> Iterator[Path]:
    """Bring a lab up from ``topology_data`` (its ``name`` is the lab), wait until
    ``ready_nodes`` Nodes are Ready, yield the topology file, and take it down."""
    lab = topology_data["name"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(topology_data))
        lifecycle.up(path)
        try:
            asyncio.run(wait_nodes_ready(lab, ready_nodes))
            yield path
        finally:
            lifecycle.down(lab)


@contextlib.contextmanager
def lab_with_pod(topology_data: dict, ready_nodes: int, manifest: dict,
                 kubectl: str) -> Iterator[list[str]]:
    """:func:`running_lab`, then the lab's admin kubeconfig written 0600 in a private
    temporary directory (it holds the lab's admin credentials: never a predictable,
    world-readable file), ``manifest`` (one Pod) applied with kubectl and waited for
    Ready; yields the kubectl command line that uses that kubeconfig."""
    lab = topology_data["name"]
    with running_lab(topology_data, ready_nodes), \
            tempfile.TemporaryDirectory(prefix="netlab-bench-") as private:
        out = subprocess.run([sys.executable, "-m", "netlab.cli.main", "kubeconfig",
                              "--lab", lab], capture_output=True, text=True, check=True)
        config = Path(private) / "kubeconfig"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(out.stdout)
        argv = [kubectl, "--kubeconfig", str(config)]
        subprocess.run([*argv, "apply", "-f", "-"], input=json.dumps(manifest).encode(),
                       check=True, capture_output=True)
        subprocess.run([*argv, "wait", "--for=condition=Ready",
                        f"pod/{manifest['metadata']['name']}", "--timeout=120s"],
                       check=True, capture_output=True)
        yield argv


async def burst(lab: str, names: list[str], nodes: list[str],
                image: str = IMAGE) -> dict[str, float]:
    """Create all pods at once; return per-pod latency (create ack -> seen Running)."""
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    async with lab_client(lab) as client:
        listing = await client.list("pods", "default", label_selector="bench=kubelet")
        rv = listing["metadata"]["resourceVersion"]
        done = asyncio.Event()

        async def watch() -> None:
            async for event in client.watch("pods", "default", resource_version=rv,
                                            label_selector="bench=kubelet"):
                obj = event.get("object") or {}
                name = (obj.get("metadata") or {}).get("name")
                if name in names and name not in running and \
                        (obj.get("status") or {}).get("phase") == "Running":
                    running[name] = time.monotonic()
                    if len(running) == len(names):
                        done.set()
                        return

        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0.2)  # let the watch connect before the first create
        slots = asyncio.Semaphore(32)

        async def create(i: int, name: str) -> None:
            async with slots:
                await client.create(pod(name, nodes[i % len(nodes)], image))
                created[name] = time.monotonic()

        t0 = time.monotonic()
        await asyncio.gather(*(create(i, n) for i, n in enumerate(names)))
        await asyncio.wait_for(done.wait(), 120)
        watcher.cancel()
        created["__start__"] = t0
    return {n: running[n] - created[n] for n in names} | {
        "__all__": max(running.values()) - created["__start__"]}


async def sequential(lab: str, names: list[str], nodes: list[str],
                     image: str = IMAGE) -> list[float]:
    out = []
    async with lab_client(lab) as client:
        for i, name in enumerate(names):
            listing = await client.list("pods", "default", label_selector="bench=kubelet")
            rv = listing["metadata"]["resourceVersion"]
            await client.create(pod(name, nodes[i % len(nodes)], image))
            created = time.monotonic()
            async for event in client.watch("pods", "default", resource_version=rv,
                                            field_selector=f"metadata.name={name}"):
                if (event["object"].get("status") or {}).get("phase") == "Running":
                    out.append(time.monotonic() - created)
                    break
    return out


def baseline_container(image: str) -> tuple[ContainerSpec, str]:
    """The container the baselines start, running ``image`` as the burst's pods do: its
    layers when the store has it, else the host's ``sleep``; and what that is, in words."""
    from netlab.images.store import ImageStore, default_root

    stored = ImageStore(default_root()).lookup(image)
    if stored is not None:
        return (ContainerSpec("c", command=tuple(COMMAND), rootfs=stored.layer_dirs),
                f"{image} (stored: its own overlay root)")
    return (ContainerSpec("c", command=tuple(COMMAND)),
            f"{image} (not stored: the host's sleep, host files read-only)")


@contextlib.contextmanager
def profiled_threads(path: str | None) -> Iterator[None]:
    """cProfile with ``time.thread_time`` (CPU, not wall) in every thread started
    meanwhile, including the throwaway ones that enter the node and pod namespaces;
    the merged statistics go to ``path`` (``python -m pstats PATH``). None: no profile."""
    if path is None:
        yield
        return
    import cProfile
    import pstats
    import threading

    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
            profiles.append(profile)  # list.append is atomic

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
        if profiles:
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(path)


def runtime_baseline(lab: str, topo_path: Path, count: int, nodes: list[str],
                     container: ContainerSpec, profile: str | None = None
                     ) -> tuple[float, float]:
    """The same pods through the runtime library directly: time until all run, and the
    CPU per pod of this process and of the children it reaped (conmon's launcher,
    ``crun start``; not conmon's monitor nor its ``crun create``)."""
    plan = plan_lab(load_topology(topo_path))
    runtimes = {n: Runtime(lab, plan.node(n)) for n in nodes}
    made: list[tuple[Runtime, str]] = []

    def one(i: int) -> None:
        rt = runtimes[nodes[i % len(nodes)]]
        spec = PodSpec("baseline", f"base-{i}", str(uuid.uuid4()))

        def work() -> None:
            sb = rt.run_pod_sandbox(spec)
            made.append((rt, sb.uid))
            st = rt.start_container(sb, container, 0)
            assert st.running, st

        run_in_netns(rt.node.netns, work)  # as the kubelet calls it: from the node

    me = psutil.Process()
    with profiled_threads(profile):
        cpu0, t0 = sum(me.cpu_times()[:4]), time.monotonic()
        with ThreadPoolExecutor(16) as pool:  # the kubelet's runtime pool size
            list(pool.map(one, range(count)))
        elapsed = time.monotonic() - t0
        cpu = (sum(me.cpu_times()[:4]) - cpu0) / count
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda m: run_in_netns(m[0].node.netns,
                                              lambda: m[0].remove_pod_sandbox(m[1], 0)), made))
    return elapsed, cpu


def crun_baseline(lab: str, topo_path: Path, count: int, nodes: list[str],
                  spec: ContainerSpec) -> float:
    """The same containers started by crun directly (``crun run --detach``), in pod
    sandboxes made first: time until all run. Sandboxes and bundles are not timed."""
    from netlab.node.runtime import bundle, oci_runtime, seccomp_cache
    from netlab.node.runtime.paths import runtime_dir

    plan = plan_lab(load_topology(topo_path))
    runtimes = {n: Runtime(lab, plan.node(n)) for n in nodes}
    made: list[tuple[Runtime, object, str, Path, object]] = []
    work = Path(tempfile.mkdtemp(prefix="crun-baseline-"))
    # The runtime's compiled seccomp filters: crun gets the same config.json the
    # runtime gives it, the profile compiled once per lab (seccomp_cache).
    filters = seccomp_cache.CompiledFilters(runtime_dir(lab) / "seccomp")

    def prepare(i: int) -> dict:
        rt = runtimes[nodes[i % len(nodes)]]
        sb = run_in_netns(rt.node.netns, lambda: rt.run_pod_sandbox(
            PodSpec("baseline", f"crun-{i}", str(uuid.uuid4()))))
        directory = work / f"c{i}"
        config, overlay = bundle.prepare(sb, spec, directory, filters=filters)
        made.append((rt, sb, f"baseline-{sb.uid}", directory, overlay))
        return config

    oci_runtime.crun_root(lab).mkdir(parents=True, exist_ok=True)
    # As the runtime's first container of a lab does: crun compiles, the filter is kept.
    config = prepare(count)
    warm = made.pop()
    create = oci_runtime.spawn_shielded(
        oci_runtime.crun_argv(lab, "create", "--bundle", str(warm[3]), warm[2]), warm[4],
        env=oci_runtime.shield_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    assert create.wait() == 0, "crun create failed"

    if "seccomp" in config["linux"]:
        filters.keep(config["linux"]["seccomp"],
                     oci_runtime.crun_root(lab) / warm[2] / "seccomp.bpf")
    oci_runtime.delete(lab, warm[2])
    run_in_netns(warm[0].node.netns, lambda: warm[0].remove_pod_sandbox(warm[1], 0))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(prepare, range(count)))

    def start(item: tuple[Runtime, object, str, Path, object]) -> None:
        # Not a pipe: the detached container keeps crun's stdio, and a pipe would
        # never reach EOF.
        with open(item[3] / "crun.err", "w+") as err:
            done = oci_runtime.spawn_shielded(
                oci_runtime.crun_argv(lab, "run", "--detach", "--bundle", str(item[3]),
                                      item[2]), item[4], env=oci_runtime.shield_env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            err.seek(0)
            assert done.wait() == 0, err.read()

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(start, made))
    elapsed = time.monotonic() - t0
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda m: oci_runtime.delete(lab, m[2]), made))
        list(pool.map(lambda m: run_in_netns(m[0].node.netns,
                                              lambda: m[0].remove_pod_sandbox(m[1], 0)), made))
    shutil.rmtree(work, ignore_errors=True)
    return elapsed


def kubelet_rss(lab: str) -> dict[str, float]:
    table = read_json(components_path(lab)) or {}
    out = {}
    for name, row in table.items():
        if name.startswith("kubelet-") and row.get("pid"):
            out[name] = psutil.Process(row["pid"]).memory_info().rss / 2**20
    return out


def component_cpu_seconds(lab: str) -> dict[str, float]:
    """:func:`lab_cpu_seconds` per component (its own CPU plus its reaped children's)."""
    out = {}
    for name, row in (read_json(components_path(lab)) or {}).items():
        try:
            t = psutil.Process(row["pid"]).cpu_times()
        except (KeyError, TypeError, psutil.Error):
            continue
        out[name] = t.user + t.system + t.children_user + t.children_system
    return out


def lab_cpu_seconds(lab: str) -> float:
    """CPU used so far by the lab's processes (every component: API server, controllers,
    kubelets, agents) and by the children they reaped: conmon's launcher and ``crun
    start``. conmon's monitor forks away from the kubelet, so neither it nor the ``crun
    create`` it runs is counted. On shared, noisy cores this is the steadier figure: it
    does not grow when other work takes turns."""
    total = 0.0
    for row in (read_json(components_path(lab)) or {}).values():
        try:
            t = psutil.Process(row["pid"]).cpu_times()
        except (KeyError, TypeError, psutil.Error):
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=10)
    parser.add_argument("--profile", metavar="PATH",
                        help="profile the runtime-library baseline (cProfile, thread CPU "
                             "time, every thread) into PATH")
    parser.add_argument("--image", default=IMAGE,
                        help="what runs `sleep`: a stored image, or any other name for the "
                             "host's program")
    args = parser.parse_args()
    lab = f"kb{uuid.uuid4().hex[:6]}"
    nodes = [f"worker{i}" for i in range(1, args.workers + 1)]
    with running_lab(topology(lab, args.workers), args.workers + 1) as path:
        container, runs = baseline_container(args.image)
        crun = crun_baseline(lab, path, args.pods, nodes, container)
        base, base_cpu = runtime_baseline(lab, path, args.pods, nodes, container,
                                          args.profile)
        rss_idle = kubelet_rss(lab)
        cpu0, by0 = lab_cpu_seconds(lab), component_cpu_seconds(lab)
        result = asyncio.run(burst(lab, [f"p{i}" for i in range(args.pods)], nodes, args.image))
        rss = kubelet_rss(lab)
        cpu_per_pod = (lab_cpu_seconds(lab) - cpu0) / args.pods
        by_component = {name: (cpu - by0[name]) / args.pods
                        for name, cpu in component_cpu_seconds(lab).items() if name in by0}
        seq = asyncio.run(sequential(lab, [f"s{i}" for i in range(args.sequential)], nodes,
                                    args.image))
    all_running = result.pop("__all__")
    lat = list(result.values())
    report = {
        "pods": args.pods, "workers": args.workers,
        "all_running_s": round(all_running, 2),
        "p50_ms": round(percentile(lat, 50) * 1000), "p99_ms": round(percentile(lat, 99) * 1000),
        "sequential_p50_ms": round(statistics.median(seq) * 1000),
        "sequential_max_ms": round(max(seq) * 1000),
        "baseline_crun_all_running_s": round(crun, 2),
        "baseline_runtime_all_running_s": round(base, 2),
        "ratio_kubelet_over_crun": round(all_running / crun, 2),
        "ratio_kubelet_over_runtime": round(all_running / base, 2),
        "kubelet_rss_idle_mb": round(max(rss_idle.values()), 1),
        "kubelet_rss_after_burst_mb": round(max(rss.values()), 1),
        "lab_cpu_per_pod_ms": round(cpu_per_pod * 1000, 1),
        "baseline_cpu_per_pod_ms": round(base_cpu * 1000, 1),
        "image": args.image,
    }
    print(f"{args.pods} pods on {args.workers} workers, created at once through the API:")
    print(f"  all Running after      {report['all_running_s']:6.2f} s   (target <= 2 s)")
    print(f"  start latency p50      {report['p50_ms']:6d} ms  (target <= 1 s)")
    print(f"  start latency p99      {report['p99_ms']:6d} ms  (Kubernetes SLO: p99 <= 5 s)")
    print(f"  one at a time, p50     {report['sequential_p50_ms']:6d} ms  (target <= 50 ms; "
          f"max {report['sequential_max_ms']} ms, {args.sequential} pods)")
    print(f"  kubelet RSS            {report['kubelet_rss_after_burst_mb']:6.1f} MB  "
          f"(idle {report['kubelet_rss_idle_mb']} MB; target <= 60 MB)")
    print(f"  lab CPU per pod        {report['lab_cpu_per_pod_ms']:6.1f} ms  "
          "(the components and what they reaped: conmon's launcher, crun start; "
          "not conmon's monitor nor its crun create)")
    busy = sorted(((cpu, name) for name, cpu in by_component.items() if cpu >= 0.0005),
                  reverse=True)
    print("    by component: " + ", ".join(f"{name} {cpu * 1000:.1f}" for cpu, name in busy)
          + " ms")
    print(f"baseline, running {runs}:")
    print(f"          the same containers started by crun directly: "
          f"{report['baseline_crun_all_running_s']:.2f} s")
    print(f"          the same pods through the runtime library, no API: "
          f"{report['baseline_runtime_all_running_s']:.2f} s "
          f"(CPU per pod {report['baseline_cpu_per_pod_ms']:.1f} ms)")
    print(f"ratio kubelet / crun: {report['ratio_kubelet_over_crun']:.2f}  "
          f"(kubelet / runtime library: {report['ratio_kubelet_over_runtime']:.2f})")
    print(json.dumps(report), file=sys.stderr)


if __name__ == "__main__":
    main()
