"""Server-side printing: ``meta.k8s.io`` Table responses, and rendering them as kubectl does.

kubectl asks for lists with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
and prints whatever columns the server returns. This module holds each kind's
column definitions (names, types and ``-o wide`` priorities as Kubernetes
declares them), and :func:`to_table` builds the Table response from stored
objects, computing cells with the row functions of :mod:`netlab.api.printers`.

:func:`render_table` is the client half: it lays a Table out exactly like
kubectl's tab writer (left-aligned, three spaces between columns, upper-case
headers, a NAMESPACE column first with ``-A``), so ``netlab get`` and
``kubectl get`` print identical text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Union

from netlab.api import (
    customresources,
    printers,
    printers_apps,
    printers_batch_policy,
    printers_config,
    resources,
    tables_netrbac,
    tables_scheduling,
    tables_storage,
)
from netlab.api.tables_base import _AGE, _NAME, Column, Printer
from netlab.api.views import meta_of

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

# kubectl's tab writer: minimum cell width 6, padding 3, padded with spaces.
_MIN_WIDTH = 6
_PADDING = 3


# --- columns of each kind -------------------------------------------------------------------------

_CONTAINERS = Column("Containers", priority=1, description="Container names in the pod template.")
_IMAGES = Column("Images", priority=1, description="Container images in the pod template.")
_SELECTOR = Column("Selector", priority=1, description="Label selector for the pods managed.")

PRINTERS: dict[str, Printer] = {
    "Pod": Printer((
        _NAME,
        Column("Ready", description="Ready containers out of all containers."),
        Column("Status", description="Aggregate status of the pod and its containers."),
        Column("Restarts", description="Container restarts, and how long ago the last one was."),
        _AGE,
        Column("IP", priority=1, description="The pod's IP address."),
        Column("Node", priority=1, description="The node the pod is bound to."),
        Column("Nominated Node", priority=1, description="Node nominated by preemption."),
        Column("Readiness Gates", priority=1, description="Readiness gates that are true."),
    ), printers.pod_cells, printers.pod_conditions),
    "Service": Printer((
        _NAME,
        Column("Type", description="How the service is exposed."),
        Column("Cluster-IP", description="The virtual IP of the service."),
        Column("External-IP", description="External addresses of the service."),
        Column("Port(s)", description="Service ports, with node ports where allocated."),
        _AGE,
        Column("Selector", priority=1, description="Labels of the pods behind the service."),
    ), printers.service_cells),
    "Endpoints": Printer((
        _NAME,
        Column("Endpoints", description="Ready addresses and ports of the service's pods."),
        _AGE,
    ), printers.endpoints_cells),
    "EndpointSlice": Printer((
        _NAME,
        Column("AddressType", description="Type of address carried by this EndpointSlice."),
        Column("Ports", description="Network ports exposed by the endpoints of this slice."),
        Column("Endpoints", description="Addresses of the endpoints in this slice."),
        _AGE,
    ), printers.endpointslice_cells),
    "Node": Printer((
        _NAME,
        Column("Status", description="Readiness of the node, and whether it is cordoned."),
        Column("Roles", description="Roles of the node, from node-role labels."),
        _AGE,
        Column("Version", description="Kubelet version reported by the node."),
        Column("Internal-IP", priority=1, description="The node's internal address."),
        Column("External-IP", priority=1, description="The node's external address."),
        Column("OS-Image", priority=1, description="Operating system reported by the node."),
        Column("Kernel-Version", priority=1, description="Kernel version of the node."),
        Column("Container-Runtime", priority=1, description="Container runtime and version."),
    ), printers.node_cells),
    "Namespace": Printer((
        _NAME,
        Column("Status", description="Phase of the namespace (Active or Terminating)."),
        _AGE,
    ), printers.namespace_cells),
    "Event": Printer((
        Column("Last Seen", description="Time since the event last occurred."),
        Column("Type", description="Normal or Warning."),
        Column("Reason", description="Short machine-readable reason."),
        Column("Object", description="The object the event is about."),
        Column("Subobject", priority=1, description="Field path within the object."),
        Column("Source", priority=1, description="Component that reported the event."),
        Column("Message", description="Human-readable description."),
        Column("First Seen", priority=1, description="Time since the event first occurred."),
        Column("Count", priority=1, description="How many times the event occurred."),
        Column("Name", format="name", priority=1, description="Name of the event object."),
    ), printers.event_cells),
    "Deployment": Printer((
        _NAME,
        Column("Ready", description="Ready replicas out of desired replicas."),
        Column("Up-to-date", description="Replicas running the current pod template."),
        Column("Available", description="Replicas available to users."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), printers.deployment_cells),
    "ReplicaSet": Printer((
        _NAME,
        Column("Desired", type="integer", description="Desired number of replicas."),
        Column("Current", type="integer", description="Replicas that exist now."),
        Column("Ready", type="integer", description="Replicas that are ready."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), printers.replicaset_cells),
    "DaemonSet": Printer((
        _NAME,
        Column("Desired", type="integer", description="Nodes that should run the daemon pod."),
        Column("Current", type="integer", description="Nodes running at least one daemon pod."),
        Column("Ready", type="integer", description="Nodes with a ready daemon pod."),
        Column("Up-to-date", type="integer", description="Nodes running the updated pod."),
        Column("Available", type="integer", description="Nodes with an available daemon pod."),
        Column("Node Selector", description="The pod template's node selector."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), printers_apps.daemonset_cells),
    "StatefulSet": Printer((
        _NAME,
        Column("Ready", description="Ready replicas out of desired replicas."),
        _AGE, _CONTAINERS, _IMAGES,
    ), printers_apps.statefulset_cells),
    "ControllerRevision": Printer((
        _NAME,
        Column("Controller", description="The object that owns this revision."),
        Column("Revision", type="integer", description="The revision number."),
        _AGE,
    ), printers_apps.controllerrevision_cells),
    "Job": Printer((
        _NAME,
        Column("Status", description="Complete, Failed, Suspended, Terminating or Running."),
        Column("Completions", description="Succeeded pods out of required completions."),
        Column("Duration", description="Time the job ran, or has been running."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), printers.job_cells),
    "CronJob": Printer((
        _NAME,
        Column("Schedule", description="The schedule in Cron format."),
        Column("Timezone", description="The time zone the schedule is evaluated in."),
        Column("Suspend", type="boolean", description="Whether new runs are suspended."),
        Column("Active", type="integer", description="Number of running jobs."),
        Column("Last Schedule", description="When a job was last scheduled."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), printers_batch_policy.cronjob_cells),
    "PodDisruptionBudget": Printer((
        _NAME,
        Column("Min Available", description="Pods that must stay available."),
        Column("Max Unavailable", description="Pods that may be unavailable."),
        Column("Allowed Disruptions", type="integer", description="Evictions allowed now."),
        _AGE,
    ), printers_batch_policy.pdb_cells),
    "HorizontalPodAutoscaler": Printer((
        _NAME,
        Column("Reference", description="The scaled workload."),
        Column("Targets", description="Current and target value of each metric."),
        Column("MinPods", description="Lower bound on replicas."),
        Column("MaxPods", description="Upper bound on replicas."),
        Column("Replicas", description="Current number of replicas."),
        _AGE,
    ), printers.hpa_cells),
    "Lease": Printer((
        _NAME,
        Column("Holder", description="Identity of the current holder."),
        _AGE,
    ), printers.lease_cells),
    "ConfigMap": Printer((
        _NAME, Column("Data", type="integer", description="Number of keys (data and binaryData)."),
        _AGE,
    ), printers_config.configmap_cells),
    "Secret": Printer((
        _NAME, Column("Type", description="The type of the secret."),
        Column("Data", type="integer", description="Number of keys in data."), _AGE,
    ), printers_config.secret_cells),
    "ServiceAccount": Printer((
        _NAME, Column("Secrets", type="integer", description="Number of secrets listed."),
        _AGE,
    ), printers_config.serviceaccount_cells),
    "ReplicationController": Printer((
        _NAME,
        Column("Desired", type="integer", description="Desired number of replicas."),
        Column("Current", type="integer", description="Replicas that exist now."),
        Column("Ready", type="integer", description="Replicas that are ready."),
        _AGE, _CONTAINERS, _IMAGES, _SELECTOR,
    ), printers_config.replicationcontroller_cells),
}

# What the API server prints for kinds without a printer of their own.
DEFAULT_PRINTER = Printer((
    _NAME,
    Column("Created At", type="date", description="When the object was created."),
), printers.default_cells)
# kube-apiserver prints CRDs with the default columns too: NAME, CREATED AT.
PRINTERS["CustomResourceDefinition"] = DEFAULT_PRINTER
# Printers of further groups live in their own modules.
PRINTERS.update(tables_netrbac.PRINTERS)
PRINTERS.update(tables_scheduling.PRINTERS)
PRINTERS.update(tables_storage.PRINTERS)


def printer_for(kind: str) -> Printer:
    return PRINTERS.get(kind, DEFAULT_PRINTER)


def custom_printer(res: resources.Resource, objects: list[dict[str, Any]]) -> Printer:
    """A custom resource's Table: Name, then its version's additionalPrinterColumns
    (Age when it declares none)."""
    api_version = objects[0].get("apiVersion", "") if objects else ""
    version = str(api_version).rpartition("/")[2] or res.preferred_version
    cols = customresources.printer_columns(res, version)
    columns = tuple(Column(d["name"], d["type"], d["format"], d["description"], d["priority"])
                    for d in customresources.column_definitions(cols))
    return Printer(columns, lambda obj, now: customresources.row_cells(cols, obj, now))


def _kind_of(kind_or_resource: Union[str, resources.Resource]) -> str:
    """Map a kind, a resource name or a Resource to the kind its printer is keyed by."""
    if isinstance(kind_or_resource, resources.Resource):
        return kind_or_resource.kind
    if resources.by_kind(kind_or_resource) is not None:
        return kind_or_resource
    try:
        return resources.resolve(kind_or_resource).kind
    except resources.UnknownResourceError:
        return kind_or_resource  # served by the default printer


def _row_object(obj: dict[str, Any], include_object: str,
                api_version: str) -> dict[str, Any] | None:
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": api_version,
                "metadata": meta_of(obj)}
    return None


def to_table(
    kind_or_resource: Union[str, resources.Resource],
    objects: list[dict[str, Any]],
    now: datetime,
    include_object: str = "Metadata",
    *,
    api_version: str = TABLE_API_VERSION,
    resource_version: str | None = None,
    continue_token: str | None = None,
) -> dict[str, Any]:
    """Build the Table kubectl gets for ``objects`` of one kind, rows in the given order.

    ``include_object`` is the request's ``includeObject``: ``Metadata`` (the
    default) attaches a PartialObjectMetadata to each row, ``Object`` the whole
    object, ``None`` nothing. ``api_version`` is ``meta.k8s.io/v1`` or
    ``meta.k8s.io/v1beta1``, as the client asked. Raises ValueError for an
    unknown ``include_object`` (the API server answers that with 400).
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise ValueError(f"includeObject must be one of {', '.join(INCLUDE_OBJECT_VALUES)}; "
                         f"got {include_object!r}")
    printer: Printer = printer_for(_kind_of(kind_or_resource))
    if isinstance(kind_or_resource, resources.Resource) and kind_or_resource.custom is not None:
        printer = custom_printer(kind_or_resource, objects)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        if printer.conditions is not None:
            conditions = printer.conditions(obj)
            if conditions:
                row["conditions"] = conditions
        attached = _row_object(obj, include_object, api_version)
        if attached is not None:
            row["object"] = attached
        rows.append(row)
    metadata: dict[str, str] = {}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": [c.to_dict() for c in printer.columns],
        "rows": rows,
    }


# --- rendering ---------------------------------------------------------------------------------


def _cell_text(cell: Any) -> str:
    """A cell as kubectl prints it: first line only (then ``...``), escapes neutralised."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        text = "true" if cell else "false"
    elif isinstance(cell, float) and cell.is_integer() and abs(cell) < 1e21:
        # JSON numbers decode as floats in kubectl and print without a fraction.
        text = str(int(cell))
    else:
        text = str(cell)
    cut = min((i for i in (text.find(c) for c in "\f\n\r") if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut] + "..."
    # A terminal escape in an object's field must not reach the user's terminal.
    return text.replace("\x1b", "^[")


def _metadata(row: dict[str, Any]) -> dict[str, Any]:
    obj = row.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def render_table(
    table: dict[str, Any],
    wide: bool = False,
    no_headers: bool = False,
    show_namespace: bool = False,
    *,
    show_labels: bool = False,
    with_kind: str | None = None,
) -> str:
    """Print a Table as ``kubectl get`` does; empty string when there are no rows.

    ``wide`` shows priority-1 columns (``-o wide``); ``show_namespace`` adds the
    NAMESPACE column first (``-A``); ``show_labels`` adds LABELS last
    (``--show-labels``); ``with_kind`` prefixes names with a kind as
    ``kubectl get all`` does (``pod/web-1``, ``deployment.apps/web``). Namespace
    and labels come from the rows' attached objects.
    """
    rows = table.get("rows") or []
    if not rows:
        return ""  # kubectl prints no header either, only "No resources found" on stderr
    columns = table.get("columnDefinitions") or []
    visible = [i for i, c in enumerate(columns) if wide or not c.get("priority")]
    name_col = -1
    if with_kind:
        name_col = next((i for i, c in enumerate(columns)
                         if c.get("format") == "name" and c.get("type") == "string"), -1)

    lines: list[list[str]] = []
    if not no_headers:
        header = [str(columns[i].get("name", "")).upper() for i in visible]
        lines.append((["NAMESPACE"] if show_namespace else []) + header +
                     (["LABELS"] if show_labels else []))
    for row in rows:
        cells = row.get("cells") or []
        line = []
        if show_namespace:
            line.append(_cell_text(_metadata(row).get("namespace", "")))
        for i in visible:
            text = _cell_text(cells[i]) if i < len(cells) else ""
            if i == name_col and with_kind:  # (name_col is -1 without one)
                text = f"{with_kind.lower()}/{text}"
            line.append(text)
        if show_labels:
            line.append(printers.format_labels(_metadata(row).get("labels")))
        lines.append(line)
    return _tabulate(lines)


def _tabulate(lines: list[list[str]]) -> str:
    """Align like Go's text/tabwriter with kubectl's settings.

    Every cell but the last of a line is padded to its column's width: the widest
    cell plus 3, at least 6. The last cell is written as is, so a line ends
    without padding unless that last cell is empty, exactly as kubectl's do.
    """
    ncols = max(len(line) for line in lines)
    widths = [_MIN_WIDTH] * ncols
    for line in lines:
        for j, cell in enumerate(line[:-1]):
            widths[j] = max(widths[j], len(cell) + _PADDING)
    out = []
    for line in lines:
        padded = [cell.ljust(widths[j]) for j, cell in enumerate(line[:-1])]
        out.append("".join(padded) + (line[-1] if line else ""))
    return "\n".join(out) + "\n"
