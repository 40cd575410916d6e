"""Which components a lab runs, where, and with what arguments.

The map of DESIGN.md §4, as data: the API server (and, as they land, the
scheduler and controller manager) in the control-plane node's namespace; a
kubelet and a proxy in every cluster node. The supervisor starts exactly this
list; nothing else decides what runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from netlab.lab.pki import pki_paths
from netlab.lab.state import data_dir, lab_dir, token_path
from netlab.topology import LabPlan

APISERVER_PORT = 6443


@dataclass(frozen=True)
class Component:
    name: str  # also the log file's name
    netns: str
    argv: tuple[str, ...]
    pass_fds: tuple[int, ...] = ()


def _module(name: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", name, *args)


def components(plan: LabPlan, unix_fd: int, loopback_fd: int) -> list[Component]:
    lab = plan.lab
    control = plan.node(plan.topology.control_plane.name)
    cluster = plan.topology.cluster
    pki = pki_paths(lab_dir(lab))
    apiserver = Component(
        name="apiserver", netns=control.netns, pass_fds=(unix_fd, loopback_fd),
        argv=_module("netlab.master.apiserver",
                     "--lab", lab,
                     "--bind", f"{control.underlay.ip}:{APISERVER_PORT}",
                     "--unix-fd", str(unix_fd), "--loopback-fd", str(loopback_fd),
                     "--token-file", str(token_path(lab)),
                     "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
                     "--store", f"sqlite:{data_dir(lab) / 'store.db'}",
                     "--service-subnet", str(cluster.service_subnet)))
    return [apiserver]
