"""netlab's container runtime: pod sandboxes and containers as processes.

The kubelet's half of a node, as a library (CRI's role; the pod network is
``netlab.node.cni``). The kubelet holds one ``Runtime(lab, node)``;
``netlab down`` calls ``cleanup_lab(lab)``. The modules, bottom up:

- ``paths``: where state lives and how namespaces and links are named;
- ``cgroups``: v1/v2 detection, limits, counters, removal;
- ``sandbox``: the pod's netns, UTS namespace and /etc files; its network
  (veth, cni0, IP) is a CNI ADD of ``netlab.node.cni``;
- ``security``: the effective securityContext and the runAsNonRoot check;
- ``oci``: a container's OCI ``config.json``; ``bundle``: its bundle on disk;
- ``oci_runtime``: crun and conmon (create, start, exec, delete, exit files);
- ``containers``: start/stop/inspect/adopt/exec from the files on disk;
- ``usage``: CPU and memory metrics from cgroups, or psutil;
- ``facade``: ``Runtime`` and ``cleanup_lab``.

The public names are imported lazily, so importing one module of the package
does not pay for pyroute2 and psutil.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Runtime": "facade", "cleanup_lab": "facade", "AdoptedPod": "facade",
    "NodeUsage": "facade", "CleanupReport": "facade",
    "PodSpec": "sandbox", "Sandbox": "sandbox", "SandboxError": "sandbox",
    "ContainerSpec": "spec", "ContainerState": "containers", "ExecSpec": "containers",
    "ContainerError": "containers", "CreateError": "containers",
    "ResourceUsage": "usage",
    "HostLocalIpam": "netlab.node.cni.ipam", "RangeExhausted": "netlab.node.cni.ipam",
    "CgroupHost": "cgroups",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    path = module if "." in module else f"{__name__}.{module}"
    value = getattr(import_module(path), name)
    globals()[name] = value
    return value
