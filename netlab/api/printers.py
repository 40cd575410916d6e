"""Per-kind row printers: the cells of ``kubectl get``, computed as Kubernetes computes them.

Each ``<kind>_cells(obj, now)`` function turns one object (a plain dict, as
stored) into the cells of its table row: READY, STATUS, RESTARTS, PORT(S),
ROLES, TARGETS and the rest. How every cell is derived follows Kubernetes' own
server-side printers (``pkg/printers/internalversion``), so ``kubectl get``
against netlab prints what it prints against a real cluster.
:mod:`netlab.api.tables` pairs these functions with their column definitions
and wraps the rows into a ``meta.k8s.io`` Table.

Where Kubernetes relies on API defaulting (a Service's type, a Deployment's
replicas, an HPA's default CPU target) the printers apply the same default when
the field is absent, so output matches a real cluster even for objects stored
without them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.timefmt import as_utc, duration_between, parse_time
from netlab.api.timefmt import translate_timestamp_since as _since
from netlab.api.views import pod_status, service_spec, spec_of, status_of

Obj = dict[str, Any]  # a Kubernetes object as decoded JSON

NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
NODE_ROLE_LABEL = "kubernetes.io/role"
# Kubernetes marks a pod whose node stopped answering with this status reason.
NODE_LOST_REASON = "NodeLost"
DEFAULT_HPA_CPU_UTILIZATION = 80


# --- small helpers -----------------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    """Walk nested dicts; None when any step is missing or not a dict."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _name(obj: Obj) -> str:
    return _get(obj, "metadata", "name") or ""


def _age(obj: Obj, now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def format_labels(labels: dict[str, Any] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs joined by commas, ``<none>`` if empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: dict[str, Any] | None) -> str | None:
    """A LabelSelector as Kubernetes' ``Selector.String()``; None when it is invalid.

    Requirements are sorted by key; set values are sorted, as Kubernetes does.
    A missing selector selects nothing and prints as the empty string.
    """
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op = expr.get("key", ""), expr.get("operator")
        values = sorted(set(expr.get("values") or []))
        if op in ("In", "NotIn"):
            if not values:
                return None
            word = "in" if op == "In" else "notin"
            reqs.append((key, f"{key} {word} ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, "!" + key))
        else:
            return None
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` when empty, ``<error>`` when invalid."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(pod_spec: dict[str, Any] | None) -> tuple[str, str]:
    """CONTAINERS and IMAGES cells: comma-joined, in spec order."""
    containers = (pod_spec or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _condition_true(conditions: list[Any] | None, ctype: str) -> bool:
    """Whether the first condition of ``ctype`` is True (Kubernetes' hasJobCondition)."""
    for cond in conditions or []:
        if cond.get("type") == ctype:
            return bool(cond.get("status") == "True")
    return False


def _quantity(value: Any) -> str:
    # Quantities arrive as strings ("250m") or bare numbers; print as given.
    if value is None:
        return "<unknown>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- pods --------------------------------------------------------------------------------------


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    when = parse_time(candidate)
    if when is not None and (current is None or when > current):
        return when
    return current


def _is_sidecar(container: dict[str, Any] | None) -> bool:
    """An init container with restartPolicy Always (a native sidecar)."""
    return container is not None and container.get("restartPolicy") == "Always"


def pod_status_reason(pod: Obj) -> str:
    """The STATUS column of ``kubectl get pods`` (see :func:`_pod_summary`)."""
    return _pod_summary(pod)[1]


def _pod_summary(pod: Obj) -> tuple[str, str, int, datetime | None]:
    """(READY, STATUS, restarts, time of the last restart), computed as Kubernetes does.

    STATUS starts from the phase (or status.reason), is overridden by the first
    failing or waiting init container (``Init:1/2``, ``Init:CrashLoopBackOff``),
    then by the containers' waiting/terminated reasons (``CrashLoopBackOff``,
    ``ErrImagePull``, ``Completed``, ``Error``), and by ``Terminating`` once a
    deletion timestamp is set.
    """
    spec = spec_of(pod)
    status = pod_status(pod)
    restarts = 0
    sidecar_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    # The API server sets phase Pending at creation; an object stored without it
    # reads as Kubernetes would show it.
    phase = status.get("phase") or "Pending"
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total += sum(1 for c in init_specs.values() if _is_sidecar(c))

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        count = _int(cs.get("restartCount"))
        finished = _get(cs, "lastState", "terminated", "finishedAt")
        restarts += count
        last_restart = _later(last_restart, finished)
        sidecar = _is_sidecar(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif _int(terminated.get("signal")):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
        elif waiting is not None and waiting.get("reason") and \
                waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        # Walked last to first, so the first container's reason wins, as in Kubernetes.
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += _int(cs.get("restartCount"))
            last_restart = _later(last_restart, _get(cs, "lastState", "terminated", "finishedAt"))
            state = cs.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                signal = _int(terminated.get("signal"))
                reason = f"Signal:{signal}" if signal else \
                    f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        # A finished container next to a running one: the pod is still running.
        if reason == "Completed" and has_running:
            ready_cond = _condition_true(status.get("conditions"), "Ready")
            reason = "Running" if ready_cond else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == NODE_LOST_REASON:
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return f"{ready}/{total}", reason, restarts, last_restart


def pod_cells(pod: Obj, now: datetime) -> list[Any]:
    ready, reason, restarts, last_restart = _pod_summary(pod)
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({_since(last_restart, now)} ago)"
    spec = spec_of(pod)
    status = pod_status(pod)
    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips else None) or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    readiness = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in reversed(status.get("conditions") or [])}
        true_count = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        readiness = f"{true_count}/{len(gates)}"
    return [_name(pod), ready, reason, restarts_text, _age(pod, now),
            pod_ip, spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", readiness]


def pod_conditions(pod: Obj) -> list[Any]:
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed",
                 "message": "The pod failed."}]
    return []


# --- services, endpoints -----------------------------------------------------------------------


def _service_external_ip(svc: Obj) -> str:
    spec = service_spec(svc)
    svc_type = spec.get("type") or "ClusterIP"
    external = spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        lb: list[str] = []
        for ing in _get(svc, "status", "loadBalancer", "ingress") or []:
            addr = ing.get("ip") or ing.get("hostname")
            if addr and addr not in lb:
                lb.append(addr)
        if external:
            return ",".join(lb + list(external))
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def service_ports(ports: list[Any] | None) -> str:
    """PORT(S): ``80/TCP``, or ``80:30080/TCP`` when a node port is allocated."""
    pieces = []
    for p in ports or []:
        proto = p.get("protocol") or "TCP"
        node_port = _int(p.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{p.get('port')}:{node_port}/{proto}")
        else:
            pieces.append(f"{p.get('port')}/{proto}")
    return ",".join(pieces)


def service_cells(svc: Obj, now: datetime) -> list[Any]:
    spec = service_spec(svc)
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    cluster_ip = cluster_ips[0] if cluster_ips else "<none>"
    return [_name(svc), spec.get("type") or "ClusterIP", cluster_ip, _service_external_ip(svc),
            service_ports(spec.get("ports")) or "<none>", _age(svc, now),
            format_labels(spec.get("selector"))]


def _host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(endpoints: Obj, limit: int = 3) -> str:
    """ENDPOINTS: the first three ``ip:port`` pairs, then ``+ N more...``."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addresses = [a.get("ip", "") for a in ss.get("addresses") or []]
        ports = ss.get("ports") or []
        # A headless service may have no ports: list bare addresses.
        pairs_per_port = [addresses] if not ports else \
            [[_host_port(a, p.get("port")) for a in addresses] for p in ports]
        for pairs in pairs_per_port:
            count += len(pairs)
            shown.extend(pairs[:max(0, limit - len(shown))])
    text = ",".join(shown)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text


def endpoints_cells(ep: Obj, now: datetime) -> list[Any]:
    return [_name(ep), format_endpoints(ep), _age(ep, now)]


def _list_with_more(items: list[str], count: int, limit: int = 3) -> str:
    """``listWithMoreString``: the first three, then ``+ N more...``; ``<unset>`` if none."""
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def endpointslice_cells(eps: Obj, now: datetime) -> list[Any]:
    """NAME ADDRESSTYPE PORTS ENDPOINTS AGE, as ``printEndpointSlice``: a port without a
    number shows its name, or ``*``; every address of every endpoint counts."""
    ports = [str(p.get("port")) if p.get("port") is not None else (p.get("name") or "*")
             for p in eps.get("ports") or [] if isinstance(p, dict)]
    addresses = [str(a) for e in eps.get("endpoints") or [] if isinstance(e, dict)
                 for a in e.get("addresses") or []]
    return [_name(eps), eps.get("addressType") or "", _list_with_more(ports, len(ports)),
            _list_with_more(addresses, len(addresses)), _age(eps, now)]


# --- nodes, namespaces, events, leases ---------------------------------------------------------


def node_roles(node: Obj) -> str:
    """ROLES from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role`` labels."""
    roles = set()
    for key, value in (_get(node, "metadata", "labels") or {}).items():
        if key.startswith(NODE_ROLE_PREFIX) and len(key) > len(NODE_ROLE_PREFIX):
            roles.add(key[len(NODE_ROLE_PREFIX):])
        elif key == NODE_ROLE_LABEL and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def node_status(node: Obj) -> str:
    """STATUS: ``Ready``/``NotReady``/``Unknown``, plus ``SchedulingDisabled`` if cordoned."""
    parts = []
    for cond in _get(node, "status", "conditions") or []:
        if cond.get("type") == "Ready":
            parts = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not parts:
        parts = ["Unknown"]
    if _get(node, "spec", "unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _node_address(node: Obj, addr_type: str) -> str:
    for addr in _get(node, "status", "addresses") or []:
        if addr.get("type") == addr_type:
            address: str = addr.get("address", "")
            return address
    return "<none>"


def node_cells(node: Obj, now: datetime) -> list[Any]:
    info = _get(node, "status", "nodeInfo") or {}
    return [_name(node), node_status(node), node_roles(node), _age(node, now),
            info.get("kubeletVersion", ""),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def namespace_cells(ns: Obj, now: datetime) -> list[Any]:
    return [_name(ns), _get(ns, "status", "phase") or "", _age(ns, now)]


def _event_source(ev: Obj) -> str:
    component = _get(ev, "source", "component") or ev.get("reportingComponent") or ""
    instance = _get(ev, "source", "host") or ev.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def event_cells(ev: Obj, now: datetime) -> list[Any]:
    first = _since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") \
        else _since(ev.get("eventTime"), now)
    last = _since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = _int(ev.get("count"))
    series = ev.get("series")
    if series:
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # a singleton event of the new API carries no count
    involved = ev.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [last, ev.get("type", ""), ev.get("reason", ""), target,
            involved.get("fieldPath", ""), _event_source(ev), (ev.get("message") or "").strip(),
            first, count, _name(ev)]


def lease_cells(lease: Obj, now: datetime) -> list[Any]:
    return [_name(lease), _get(lease, "spec", "holderIdentity") or "", _age(lease, now)]


# --- workloads ---------------------------------------------------------------------------------


def _replicas(obj: Obj) -> int:
    # Deployments and ReplicaSets default spec.replicas to 1 at the API.
    return _int(_get(obj, "spec", "replicas"), 1)


def deployment_cells(dep: Obj, now: datetime) -> list[Any]:
    status = status_of(dep)
    selector = selector_string(_get(dep, "spec", "selector"))
    names, images = _containers(_get(dep, "spec", "template", "spec"))
    return [_name(dep), f"{_int(status.get('readyReplicas'))}/{_replicas(dep)}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")),
            _age(dep, now), names, images, "<invalid>" if selector is None else selector]


def replicaset_cells(rs: Obj, now: datetime) -> list[Any]:
    status = status_of(rs)
    names, images = _containers(_get(rs, "spec", "template", "spec"))
    return [_name(rs), _replicas(rs), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(rs, now), names, images,
            format_label_selector(_get(rs, "spec", "selector"))]


def job_status(job: Obj) -> str:
    conds = _get(job, "status", "conditions")
    if _condition_true(conds, "Complete"):
        return "Complete"
    if _condition_true(conds, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if _condition_true(conds, "Suspended"):
        return "Suspended"
    if _condition_true(conds, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(job: Obj) -> str:
    """COMPLETIONS: ``1/3``; ``0/1 of 4`` for a work queue (no completions, parallelism > 1)."""
    spec = spec_of(job)
    succeeded = _int(_get(job, "status", "succeeded"))
    completions = spec.get("completions")
    if completions is None and spec.get("parallelism") is None:
        completions = 1  # the API defaults both to 1 when neither is given
    if completions is not None:
        return f"{succeeded}/{_int(completions)}"
    parallelism = _int(spec.get("parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def job_cells(job: Obj, now: datetime) -> list[Any]:
    status = status_of(job)
    start = status.get("startTime")
    duration = ""
    if start:
        duration = duration_between(start, status.get("completionTime") or as_utc(now))
    names, images = _containers(_get(job, "spec", "template", "spec"))
    return [_name(job), job_status(job), job_completions(job), duration, _age(job, now),
            names, images, format_label_selector(_get(job, "spec", "selector"))]


def _hpa_metrics(hpa: Obj) -> tuple[list[Any], list[Any]]:
    """(spec metrics, current metrics) in autoscaling/v2 form, whatever version is stored."""
    spec = spec_of(hpa)
    status = status_of(hpa)
    is_v1 = "metrics" not in spec and (
        "targetCPUUtilizationPercentage" in spec or hpa.get("apiVersion") == "autoscaling/v1")
    if not is_v1:
        metrics = spec.get("metrics") or []
        current = status.get("currentMetrics") or []
        if not metrics:
            # autoscaling/v2 defaulting: no metrics means 80% average CPU utilization.
            metrics = [_cpu_metric(DEFAULT_HPA_CPU_UTILIZATION)]
        return metrics, current
    # autoscaling/v1: one CPU utilization target, defaulting to 80%.
    target = _int(spec.get("targetCPUUtilizationPercentage"), DEFAULT_HPA_CPU_UTILIZATION)
    current_cpu = status.get("currentCPUUtilizationPercentage")
    current = []
    if isinstance(current_cpu, int):
        current = [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current_cpu}}}]
    return [_cpu_metric(target)], current


def _cpu_metric(percent: int) -> dict[str, Any]:
    return {"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}


def _resource_target(source: str, spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    """A Resource or ContainerResource metric: ``cpu: 40%/50%`` or ``cpu: 250m/500m``."""
    target = spec.get("target") or {}
    current_src = (status or {}).get(source) or {}
    current = current_src.get("current") or {}
    name = spec.get("name", "")
    if target.get("averageValue") is not None:
        return f"{name}: {_quantity(current.get('averageValue'))}/" \
               f"{_quantity(target['averageValue'])}"
    cur = current.get("averageUtilization")
    cur_text = f"{cur}%" if isinstance(cur, int) else "<unknown>"
    goal = target.get("averageUtilization")
    goal_text = f"{goal}%" if isinstance(goal, int) else "<auto>"
    return f"{name}: {cur_text}/{goal_text}"


def _value_target(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    """An Object or External metric: ``5/10`` or ``5/10 (avg)``."""
    target = spec.get("target") or {}
    current = (status or {}).get("current") or {}
    if target.get("averageValue") is not None:
        return f"{_quantity(current.get('averageValue'))}/{_quantity(target['averageValue'])} (avg)"
    return f"{_quantity(current.get('value'))}/{_quantity(target.get('value'))}"


def hpa_targets(hpa: Obj, limit: int = 2) -> str:
    """TARGETS: e.g. ``cpu: 40%/50%``, ``cpu: <unknown>/50%``; two metrics then ``+ N more...``."""
    metrics, statuses = _hpa_metrics(hpa)
    if not metrics:
        return "<none>"
    items = []
    for i, spec in enumerate(metrics):
        status = statuses[i] if i < len(statuses) else None
        mtype = spec.get("type")
        if mtype == "Resource":
            items.append(_resource_target("resource", spec.get("resource") or {}, status))
        elif mtype == "ContainerResource":
            items.append(_resource_target("containerResource",
                                          spec.get("containerResource") or {}, status))
        elif mtype == "Pods":
            cur = _get(status, "pods", "current", "averageValue")
            goal = _get(spec, "pods", "target", "averageValue")
            items.append(f"{_quantity(cur)}/{_quantity(goal)}")
        elif mtype in ("Object", "External"):
            key = "object" if mtype == "Object" else "external"
            items.append(_value_target(spec.get(key) or {}, (status or {}).get(key)))
        else:
            items.append("<unknown type>")
    text = ", ".join(items[:limit])
    if len(items) > limit:
        return f"{text} + {len(items) - limit} more..."
    return text


def hpa_cells(hpa: Obj, now: datetime) -> list[Any]:
    spec = spec_of(hpa)
    ref = spec.get("scaleTargetRef") or {}
    # minReplicas defaults to 1 at the API, so "<unset>" never shows on a real cluster.
    min_pods = str(_int(spec.get("minReplicas"), 1))
    return [_name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}", hpa_targets(hpa),
            min_pods, _int(spec.get("maxReplicas")),
            _int(_get(hpa, "status", "currentReplicas")), _age(hpa, now)]


def default_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _get(obj, "metadata", "creationTimestamp") or ""]
