"""The objects every cluster starts with, created by the API server at startup.

As kube-apiserver does, netlab's API server makes sure that these exist:

* the namespaces ``default``, ``kube-system``, ``kube-public`` and
  ``kube-node-lease``;
* the ``default/kubernetes`` Service, on the first address of the service
  subnet, port 443 to the API server's port;
* when the advertised address is known, the ``default/kubernetes`` Endpoints
  pointing at it (kube-apiserver's endpoint reconciler), so that pods reach the
  API through the Service like in Kubernetes, and the EndpointSlice of the same
  name and content (the reconciler's ``EndpointsAdapter``), which is what
  kube-proxy reads; the Endpoints carry ``skip-mirror`` so nothing else copies
  them.

* the bootstrap ClusterRoles and ClusterRoleBindings (``cluster-admin`` bound to
  ``system:masters``, ``admin``, ``edit``, ``view`` ...; ``netlab.api.rbac_bootstrap``);
* one Local APIService per served group/version (``apiservices.py``);
* the PriorityClasses ``system-cluster-critical`` and ``system-node-critical``
  (``netlab.api.priority_admission``), as kube-apiserver's
  ``scheduling/bootstrap-system-priority-classes`` hook makes them;
* the default StorageClass ``standard`` (``rancher.io/local-path``, WaitForFirstConsumer,
  Delete; ``netlab.api.persistentvolumes``), the class kind ships with its
  local-path-provisioner, which netlab's controller manager plays.

Existing objects are left as they are (except the Endpoints, which follow the
address), so a restart changes nothing.
"""

from __future__ import annotations

import ipaddress

from netlab.api import errors, persistentvolumes, priority_admission, rbac_bootstrap, resources
from netlab.api.objects import deep_copy
from netlab.master.apiserver import apiservices
from netlab.master.apiserver.config import Config
from netlab.master.apiserver.storage import Registry

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _resource(kind: str) -> resources.Resource:
    res = resources.by_kind(kind)
    assert res is not None, kind
    return res


async def _create_if_missing(registry: Registry, kind: str, namespace: str | None,
                             obj: dict) -> None:
    res = _resource(kind)
    key = registry.key(res, namespace, obj["metadata"]["name"])
    # Look first: creating a Service allocates its IP before the store says "exists".
    if await registry.store.aget(key) is not None:
        return
    try:
        await registry.create(res, namespace, obj)
    except errors.APIError as err:
        if err.reason != "AlreadyExists":
            raise


def kubernetes_service(config: Config, first_ip: str) -> dict:
    return {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": first_ip, "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": config.advertise_port}]},
    }


def kubernetes_endpoints(config: Config) -> dict:
    return {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": config.advertise_address}],
                     "ports": [{"name": "https", "port": config.advertise_port,
                                "protocol": "TCP"}]}],
    }


def kubernetes_endpointslice(config: Config) -> dict:
    """``endpointSliceFromEndpoints`` of :func:`kubernetes_endpoints`."""
    return {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [config.advertise_address],
                       "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": config.advertise_port, "protocol": "TCP"}],
    }


def _is_routable_ipv4(address: str) -> bool:
    # An EndpointSlice refuses loopback and unspecified addresses (as kube-apiserver
    # refuses to advertise them); a test server bound to 127.0.0.1 gets no slice.
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


async def ensure_initial_objects(registry: Registry, config: Config) -> None:
    for name in INITIAL_NAMESPACES:
        await _create_if_missing(registry, "Namespace", None, {"metadata": {"name": name}})
    await _create_if_missing(registry, "Service", "default",
                             kubernetes_service(config, registry.allocator.ips.first()))
    if config.advertise_address:
        wanted = kubernetes_endpoints(config)

        def replace(old: dict) -> dict:
            old["subsets"] = wanted["subsets"]
            return old

        await registry.update(_resource("Endpoints"), "default", "kubernetes", replace,
                              create=lambda: kubernetes_endpoints(config))
        if _is_routable_ipv4(config.advertise_address):
            slice_ = kubernetes_endpointslice(config)

            def replace_slice(old: dict) -> dict:
                old["endpoints"], old["ports"] = slice_["endpoints"], slice_["ports"]
                return old

            await registry.update(_resource("EndpointSlice"), "default", "kubernetes",
                                  replace_slice, create=lambda: kubernetes_endpointslice(config))
    for role in rbac_bootstrap.CLUSTER_ROLES:
        await _create_if_missing(registry, "ClusterRole", None, deep_copy(role))
    for binding in rbac_bootstrap.CLUSTER_ROLE_BINDINGS:
        await _create_if_missing(registry, "ClusterRoleBinding", None, deep_copy(binding))
    for service in apiservices.builtin_apiservices():
        await _create_if_missing(registry, "APIService", None, service)
    for priority_class in priority_admission.SYSTEM_PRIORITY_CLASSES:
        await _create_if_missing(registry, "PriorityClass", None, deep_copy(priority_class))
    await _create_if_missing(registry, "StorageClass", None,
                             deep_copy(persistentvolumes.STANDARD_STORAGE_CLASS))
