"""Validation of pod specs, and of the selector and pod template of the workload kinds.

``ValidatePodSpec`` and what it calls (containers, ports, env, resources, volume
mounts, restart, DNS and preemption policies, the priority class's name), with the field
paths and messages of k8s.io/kubernetes/pkg/apis/core/validation, and the
selector-matches-template rule of every controller kind. Pods, Deployments, ReplicaSets, Jobs (in
:mod:`netlab.api.validation`), DaemonSets and StatefulSets (``validation_apps``),
CronJobs (``validation_batch_policy``) and ReplicationControllers
(``validation_config``) build on it. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netlab.api import selectors
from netlab.api.errors import (
    duplicate,
    field_not_found,
    forbidden_field,
    invalid,
    not_supported,
    required,
)
from netlab.api.validation_base import (
    _ENV_FMT,
    _ENV_RE,
    _QUANTITY_MSG,
    _V,
    PORT_RANGE_MSG,
    _regex_msg,
    dns1123_label,
    dns1123_subdomain,
    port_name,
)
from netlab.api.validation_scheduling import validate_preemption_policy
from netlab.units import QuantityError, parse_quantity


def _quantity(v: _V, value: Any, path: str) -> Any:
    try:
        q = parse_quantity(value)
    except (QuantityError, TypeError, ValueError, ArithmeticError):
        v.add(invalid(path, value, _QUANTITY_MSG))
        return None
    if q < 0:
        v.add(invalid(path, value, "must be greater than or equal to 0"))
    return q


def _resources(v: _V, c: dict[str, Any], path: str) -> None:
    res = v.obj(c, "resources", f"{path}.resources")
    parsed: dict[str, dict[str, Any]] = {}
    for kind in ("limits", "requests"):
        values = v.obj(res, kind, f"{path}.resources.{kind}")
        parsed[kind] = {name: _quantity(v, q, f"{path}.resources.{kind}[{name}]")
                        for name, q in values.items()}
    for name, req in parsed["requests"].items():
        lim = parsed["limits"].get(name)
        if req is not None and lim is not None and req > lim:
            v.add(invalid(f"{path}.resources.requests", res["requests"][name],
                          f"must be less than or equal to {name} limit of "
                          f"{res['limits'][name]}"))


def container_name(v: _V, c: dict[str, Any], path: str) -> str:
    """A container's name: required, a DNS-1123 label (every container kind)."""
    name = v.string(c, "name", f"{path}.name")
    if not name:
        v.add(required(f"{path}.name"))
    else:
        for msg in dns1123_label(name):
            v.add(invalid(f"{path}.name", name, msg))
    return name


def _container(v: _V, c: dict[str, Any], path: str, volumes: set[str], for_pod: bool) -> None:
    container_name(v, c, path)
    image = v.string(c, "image", f"{path}.image")
    if for_pod and not image.strip():
        v.add(required(f"{path}.image"))
    v.one_of(c, "imagePullPolicy", f"{path}.imagePullPolicy",
             ("Always", "IfNotPresent", "Never"))
    v.one_of(c, "terminationMessagePolicy", f"{path}.terminationMessagePolicy",
             ("File", "FallbackToLogsOnError"))
    port_names: set[str] = set()
    for ppath, port in v.objs(c, "ports", f"{path}.ports"):
        v.port(port, "containerPort", f"{ppath}.containerPort")
        host_port = v.integer(port, "hostPort", f"{ppath}.hostPort")
        if host_port and not 1 <= host_port <= 65535:
            v.add(invalid(f"{ppath}.hostPort", host_port, PORT_RANGE_MSG))
        v.one_of(port, "protocol", f"{ppath}.protocol", ("SCTP", "TCP", "UDP"))
        v.unique_name(port, f"{ppath}.name", port_names, port_name)
    for epath, env in v.objs(c, "env", f"{path}.env"):
        ename = v.string(env, "name", f"{epath}.name")
        if not ename:
            v.add(required(f"{epath}.name"))
        elif not _ENV_RE.fullmatch(ename):
            v.add(invalid(f"{epath}.name", ename, _regex_msg(
                "a valid environment variable name must consist of alphabetic characters, "
                "digits, '_', '-', or '.', and must not start with a digit",
                _ENV_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")))
        if env.get("value") and env.get("valueFrom") is not None:
            v.add(invalid(f"{epath}.valueFrom", "",
                          "may not be specified when `value` is not empty"))
    _resources(v, c, path)
    for mpath, mount in v.objs(c, "volumeMounts", f"{path}.volumeMounts"):
        mount_name_and_path(v, mount, mpath, volumes)
        # Upstream names the list, not the entry, for these two paths.
        sub_path = v.string(mount, "subPath", f"{mpath}.subPath")
        if sub_path:
            _local_descending_path(v, sub_path, f"{path}.volumeMounts.subPath")
        expr = v.string(mount, "subPathExpr", f"{mpath}.subPathExpr")
        if expr:
            if sub_path:
                v.add(invalid(f"{mpath}.subPathExpr", expr,
                              "subPathExpr and subPath are mutually exclusive"))
            _local_descending_path(v, expr, f"{path}.volumeMounts.subPathExpr")
        propagation = v.string(mount, "mountPropagation", f"{mpath}.mountPropagation")
        if propagation:
            if propagation not in PROPAGATION_MODES:
                v.add(not_supported(f"{path}.volumeMounts.mountPropagation", propagation,
                                    PROPAGATION_MODES))
            elif propagation == "Bidirectional" and not _privileged(c):
                v.add(forbidden_field(
                    f"{path}.volumeMounts.mountPropagation",
                    "Bidirectional mount propagation is available only to privileged containers"))


PROPAGATION_MODES = ("Bidirectional", "HostToContainer", "None")


def mount_name_and_path(v: _V, mount: dict[str, Any], mpath: str, volumes: set[str]) -> None:
    """A volumeMount names a volume of the pod and a mountPath (every container kind)."""
    mname = v.string(mount, "name", f"{mpath}.name")
    if not mname:
        v.add(required(f"{mpath}.name"))
    elif mname not in volumes:
        v.add(field_not_found(f"{mpath}.name", mname))
    if not v.string(mount, "mountPath", f"{mpath}.mountPath"):
        v.add(required(f"{mpath}.mountPath"))


SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")


def _seccomp_profile(v: _V, holder: Any, path: str) -> None:
    """validateSeccompProfileField on ``holder``'s securityContext.seccompProfile."""
    sc = holder.get("securityContext") if isinstance(holder, dict) else None
    profile = sc.get("seccompProfile") if isinstance(sc, dict) else None
    if not isinstance(profile, dict):
        return
    path = f"{path}.securityContext.seccompProfile"
    kind = profile.get("type") or ""
    if not kind:
        v.add(required(f"{path}.type", "type is required when seccompProfile is set"))
    elif kind not in SECCOMP_TYPES:
        v.add(not_supported(f"{path}.type", kind, SECCOMP_TYPES))
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None:
            v.add(required(f"{path}.localhostProfile",
                           "must be set when seccomp type is Localhost"))
        elif isinstance(local, str):
            _local_descending_path(v, local, f"{path}.localhostProfile")


def _privileged(c: dict[str, Any]) -> bool:
    sc = c.get("securityContext")
    return isinstance(sc, dict) and sc.get("privileged") is True


def _local_descending_path(v: _V, target: str, path: str) -> None:
    """validateLocalDescendingPath: relative, and no ``..`` element."""
    if target.startswith("/"):
        v.add(invalid(path, target, "must be a relative path"))
    if ".." in target.split("/"):
        v.add(invalid(path, target, "must not contain '..'"))


def validate_container(v: _V, c: dict[str, Any], path: str, volumes: set[str],
                       for_pod: bool = True) -> None:
    """One container of any kind, as upstream's ``validateContainerCommon``: name,
    image, ports, env, resources, volume mounts (subPath, propagation) and its
    seccomp profile. Ephemeral containers go through this too, then their own rules."""
    _container(v, c, path, volumes, for_pod)
    _seccomp_profile(v, c, path)


def validate_pod_spec(v: _V, spec: Any, path: str, for_pod: bool = True,
                      restart_policies: tuple[str, ...] = ("Always", "OnFailure", "Never"),
                      claim_volumes: frozenset[str] = frozenset()) -> None:
    if not isinstance(spec, dict):
        v.add(required(path) if spec is None else invalid(path, spec, "must be an object"))
        return
    volumes: set[str] = set()
    for vpath, vol in v.objs(spec, "volumes", f"{path}.volumes"):
        vname = v.string(vol, "name", f"{vpath}.name")
        if not vname:
            v.add(required(f"{vpath}.name"))
            continue
        for msg in dns1123_label(vname):
            v.add(invalid(f"{vpath}.name", vname, msg))
        if vname in volumes:
            v.add(duplicate(f"{vpath}.name", vname))
        volumes.add(vname)
    volumes |= claim_volumes
    _seccomp_profile(v, spec, path)
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for cpath, c in v.objs(spec, key, f"{path}.{key}"):
            validate_container(v, c, cpath, volumes, for_pod)
            cname = c.get("name")
            if isinstance(cname, str) and cname:
                if cname in names:
                    v.add(duplicate(f"{cpath}.name", cname))
                names.add(cname)
    policy = spec.get("restartPolicy")
    if policy is None or policy == "":
        if restart_policies != ("Always", "OnFailure", "Never"):
            v.add(required(f"{path}.restartPolicy", "valid values: " + ", ".join(
                f'"{p}"' for p in restart_policies)))
    else:
        v.one_of(spec, "restartPolicy", f"{path}.restartPolicy", restart_policies)
    v.one_of(spec, "dnsPolicy", f"{path}.dnsPolicy",
             ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"))
    _dns_config(v, spec, path)
    v.non_negative(spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds")
    deadline = v.integer(spec, "activeDeadlineSeconds", f"{path}.activeDeadlineSeconds")
    if deadline is not None and deadline <= 0:
        v.add(invalid(f"{path}.activeDeadlineSeconds", deadline,
                      "must be between 1 and 2147483647, inclusive"))
    node = v.string(spec, "nodeName", f"{path}.nodeName")
    if node:
        for msg in dns1123_subdomain(node):
            v.add(invalid(f"{path}.nodeName", node, msg))
    v.labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    class_name = v.string(spec, "priorityClassName", f"{path}.priorityClassName")
    for msg in dns1123_subdomain(class_name) if class_name else ():
        v.add(invalid(f"{path}.priorityClassName", class_name, msg))
    validate_preemption_policy(v, spec, f"{path}.preemptionPolicy")
    for tpath, tol in v.objs(spec, "tolerations", f"{path}.tolerations"):
        v.one_of(tol, "operator", f"{tpath}.operator", ("Equal", "Exists"))
        v.one_of(tol, "effect", f"{tpath}.effect", ("NoSchedule", "PreferNoSchedule",
                                                      "NoExecute"))


def _check_containers_present(v: _V, spec: Any, path: str) -> None:
    if isinstance(spec, dict) and not spec.get("containers"):
        v.add(required(f"{path}.containers"))


def _selector_and_template(v: _V, spec: dict[str, Any], what: str, empty_msg: str,
                           restart_policies: tuple[str, ...],
                           claim_volumes: frozenset[str] = frozenset()) -> None:
    """The selector and the pod template; ``claim_volumes``: volume names the pods get
    besides the template's (a StatefulSet's claim templates), which mounts may name."""
    selector = spec.get("selector")
    if selector is None:
        v.add(required("spec.selector"))
    elif not isinstance(selector, dict):
        v.add(invalid("spec.selector", selector, "must be an object"))
        selector = None
    elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
        v.add(invalid("spec.selector", selector, empty_msg))
        selector = None
    template = spec.get("template")
    if not isinstance(template, dict):
        v.add(required("spec.template") if template is None
              else invalid("spec.template", template, "must be an object"))
        return
    tmeta = v.obj(template, "metadata", "spec.template.metadata")
    labels = tmeta.get("labels")
    v.labels(labels, "spec.template.metadata.labels")
    if selector is not None:
        try:
            sel = selectors.label_selector_from_object(selector)
        except selectors.SelectorError as err:
            v.add(invalid("spec.selector", selector, str(err)))
        else:
            if not sel.matches(labels if isinstance(labels, dict) else {}):
                v.add(invalid("spec.template.metadata.labels", labels or {},
                              "`selector` does not match template `labels`"))
    validate_pod_spec(v, template.get("spec"), "spec.template.spec", for_pod=False,
                      restart_policies=restart_policies, claim_volumes=claim_volumes)
    _check_containers_present(v, template.get("spec"), "spec.template.spec")


def _dns_config(v: _V, spec: dict[str, Any], path: str) -> None:
    """``dnsConfig`` with upstream's limits; ``dnsPolicy: None`` needs a nameserver."""
    none = spec.get("dnsPolicy") == "None"
    if spec.get("dnsConfig") is None:
        if none:
            v.add(required(f"{path}.dnsConfig",
                           "must provide `dnsConfig` when `dnsPolicy` is None"))
        return
    config = v.obj(spec, "dnsConfig", f"{path}.dnsConfig")
    cpath = f"{path}.dnsConfig"
    servers = config.get("nameservers") or []
    if none and not servers:
        v.add(required(f"{cpath}.nameservers",
                       "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if isinstance(servers, list):
        if len(servers) > 3:
            v.add(invalid(f"{cpath}.nameservers", servers,
                          "must not have more than 3 nameservers"))
        for i, server in enumerate(servers):
            try:
                ipaddress.ip_address(str(server))
            except ValueError:
                v.add(invalid(f"{cpath}.nameservers[{i}]", server,
                              "must be a valid IP address"))
    searches = config.get("searches") or []
    if isinstance(searches, list):
        if len(searches) > 32:
            v.add(invalid(f"{cpath}.searches", searches,
                          "must not have more than 32 search paths"))
        if len(" ".join(map(str, searches))) > 2048:
            v.add(invalid(f"{cpath}.searches", searches,
                          "must not have more than 2048 characters (including spaces) in the "
                          "search list"))
        for i, search in enumerate(searches):
            for msg in dns1123_subdomain(str(search).removesuffix(".")):
                v.add(invalid(f"{cpath}.searches[{i}]", search, msg))
    for opath, option in v.objs(config, "options", f"{cpath}.options"):
        if not option.get("name"):
            v.add(required(opath, "Option.Name must not be empty"))
