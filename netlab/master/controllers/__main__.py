"""The controller manager process: ``python -m netlab.master.controllers``.

The lab supervisor starts it in the control-plane node's namespace with the
standard connection flags (``--server https://<control-plane IP>:6443
--token-file ... --ca-file ...``), so it reaches the API across the physical
network like every other component. ``--controllers`` picks a subset (all by
default, as kube-controller-manager's ``--controllers=*``); the HPA and node
lifecycle timings have Kubernetes' flag names with lab-sized defaults. It
logs what each controller does to stderr, which the supervisor writes to
``/run/netlab/<lab>/logs/controller-manager.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from netlab.client.connection import add_connection_args, client_from_args
from netlab.master.controllers.base import Options
from netlab.process import run_until_stopped, setup_logging


def _seconds(text: str) -> float:
    """``15``, ``15s``, ``1m`` or ``500ms`` (Go durations, as Kubernetes' flags take)."""
    value = text.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if value.endswith(suffix) and value[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(value[:-len(suffix)]) * factor
    return float(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from netlab.master.controllers.manager import ALL

    defaults = Options()
    parser = argparse.ArgumentParser(prog="netlab-controller-manager",
                                     description="Runs netlab's controllers.")
    add_connection_args(parser)
    parser.add_argument("--controllers", default="*",
                        help=f"comma-separated subset of: {', '.join(ALL)} (default: all)")
    parser.add_argument("--concurrent-syncs", type=int, default=defaults.workers,
                        help="workers per controller")
    parser.add_argument("--horizontal-pod-autoscaler-sync-period", type=_seconds,
                        default=defaults.hpa_sync_period, metavar="DURATION")
    parser.add_argument("--horizontal-pod-autoscaler-tolerance", type=float,
                        default=defaults.hpa_tolerance)
    parser.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=_seconds,
                        default=defaults.hpa_downscale_stabilization, metavar="DURATION",
                        help="scale-down window when an HPA sets none (Kubernetes: 5m)")
    parser.add_argument("--horizontal-pod-autoscaler-cpu-initialization-period", type=_seconds,
                        default=defaults.hpa_cpu_initialization_period, metavar="DURATION")
    parser.add_argument("--horizontal-pod-autoscaler-initial-readiness-delay", type=_seconds,
                        default=defaults.hpa_initial_readiness_delay, metavar="DURATION")
    parser.add_argument("--root-ca-file", type=Path,
                        help="the CA published as kube-root-ca.crt in every namespace")
    parser.add_argument("--local-path-root", default="",
                        help="where the local-path provisioner (rancher.io/local-path) makes "
                             "volumes; without it such claims are not provisioned")
    try:
        from netlab.master.nodelifecycle.__main__ import add_lifecycle_args
    except ImportError:  # the node lifecycle controller is optional
        pass
    else:
        add_lifecycle_args(parser)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from netlab.master.controllers.manager import ALL, ControllerManager

    options = Options(workers=args.concurrent_syncs,
                      hpa_sync_period=args.horizontal_pod_autoscaler_sync_period,
                      hpa_tolerance=args.horizontal_pod_autoscaler_tolerance,
                      hpa_downscale_stabilization=(
                          args.horizontal_pod_autoscaler_downscale_stabilization),
                      hpa_cpu_initialization_period=(
                          args.horizontal_pod_autoscaler_cpu_initialization_period),
                      hpa_initial_readiness_delay=(
                          args.horizontal_pod_autoscaler_initial_readiness_delay),
                      root_ca=args.root_ca_file.read_text() if args.root_ca_file else "",
                      local_path_root=args.local_path_root)
    enabled = list(ALL) if args.controllers.strip() in ("*", "") else \
        [c.strip() for c in args.controllers.split(",") if c.strip()]
    lifecycle = None
    if hasattr(args, "node_monitor_grace_period"):
        lifecycle = (args.node_monitor_grace_period, args.pod_eviction_timeout)
    client = client_from_args(args)
    manager = ControllerManager(client, options, enabled, lifecycle)
    try:
        await run_until_stopped(manager.run())
    finally:
        await client.close()
        logging.getLogger("netlab.controllers").info("stopped")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
