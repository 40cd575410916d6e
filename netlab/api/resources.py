"""The resource registry: every API resource netlab serves, and its discovery documents.

This is the one table that says what exists in the API. The API server routes
requests and answers discovery from it, the store derives its keys from it, the
CLI resolves what a user types (``po``, ``deploy``, ``deployments.apps``) through
it, and the table printers look up kinds in it. Nothing here does I/O.

The table is the built-ins (``RESOURCES``) plus the resources that
CustomResourceDefinitions add: the API server process feeds those with
:func:`set_custom_resources` as CRDs come and go (``netlab.master.apiserver.crds``),
and the CLI does so from the server's discovery (``netlab.client.discovery``). Every
lookup below sees both; custom resources' store keys are ``<plural>.<group>``.

The discovery builders return the legacy discovery documents exactly as the
Kubernetes API server shapes them (``/api``, ``/apis``, ``/apis/<group>``,
``/api/v1``, ``/apis/<group>/<version>``), so kubectl's discovery client,
``kubectl api-resources``, ``kubectl scale`` and ``kubectl logs`` work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Union

# The verbs Kubernetes advertises for an ordinary top-level resource.
STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Namespaces have no deletecollection in Kubernetes: deleting every namespace at
# once is refused by design.
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")
SCALE_VERBS = ("get", "patch", "update")
# Access reviews are answered, not stored: POST is all there is.
CREATE_ONLY_VERBS = ("create",)
# pods/proxy and services/proxy: every HTTP method, by its verb (served by the API
# server's proxy module, not by the resource handlers).
PROXY_VERBS = ("create", "delete", "get", "patch", "update")

STORE_ROOT = "/registry"


@dataclass(frozen=True)
class Subresource:
    """One subresource such as ``pods/status`` or ``deployments/scale``.

    ``group`` and ``version`` are set only when the subresource speaks a kind of
    another API group (``Scale`` is ``autoscaling/v1`` for apps resources);
    discovery then names them, as Kubernetes does.
    """

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Resource:
    """One served resource, e.g. ``deployments`` in ``apps``.

    ``versions`` lists the served versions, preferred (and storage) version first.
    """

    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...] = STANDARD_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = field(default=())
    # What a CustomResourceDefinition adds (netlab.api.customresources.CustomInfo):
    # schemas, printer columns, scale paths, the storage version. None for built-ins.
    custom: Any = field(default=None, compare=False)

    @property
    def store_segment(self) -> str:
        """The resource's segment of its store keys: ``pods``, or ``widgets.example.com``
        for a custom resource, whose plural alone may repeat across groups."""
        return f"{self.plural}.{self.group}" if self.custom is not None else self.plural

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    @property
    def list_kind(self) -> str:
        custom_list_kind = getattr(self.custom, "list_kind", "")
        return custom_list_kind or self.kind + "List"

    @property
    def group_resource(self) -> str:
        """``deployments.apps``; just ``pods`` for the core group (as kubectl prints it)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str | None = None) -> str:
        """The ``apiVersion`` field for objects of this resource: ``v1``, ``apps/v1``."""
        version = version or self.preferred_version
        return f"{self.group}/{version}" if self.group else version

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, STATUS_VERBS)


def _scale() -> Subresource:
    # kubectl scale and the HPA controller read and write Scale through this.
    return Subresource("scale", "Scale", SCALE_VERBS, group="autoscaling", version="v1")


RESOURCES: tuple[Resource, ...] = (
    # namespaces/finalize: how the namespace controller removes its "kubernetes"
    # finalizer from spec.finalizers once a Terminating namespace is empty.
    Resource("", ("v1",), "Namespace", "namespaces", "namespace", namespaced=False,
             verbs=NAMESPACE_VERBS, short_names=("ns",),
             subresources=(Subresource("finalize", "Namespace", ("update",)),)),
    Resource("", ("v1",), "Node", "nodes", "node", namespaced=False,
             short_names=("no",), subresources=(_status("Node"),)),
    Resource("", ("v1",), "Pod", "pods", "pod", namespaced=True,
             short_names=("po",), categories=("all",),
             subresources=(
                 Subresource("attach", "PodAttachOptions", ("create", "get")),
                 Subresource("binding", "Binding", ("create",)),
                 Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
                 Subresource("eviction", "Eviction", ("create",), group="policy",
                             version="v1"),
                 Subresource("exec", "PodExecOptions", ("create", "get")),
                 Subresource("log", "Pod", ("get",)),
                 Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
                 Subresource("proxy", "PodProxyOptions", PROXY_VERBS),
                 _status("Pod"),
             )),
    Resource("", ("v1",), "ReplicationController", "replicationcontrollers",
             "replicationcontroller", namespaced=True, short_names=("rc",), categories=("all",),
             subresources=(_scale(), _status("ReplicationController"))),
    Resource("", ("v1",), "Service", "services", "service", namespaced=True,
             short_names=("svc",), categories=("all",),
             subresources=(Subresource("proxy", "ServiceProxyOptions", PROXY_VERBS),
                           _status("Service"))),
    Resource("", ("v1",), "Endpoints", "endpoints", "endpoints", namespaced=True,
             short_names=("ep",)),
    Resource("", ("v1",), "Event", "events", "event", namespaced=True, short_names=("ev",)),
    Resource("", ("v1",), "ConfigMap", "configmaps", "configmap", namespaced=True,
             short_names=("cm",)),
    Resource("", ("v1",), "Secret", "secrets", "secret", namespaced=True),
    Resource("", ("v1",), "PersistentVolume", "persistentvolumes", "persistentvolume",
             namespaced=False, short_names=("pv",),
             subresources=(_status("PersistentVolume"),)),
    Resource("", ("v1",), "PersistentVolumeClaim", "persistentvolumeclaims",
             "persistentvolumeclaim", namespaced=True, short_names=("pvc",),
             subresources=(_status("PersistentVolumeClaim"),)),
    Resource("", ("v1",), "ServiceAccount", "serviceaccounts", "serviceaccount", namespaced=True,
             short_names=("sa",),
             subresources=(Subresource("token", "TokenRequest", ("create",),
                                       group="authentication.k8s.io", version="v1"),)),
    Resource("apps", ("v1",), "Deployment", "deployments", "deployment", namespaced=True,
             short_names=("deploy",), categories=("all",),
             subresources=(_scale(), _status("Deployment"))),
    Resource("apps", ("v1",), "ReplicaSet", "replicasets", "replicaset", namespaced=True,
             short_names=("rs",), categories=("all",),
             subresources=(_scale(), _status("ReplicaSet"))),
    Resource("apps", ("v1",), "DaemonSet", "daemonsets", "daemonset", namespaced=True,
             short_names=("ds",), categories=("all",), subresources=(_status("DaemonSet"),)),
    Resource("apps", ("v1",), "StatefulSet", "statefulsets", "statefulset", namespaced=True,
             short_names=("sts",), categories=("all",),
             subresources=(_scale(), _status("StatefulSet"))),
    Resource("apps", ("v1",), "ControllerRevision", "controllerrevisions", "controllerrevision",
             namespaced=True),
    Resource("batch", ("v1",), "Job", "jobs", "job", namespaced=True,
             categories=("all",), subresources=(_status("Job"),)),
    Resource("batch", ("v1",), "CronJob", "cronjobs", "cronjob", namespaced=True,
             short_names=("cj",), categories=("all",), subresources=(_status("CronJob"),)),
    Resource("policy", ("v1",), "PodDisruptionBudget", "poddisruptionbudgets",
             "poddisruptionbudget", namespaced=True, short_names=("pdb",),
             subresources=(_status("PodDisruptionBudget"),)),
    Resource("autoscaling", ("v2", "v1"), "HorizontalPodAutoscaler", "horizontalpodautoscalers",
             "horizontalpodautoscaler", namespaced=True, short_names=("hpa",),
             categories=("all",), subresources=(_status("HorizontalPodAutoscaler"),)),
    Resource("coordination.k8s.io", ("v1",), "Lease", "leases", "lease", namespaced=True),
    Resource("apiextensions.k8s.io", ("v1",), "CustomResourceDefinition",
             "customresourcedefinitions", "customresourcedefinition", namespaced=False,
             short_names=("crd", "crds"), categories=("api-extensions",),
             subresources=(_status("CustomResourceDefinition"),)),
    Resource("discovery.k8s.io", ("v1",), "EndpointSlice", "endpointslices", "endpointslice",
             namespaced=True),
    Resource("scheduling.k8s.io", ("v1",), "PriorityClass", "priorityclasses", "priorityclass",
             namespaced=False, short_names=("pc",)),
    # netrbac: networking, RBAC, access reviews (create-only, never stored), APIServices.
    Resource("networking.k8s.io", ("v1",), "NetworkPolicy", "networkpolicies", "networkpolicy",
             namespaced=True, short_names=("netpol",)),
    Resource("networking.k8s.io", ("v1",), "Ingress", "ingresses", "ingress", namespaced=True,
             short_names=("ing",), subresources=(_status("Ingress"),)),
    Resource("networking.k8s.io", ("v1",), "IngressClass", "ingressclasses", "ingressclass",
             namespaced=False),
    Resource("storage.k8s.io", ("v1",), "StorageClass", "storageclasses", "storageclass",
             namespaced=False, short_names=("sc",)),
    Resource("rbac.authorization.k8s.io", ("v1",), "ClusterRole", "clusterroles",
             "clusterrole", namespaced=False),
    Resource("rbac.authorization.k8s.io", ("v1",), "ClusterRoleBinding", "clusterrolebindings",
             "clusterrolebinding", namespaced=False),
    Resource("rbac.authorization.k8s.io", ("v1",), "Role", "roles", "role", namespaced=True),
    Resource("rbac.authorization.k8s.io", ("v1",), "RoleBinding", "rolebindings", "rolebinding",
             namespaced=True),
    Resource("authentication.k8s.io", ("v1",), "SelfSubjectReview", "selfsubjectreviews",
             "selfsubjectreview", namespaced=False, verbs=CREATE_ONLY_VERBS),
    Resource("authentication.k8s.io", ("v1",), "TokenReview", "tokenreviews", "tokenreview",
             namespaced=False, verbs=CREATE_ONLY_VERBS),
    Resource("authorization.k8s.io", ("v1",), "LocalSubjectAccessReview",
             "localsubjectaccessreviews", "localsubjectaccessreview", namespaced=True,
             verbs=CREATE_ONLY_VERBS),
    Resource("authorization.k8s.io", ("v1",), "SelfSubjectAccessReview",
             "selfsubjectaccessreviews", "selfsubjectaccessreview", namespaced=False,
             verbs=CREATE_ONLY_VERBS),
    Resource("authorization.k8s.io", ("v1",), "SelfSubjectRulesReview",
             "selfsubjectrulesreviews", "selfsubjectrulesreview", namespaced=False,
             verbs=CREATE_ONLY_VERBS),
    Resource("authorization.k8s.io", ("v1",), "SubjectAccessReview", "subjectaccessreviews",
             "subjectaccessreview", namespaced=False, verbs=CREATE_ONLY_VERBS),
    Resource("apiregistration.k8s.io", ("v1",), "APIService", "apiservices", "apiservice",
             namespaced=False, subresources=(_status("APIService"),)),
)

# Group order of /apis follows the Kubernetes API server's own priority order
# (kube-apiserver's group priorities); groups netlab does not serve are skipped,
# and groups that CustomResourceDefinitions add come after these.
GROUP_ORDER: tuple[str, ...] = (
    "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
    # Served outside this table, by the API server (master/apiserver/metricsapi.py), at
    # metrics-server's priority (100): after every other group, CRD groups included.
    "metrics.k8s.io",
)


class UnknownResourceError(LookupError):
    """What a user typed names no served resource; the message is kubectl's."""

    def __init__(self, name: str) -> None:
        super().__init__(f'the server doesn\'t have a resource type "{name}"')
        self.name = name


# --- the served set: built-ins plus what CustomResourceDefinitions add -------------------------

# The API server process feeds this from its CRDs (netlab.master.apiserver.crds); every
# other process sees the built-ins only. One tuple, replaced whole, so a reader never
# sees a half-updated set.
_custom: tuple[Resource, ...] = ()
_custom_generation = 0  # moves with every replacement; caches of derived documents key on it


def set_custom_resources(custom: Iterable[Resource]) -> None:
    """Replace the CRD-derived resources this process serves (built-ins stay)."""
    global _custom, _custom_generation
    _custom = tuple(custom)
    _custom_generation += 1


def custom_generation() -> int:
    return _custom_generation


def custom_resources() -> tuple[Resource, ...]:
    return _custom


# --- lookups -----------------------------------------------------------------------------------


def all_resources() -> tuple[Resource, ...]:
    """Built-ins first (registry order), then custom resources."""
    return RESOURCES + _custom if _custom else RESOURCES


def groups() -> list[str]:
    """The named API groups (the core group "" is not one of them), in /apis order:
    the built-in groups by kube-apiserver's priorities, then CRD groups by name."""
    builtin = [g for g in GROUP_ORDER if any(r.group == g for r in RESOURCES)]
    extra = sorted({r.group for r in _custom} - set(builtin))
    return builtin + extra


def group_versions(group: str) -> list[str]:
    """Served versions of a group, preferred first; empty when the group is not served."""
    versions: list[str] = []
    for res in all_resources():
        if res.group == group:
            for v in res.versions:
                if v not in versions:
                    versions.append(v)
    # A group's preferred version is the first version of its resources; they agree here.
    return versions


def get_resource(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at ``/apis/<group>/<version>/<plural>`` (``/api/v1`` for core)."""
    for res in all_resources():
        if res.group == group and res.plural == plural and version in res.versions:
            return res
    return None


def by_kind(kind: str, group: str | None = None) -> Resource | None:
    """The resource whose objects have ``kind`` (optionally within ``group``)."""
    for res in all_resources():
        if res.kind == kind and (group is None or res.group == group):
            return res
    return None


def builtin(kind: str, group: str | None = None) -> Resource:
    """:func:`by_kind` for a kind the registry always serves (``Pod``, ``Namespace``, ...)."""
    res = by_kind(kind, group)
    if res is None:
        raise LookupError(f"no built-in resource of kind {kind!r}")
    return res


def by_api_version_kind(api_version: str, kind: str) -> Resource | None:
    """The resource for an object's ``apiVersion`` and ``kind`` (as in a manifest)."""
    group, _, version = api_version.rpartition("/")
    res = by_kind(kind, group)
    if res is None or version not in res.versions:
        return None
    return res


def by_category(category: str) -> list[Resource]:
    """Resources in a category, e.g. ``all`` for ``kubectl get all``, in registry order."""
    return [r for r in all_resources() if category in r.categories]


def _names(res: Resource) -> tuple[str, ...]:
    return (res.plural, res.singular, res.kind.lower(), *res.short_names)


def resolve_with_version(name: str) -> tuple[Resource, str]:
    """Resolve what a CLI user types, as kubectl does, to a resource and version.

    Accepts a plural, singular, kind or short name, optionally qualified by group
    (``deployments.apps``) or by version and group (``hpa.v1.autoscaling``).
    Matching is case-insensitive. Raises :class:`UnknownResourceError`.
    """
    text = name.strip().lower()
    resource_part, dot, qualifier = text.partition(".")
    version: str | None = None
    group: str | None = None
    if dot:
        # As kubectl parses it, a trailing dot ("pods.") names the core group.
        first, _, rest = qualifier.partition(".")
        # "hpa.v1.autoscaling": the first segment is a served version of the group.
        if rest and first in group_versions(rest):
            version, group = first, rest
        else:
            group = qualifier
    for res in all_resources():
        if group is not None and res.group != group:
            continue
        if resource_part in _names(res):
            if version is not None and version not in res.versions:
                continue
            return res, version or res.preferred_version
    raise UnknownResourceError(name)


def resolve(name: str) -> Resource:
    """Like :func:`resolve_with_version`, returning only the resource."""
    return resolve_with_version(name)[0]


# --- store keys --------------------------------------------------------------------------------


def _plural_of(resource: Union[str, Resource]) -> str:
    return resource.store_segment if isinstance(resource, Resource) else resource


def _check_segment(what: str, value: str) -> None:
    # A "/" in a name would let one object's key alias another's prefix.
    if not value or "/" in value:
        raise ValueError(f"invalid {what} for a store key: {value!r}")


def store_key(resource: Union[str, Resource], namespace: str | None, name: str) -> str:
    """``/registry/<resource>/<namespace>/<name>``, or ``/registry/<resource>/<name>``.

    The layout is the design's simplification of etcd's: Kubernetes itself keeps
    a few historical prefixes (``services/specs``, ``minions``) that netlab does not.
    Passing a :class:`Resource` also checks the namespace against its scope.
    """
    plural = _plural_of(resource)
    _check_segment("resource", plural)
    _check_segment("name", name)
    if isinstance(resource, Resource):
        if resource.namespaced and not namespace:
            raise ValueError(f"{resource.plural} is namespaced; a namespace is required")
        if not resource.namespaced and namespace:
            raise ValueError(f"{resource.plural} is cluster-scoped; got namespace {namespace!r}")
    if namespace:
        _check_segment("namespace", namespace)
        return f"{STORE_ROOT}/{plural}/{namespace}/{name}"
    return f"{STORE_ROOT}/{plural}/{name}"


def store_prefix(resource: Union[str, Resource], namespace: str | None = None) -> str:
    """The key prefix for a list or watch; always ends in ``/``.

    The trailing slash matters: ``/registry/pods/default/`` must not also match
    the keys of a namespace called ``default2``.
    """
    plural = _plural_of(resource)
    _check_segment("resource", plural)
    if namespace:
        _check_segment("namespace", namespace)
        return f"{STORE_ROOT}/{plural}/{namespace}/"
    return f"{STORE_ROOT}/{plural}/"


def parse_store_key(key: str) -> tuple[str, str | None, str]:
    """Split a store key into ``(resource, namespace or None, name)``."""
    prefix = STORE_ROOT + "/"
    if not key.startswith(prefix):
        raise ValueError(f"not a store key: {key!r}")
    parts = key[len(prefix):].split("/")
    if len(parts) == 2 and all(parts):
        return parts[0], None, parts[1]
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2]
    raise ValueError(f"not a store key: {key!r}")


# --- discovery documents -----------------------------------------------------------------------


def _group_version_entry(group: str, version: str) -> dict[str, Any]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_versions(server_address: str | None = None) -> dict[str, Any]:
    """``GET /api``: the core API's versions (APIVersions)."""
    cidrs = []
    if server_address:
        cidrs.append({"clientCIDR": "0.0.0.0/0", "serverAddress": server_address})
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs}


def _group_body(group: str) -> dict[str, Any]:
    versions = group_versions(group)
    return {
        "name": group,
        "versions": [_group_version_entry(group, v) for v in versions],
        "preferredVersion": _group_version_entry(group, versions[0]),
    }


def api_group_list() -> dict[str, Any]:
    """``GET /apis``: every named group with its versions and preferred version."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_body(g) for g in groups()],
    }


def api_group(group: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``: one APIGroup, or None when the group is not served."""
    if not group or not group_versions(group):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_body(group)}


def _resource_entry(res: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": res.plural,
        # Kubernetes fills singularName for built-in resources since 1.27.
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    return entry


def _subresource_entry(res: Resource, sub: Subresource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{res.plural}/{sub.name}",
        "singularName": "",
        "namespaced": res.namespaced,
    }
    if sub.group is not None:
        entry["group"] = sub.group
        entry["version"] = sub.version
    entry["kind"] = sub.kind
    entry["verbs"] = list(sub.verbs)
    return entry


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` (group "") or ``/apis/<group>/<version>``: an APIResourceList.

    Includes subresource entries (``pods/log``, ``deployments/scale`` ...), sorted
    by name as the API server sorts them. None when the group/version is not served.
    """
    entries: list[dict[str, Any]] = []
    for res in all_resources():
        if res.group != group or version not in res.versions:
            continue
        entries.append(_resource_entry(res))
        entries.extend(_subresource_entry(res, sub) for sub in res.subresources)
    if not entries:
        return None
    entries.sort(key=lambda e: e["name"])
    doc: dict[str, Any] = {"kind": "APIResourceList"}
    # The real server sets apiVersion on named groups' lists but not on /api/v1's.
    if group:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group}/{version}" if group else version
    doc["resources"] = entries
    return doc


def discovery_document(path: str, server_address: str | None = None) -> dict[str, Any] | None:
    """The discovery document served at ``path``, or None when there is none.

    Lets the API server answer every discovery path with one call.
    """
    parts = [p for p in path.split("/") if p]
    if parts == ["api"]:
        return api_versions(server_address)
    if parts == ["api", "v1"]:
        return api_resource_list("", "v1")
    if parts == ["apis"]:
        return api_group_list()
    if len(parts) == 2 and parts[0] == "apis":
        return api_group(parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return api_resource_list(parts[1], parts[2])
    return None
