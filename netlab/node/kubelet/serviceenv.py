"""Service environment variables: ``KUBERNETES_SERVICE_HOST`` and its kin.

Every container starts with variables that name the Services it can reach, as the
kubelet sets them (pkg/kubelet/kubelet_pods.go ``getServiceEnvVarMap`` and
pkg/kubelet/envvars): for the ``kubernetes`` Service of ``default`` always, and for
every Service of the pod's own namespace unless the pod sets
``enableServiceLinks: false``. In-cluster clients need the first pair: the official
Python client's ``load_incluster_config()`` and client-go's ``InClusterConfig``
read ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT``.

For a Service ``my-svc`` with ClusterIP 10.96.0.20 and ports 80/TCP (``http``) and
53/UDP:

- ``MY_SVC_SERVICE_HOST=10.96.0.20``, ``MY_SVC_SERVICE_PORT=80`` (the first port),
  ``MY_SVC_SERVICE_PORT_HTTP=80`` (each named port);
- Docker's link variables: ``MY_SVC_PORT=tcp://10.96.0.20:80`` (the first port),
  and per port ``MY_SVC_PORT_53_UDP=udp://10.96.0.20:53`` with ``_PROTO``,
  ``_PORT`` and ``_ADDR``.

Services without a ClusterIP (headless, ExternalName) give none. As upstream, the
values are those of the moment the container starts; the container's own ``env``
and ``envFrom`` come after and win. Pure: the kubelet passes the Services its
informer holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASTER_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


def _has_ip(service: dict[str, Any]) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP")
    return isinstance(ip, str) and ip not in ("", "None")


def visible_services(services: Iterable[dict[str, Any]], namespace: str,
                     enable_service_links: bool = True) -> list[dict[str, Any]]:
    """The Services whose variables a pod of ``namespace`` gets, by name (a Service of
    the pod's namespace named ``kubernetes`` wins over the master one, as upstream)."""
    chosen: dict[str, dict[str, Any]] = {}
    for service in services:
        if not _has_ip(service):
            continue
        meta = service.get("metadata") or {}
        name, ns = str(meta.get("name") or ""), meta.get("namespace")
        if ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif ns == namespace and enable_service_links:
            chosen[name] = service
    return [chosen[n] for n in sorted(chosen)]


def _var(name: str) -> str:
    return name.replace("-", "_").upper()


def service_env(services: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The variables of ``services`` (already chosen by :func:`visible_services`)."""
    env: dict[str, str] = {}
    for service in services:
        spec = service.get("spec") or {}
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        if not _has_ip(service) or not ports:
            continue
        ip = spec["clusterIP"]
        prefix = _var(str((service.get("metadata") or {}).get("name") or ""))
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_var(str(port['name']))}"] = str(port.get("port"))
        for i, port in enumerate(ports):
            protocol = str(port.get("protocol") or "TCP")
            url = f"{protocol.lower()}://{ip}:{port.get('port')}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
            env[base] = url
            env[f"{base}_PROTO"] = protocol.lower()
            env[f"{base}_PORT"] = str(port.get("port"))
            env[f"{base}_ADDR"] = ip
    return env
