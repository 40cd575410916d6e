"""Server-side printing: the Tables kubectl receives and the text it prints from them.

Each case states what a kubectl user would read in a column (STATUS of a
crash-looping pod, PORT(S) of a NodePort service, AGE at a boundary) for an
object shaped as the API stores it. Expected values follow Kubernetes' own
printers and apimachinery's HumanDuration.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from netlab.api import printers
from netlab.api.resources import resolve
from netlab.api.tables import PRINTERS, render_table, to_table
from netlab.api.timefmt import (
    format_micro_time,
    format_time,
    human_duration,
    parse_time,
    translate_timestamp_since,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


def meta(name: str, age: float = 300, namespace: str | None = "default", **extra) -> dict:
    m = {"name": name, "creationTimestamp": ago(age), **extra}
    if namespace:
        m["namespace"] = namespace
    return m


def row(kind: str, obj: dict, wide: bool = True) -> dict:
    """The row's cells keyed by upper-case column name, as kubectl would head them."""
    table = to_table(kind, [obj], NOW)
    cols = table["columnDefinitions"]
    cells = table["rows"][0]["cells"]
    return {c["name"].upper(): cell for c, cell in zip(cols, cells)
            if wide or c["priority"] == 0}


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"),
    (5, "5s"),
    (59, "59s"),
    (60, "60s"),
    (119.9, "119s"),
    (120, "2m"),
    (122, "2m2s"),
    (182, "3m2s"),
    (599, "9m59s"),
    (600, "10m"),
    (601, "10m"),
    (3 * 3600 - 1, "179m"),
    (3 * 3600, "3h"),
    (3 * 3600 + 60, "3h1m"),
    (8 * 3600 - 1, "7h59m"),
    (8 * 3600, "8h"),
    (48 * 3600 - 1, "47h"),
    (48 * 3600, "2d"),
    (51 * 3600, "2d3h"),
    (8 * 86400 - 1, "7d23h"),
    (8 * 86400, "8d"),
    (729 * 86400, "729d"),
    (730 * 86400, "2y"),
    (740 * 86400, "2y10d"),
    (8 * 365 * 86400, "8y"),
    (20 * 365 * 86400, "20y"),
    (-0.5, "0s"),
    (-1.9, "0s"),
    (-2, "<invalid>"),
    (-3600, "<invalid>"),
])
def test_human_duration_matches_apimachinery(seconds, text):
    assert human_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(("timestamp", "text"), [
    ("2024-05-01T11:55:00Z", "5m"),
    ("2024-05-01T11:56:58Z", "3m2s"),
    ("2024-04-29T09:00:00Z", "2d3h"),
    ("2024-05-01T11:59:55.123456Z", "4s"),  # a MicroTime
    ("2024-05-01T13:55:00+02:00", "5m"),   # an offset
    ("2024-05-01T12:00:30Z", "<invalid>"),  # the future, beyond skew tolerance
    (None, "<unknown>"),
    ("", "<unknown>"),
    ("yesterday", "<unknown>"),
    ("2024-13-01T00:00:00Z", "<unknown>"),
])
def test_translate_timestamp_since(timestamp, text):
    assert translate_timestamp_since(timestamp, NOW) == text


def test_naive_now_is_utc():
    assert translate_timestamp_since("2024-05-01T11:55:00Z", NOW.replace(tzinfo=None)) == "5m"


def test_time_formats_round_trip():
    when = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert format_time(when) == "2024-05-01T12:00:00Z"
    assert format_micro_time(when) == "2024-05-01T12:00:00.123456Z"
    assert parse_time(format_micro_time(when)) == when
    assert parse_time("2024-05-01T12:00:00.5Z").microsecond == 500000


# --- pods ----------------------------------------------------------------------------------------


def pod(*, phase="Running", containers=1, statuses=(), init=(), init_statuses=(),
        conditions=(), deletion=False, reason=None, **spec_extra) -> dict:
    spec = {"containers": [{"name": f"c{i}", "image": "echo"} for i in range(containers)],
            **spec_extra}
    if init:
        spec["initContainers"] = list(init)
    status = {"phase": phase, "conditions": list(conditions),
              "containerStatuses": list(statuses)}
    if init_statuses:
        status["initContainerStatuses"] = list(init_statuses)
    if reason:
        status["reason"] = reason
    m = meta("web-1")
    if deletion:
        m["deletionTimestamp"] = ago(1)
    return {"metadata": m, "spec": spec, "status": status}


def running(name="c0", ready=True, restarts=0, **extra) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(60)}}, **extra}


def waiting(reason, name="c0", restarts=0, **extra) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}, **extra}


def terminated(name="c0", exit_code=0, reason=None, signal=None, restarts=0) -> dict:
    term = {"exitCode": exit_code, "finishedAt": ago(10)}
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"terminated": term}}


READY_TRUE = {"type": "Ready", "status": "True"}
INITIALIZED = {"type": "Initialized", "status": "True"}
LAST_CRASH = {"lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                           "finishedAt": ago(30)}}}


@pytest.mark.parametrize(("obj", "ready", "status", "restarts"), [
    (pod(statuses=[running()], conditions=[READY_TRUE]), "1/1", "Running", "0"),
    (pod(phase="Pending"), "0/1", "Pending", "0"),
    (pod(phase=None), "0/1", "Pending", "0"),
    (pod(phase="Pending", statuses=[waiting("ContainerCreating")]),
     "0/1", "ContainerCreating", "0"),
    (pod(phase="Pending", statuses=[waiting("ErrImagePull")]), "0/1", "ErrImagePull", "0"),
    (pod(statuses=[waiting("CrashLoopBackOff", restarts=3, **LAST_CRASH)]),
     "0/1", "CrashLoopBackOff", "3 (30s ago)"),
    (pod(statuses=[running(restarts=2)]), "1/1", "Running", "2"),
    (pod(phase="Succeeded", statuses=[terminated(reason="Completed")]), "0/1", "Completed", "0"),
    (pod(phase="Failed", statuses=[terminated(exit_code=1, reason="Error")]), "0/1", "Error", "0"),
    (pod(phase="Failed", statuses=[terminated(exit_code=137)]), "0/1", "ExitCode:137", "0"),
    (pod(phase="Failed", statuses=[terminated(exit_code=0, signal=9)]), "0/1", "Signal:9", "0"),
    (pod(phase="Failed", reason="Evicted"), "0/1", "Evicted", "0"),
    (pod(statuses=[running()], deletion=True), "1/1", "Terminating", "0"),
    (pod(phase="Succeeded", statuses=[terminated(reason="Completed")], deletion=True),
     "0/1", "Completed", "0"),
    (pod(statuses=[running()], deletion=True, reason="NodeLost"), "1/1", "Unknown", "0"),
    (pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                       "reason": "SchedulingGated"}]),
     "0/1", "SchedulingGated", "0"),
    # One container finished, the other still running: Running if the pod is Ready.
    (pod(containers=2, statuses=[terminated("c0", reason="Completed"), running("c1")],
         conditions=[READY_TRUE]), "1/2", "Running", "0"),
    (pod(containers=2, statuses=[terminated("c0", reason="Completed"), running("c1")]),
     "1/2", "NotReady", "0"),
    # The first container's reason wins.
    (pod(containers=2, statuses=[waiting("ErrImagePull", "c0"), waiting("CrashLoopBackOff", "c1")]),
     "0/2", "ErrImagePull", "0"),
    (pod(containers=2, statuses=[running("c0"), running("c1", ready=False)]),
     "1/2", "Running", "0"),
])
def test_pod_ready_status_restarts(obj, ready, status, restarts):
    cells = row("pods", obj)
    assert (cells["READY"], cells["STATUS"], cells["RESTARTS"]) == (ready, status, restarts)


INIT2 = [{"name": "i0", "image": "echo"}, {"name": "i1", "image": "echo"}]


@pytest.mark.parametrize(("init_statuses", "status"), [
    ([terminated("i0"), running("i1", ready=False)], "Init:1/2"),
    ([waiting("PodInitializing", "i0"), waiting("PodInitializing", "i1")], "Init:0/2"),
    ([waiting("CrashLoopBackOff", "i0", restarts=4, **LAST_CRASH)], "Init:CrashLoopBackOff"),
    ([terminated("i0", exit_code=1, reason="Error")], "Init:Error"),
    ([terminated("i0", exit_code=2)], "Init:ExitCode:2"),
    ([terminated("i0", exit_code=2, signal=15)], "Init:Signal:15"),
])
def test_pod_init_container_status(init_statuses, status):
    obj = pod(phase="Pending", init=INIT2, init_statuses=init_statuses,
              statuses=[waiting("PodInitializing")])
    assert row("pods", obj)["STATUS"] == status


def test_pod_init_restarts_count_while_initializing():
    obj = pod(phase="Pending", init=INIT2, statuses=[waiting("PodInitializing")],
              init_statuses=[waiting("CrashLoopBackOff", "i0", restarts=4, **LAST_CRASH)])
    assert row("pods", obj)["RESTARTS"] == "4 (30s ago)"


def test_pod_after_init_shows_container_status():
    obj = pod(init=INIT2, init_statuses=[terminated("i0"), terminated("i1")],
              statuses=[running()], conditions=[INITIALIZED, READY_TRUE])
    assert (row("pods", obj)["READY"], row("pods", obj)["STATUS"]) == ("1/1", "Running")


def test_pod_sidecar_init_container_counts_as_a_container():
    sidecar = {"name": "proxy", "image": "echo", "restartPolicy": "Always"}
    obj = pod(init=[sidecar], init_statuses=[running("proxy", started=True)],
              statuses=[running()], conditions=[INITIALIZED, READY_TRUE])
    assert (row("pods", obj)["READY"], row("pods", obj)["STATUS"]) == ("2/2", "Running")


def test_pod_restarts_take_the_latest_termination():
    older = {"lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3600)}}}
    obj = pod(containers=2, statuses=[running("c0", restarts=1, **older),
                                      running("c1", restarts=2, **LAST_CRASH)])
    assert row("pods", obj)["RESTARTS"] == "3 (30s ago)"


def test_pod_wide_columns():
    obj = pod(statuses=[running()], nodeName="node1",
              readinessGates=[{"conditionType": "example.com/a"},
                              {"conditionType": "example.com/b"}],
              conditions=[{"type": "example.com/a", "status": "True"},
                          {"type": "example.com/b", "status": "False"}])
    obj["status"]["podIPs"] = [{"ip": "10.244.1.2"}]
    cells = row("pods", obj)
    assert (cells["IP"], cells["NODE"], cells["NOMINATED NODE"], cells["READINESS GATES"]) == \
        ("10.244.1.2", "node1", "<none>", "1/2")
    assert cells["AGE"] == "5m"
    unscheduled = row("pods", pod(phase="Pending"))
    assert (unscheduled["IP"], unscheduled["NODE"], unscheduled["READINESS GATES"]) == \
        ("<none>", "<none>", "<none>")
    legacy = pod(statuses=[running()])
    legacy["status"]["podIP"] = "10.244.2.3"
    assert row("pods", legacy)["IP"] == "10.244.2.3"


def test_finished_pods_carry_a_completed_row_condition():
    done = to_table("pods", [pod(phase="Succeeded")], NOW)["rows"][0]
    assert done["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                   "message": "The pod has completed successfully."}]
    failed = to_table("pods", [pod(phase="Failed")], NOW)["rows"][0]
    assert failed["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in to_table("pods", [pod()], NOW)["rows"][0]


# --- services and endpoints ----------------------------------------------------------------------


def service(svc_type=None, ports=(), cluster_ip="10.96.0.10", selector=None, **spec_extra):
    spec = {"ports": list(ports), **spec_extra}
    if svc_type:
        spec["type"] = svc_type
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
        spec["clusterIPs"] = [cluster_ip]
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": meta("web"), "spec": spec}


@pytest.mark.parametrize(("obj", "expected"), [
    (service("ClusterIP", [{"port": 80, "protocol": "TCP"}], selector={"app": "web"}),
     {"TYPE": "ClusterIP", "CLUSTER-IP": "10.96.0.10", "EXTERNAL-IP": "<none>",
      "PORT(S)": "80/TCP", "SELECTOR": "app=web"}),
    (service("NodePort", [{"port": 80, "protocol": "TCP", "nodePort": 30080}]),
     {"TYPE": "NodePort", "PORT(S)": "80:30080/TCP", "EXTERNAL-IP": "<none>",
      "SELECTOR": "<none>"}),
    (service(None, [{"port": 53, "protocol": "UDP"}, {"port": 53}]),
     {"TYPE": "ClusterIP", "PORT(S)": "53/UDP,53/TCP"}),
    (service("ClusterIP", [], cluster_ip="None", selector={"tier": "db", "app": "web"}),
     {"CLUSTER-IP": "None", "PORT(S)": "<none>", "SELECTOR": "app=web,tier=db"}),
    (service("ClusterIP", [{"port": 80}], cluster_ip=None), {"CLUSTER-IP": "<none>"}),
    (service("ClusterIP", [{"port": 80}], externalIPs=["192.168.100.50", "192.168.100.51"]),
     {"EXTERNAL-IP": "192.168.100.50,192.168.100.51"}),
    (service("LoadBalancer", [{"port": 80, "nodePort": 31000}]),
     {"EXTERNAL-IP": "<pending>", "PORT(S)": "80:31000/TCP"}),
    (service("ExternalName", [], cluster_ip=None, externalName="db.example.com"),
     {"EXTERNAL-IP": "db.example.com", "CLUSTER-IP": "<none>"}),
])
def test_service_columns(obj, expected):
    cells = row("services", obj)
    assert {k: cells[k] for k in expected} == expected
    assert cells["AGE"] == "5m"


def test_load_balancer_ingress_addresses():
    obj = service("LoadBalancer", [{"port": 80}])
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"},
                                                  {"hostname": "lb.example.com"}]}}
    assert row("svc", obj)["EXTERNAL-IP"] == "203.0.113.7,lb.example.com"


def endpoints(*subsets) -> dict:
    return {"metadata": meta("web"), "subsets": list(subsets)}


def subset(ips, ports=(8080,)) -> dict:
    return {"addresses": [{"ip": ip} for ip in ips], "ports": [{"port": p} for p in ports]}


@pytest.mark.parametrize(("obj", "text"), [
    (endpoints(subset(["10.244.1.2", "10.244.2.3"])), "10.244.1.2:8080,10.244.2.3:8080"),
    (endpoints(subset(["10.244.1.2", "10.244.2.3", "10.244.1.4", "10.244.2.5"])),
     "10.244.1.2:8080,10.244.2.3:8080,10.244.1.4:8080 + 1 more..."),
    (endpoints(subset(["10.244.1.2", "10.244.2.3"], ports=(80, 443))),
     "10.244.1.2:80,10.244.2.3:80,10.244.1.2:443 + 1 more..."),
    (endpoints(subset(["10.244.1.2"]), subset(["10.244.2.3"], ports=(9090,))),
     "10.244.1.2:8080,10.244.2.3:9090"),
    (endpoints(subset(["10.244.1.2", "10.244.2.3"], ports=())), "10.244.1.2,10.244.2.3"),
    (endpoints(subset(["fd00::2"])), "[fd00::2]:8080"),
    (endpoints(), "<none>"),
    (endpoints({"notReadyAddresses": [{"ip": "10.244.1.2"}], "ports": [{"port": 80}]}), ""),
])
def test_endpoints_column(obj, text):
    assert row("ep", obj)["ENDPOINTS"] == text


# --- nodes, namespaces, events, leases -----------------------------------------------------------


def node(ready="True", labels=None, unschedulable=False, conditions=None) -> dict:
    conds = conditions if conditions is not None else [
        {"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}]
    obj = {"metadata": meta("node1", age=2 * 86400 + 3 * 3600, namespace=None,
                            labels=labels or {}),
           "spec": {"unschedulable": True} if unschedulable else {},
           "status": {"conditions": conds,
                      "addresses": [{"type": "InternalIP", "address": "192.168.100.11"},
                                    {"type": "Hostname", "address": "node1"}],
                      "nodeInfo": {"kubeletVersion": "v1.30.0-netlab",
                                   "osImage": "Debian GNU/Linux 12 (bookworm)",
                                   "kernelVersion": "6.1.0-18-amd64",
                                   "containerRuntimeVersion": ""}}}
    return obj


@pytest.mark.parametrize(("obj", "status", "roles"), [
    (node(), "Ready", "<none>"),
    (node("False"), "NotReady", "<none>"),
    (node("Unknown"), "NotReady", "<none>"),
    (node(conditions=[]), "Unknown", "<none>"),
    (node(unschedulable=True), "Ready,SchedulingDisabled", "<none>"),
    (node(labels={"node-role.kubernetes.io/control-plane": ""}), "Ready", "control-plane"),
    (node(labels={"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane":
                  "", "node-role.kubernetes.io/": "", "kubernetes.io/hostname": "node1"}),
     "Ready", "control-plane,worker"),
    (node(labels={"kubernetes.io/role": "edge"}), "Ready", "edge"),
])
def test_node_status_and_roles(obj, status, roles):
    cells = row("no", obj)
    assert (cells["STATUS"], cells["ROLES"]) == (status, roles)


def test_node_columns():
    cells = row("nodes", node())
    assert cells == {
        "NAME": "node1", "STATUS": "Ready", "ROLES": "<none>", "AGE": "2d3h",
        "VERSION": "v1.30.0-netlab", "INTERNAL-IP": "192.168.100.11", "EXTERNAL-IP": "<none>",
        "OS-IMAGE": "Debian GNU/Linux 12 (bookworm)", "KERNEL-VERSION": "6.1.0-18-amd64",
        "CONTAINER-RUNTIME": "<unknown>"}


def test_namespace_columns():
    ns = {"metadata": meta("kube-system", age=90, namespace=None), "status": {"phase": "Active"}}
    assert row("ns", ns) == {"NAME": "kube-system", "STATUS": "Active", "AGE": "90s"}


def event(**fields) -> dict:
    base = {"metadata": meta("web-1.17c1"), "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{c0}"},
            "source": {"component": "kubelet", "host": "node1"},
            "message": "Back-off restarting failed container\n"}
    base.update(fields)
    return base


@pytest.mark.parametrize(("obj", "last_seen", "count"), [
    (event(firstTimestamp=ago(600), lastTimestamp=ago(30), count=5), "30s", 5),
    (event(firstTimestamp=ago(600)), "10m", 1),
    (event(eventTime=format_micro_time(NOW - timedelta(seconds=7))), "7s", 1),
    (event(eventTime=format_micro_time(NOW - timedelta(seconds=700)),
           series={"count": 4, "lastObservedTime": format_micro_time(NOW - timedelta(seconds=3))}),
     "3s", 4),
    (event(), "<unknown>", 1),
])
def test_event_last_seen_and_count(obj, last_seen, count):
    cells = row("events", obj)
    assert (cells["LAST SEEN"], cells["COUNT"]) == (last_seen, count)


def test_event_columns():
    cells = row("ev", event(firstTimestamp=ago(600), lastTimestamp=ago(30), count=5), wide=False)
    assert cells == {"LAST SEEN": "30s", "TYPE": "Warning", "REASON": "BackOff",
                     "OBJECT": "pod/web-1", "MESSAGE": "Back-off restarting failed container"}
    wide = row("ev", event(firstTimestamp=ago(600), reportingInstance="x"))
    assert (wide["SUBOBJECT"], wide["SOURCE"], wide["FIRST SEEN"], wide["NAME"]) == \
        ("spec.containers{c0}", "kubelet, node1", "10m", "web-1.17c1")
    nameless = row("ev", event(involvedObject={"kind": "Node"}, source={},
                               reportingComponent="node-controller"))
    assert (nameless["OBJECT"], nameless["SOURCE"]) == ("node", "node-controller")


def test_lease_columns():
    lease = {"metadata": meta("node1", age=3600, namespace="kube-node-lease"),
             "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40}}
    assert row("leases", lease) == {"NAME": "node1", "HOLDER": "node1", "AGE": "60m"}
    assert row("lease", {"metadata": meta("x"), "spec": {}})["HOLDER"] == ""


# --- workloads -----------------------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "web", "image": "netlab/echo"},
                                    {"name": "sidecar", "image": "netlab/agnhost"}]}}


def test_deployment_columns():
    dep = {"metadata": meta("web", age=3 * 3600 + 120),
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": TEMPLATE},
           "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
                      "availableReplicas": 2}}
    assert row("deploy", dep) == {
        "NAME": "web", "READY": "2/3", "UP-TO-DATE": 3, "AVAILABLE": 2, "AGE": "3h2m",
        "CONTAINERS": "web,sidecar", "IMAGES": "netlab/echo,netlab/agnhost",
        "SELECTOR": "app=web"}


def test_deployment_defaults_and_empty_status():
    dep = {"metadata": meta("web"), "spec": {"template": TEMPLATE}}
    cells = row("deployments.apps", dep)
    assert (cells["READY"], cells["UP-TO-DATE"], cells["AVAILABLE"], cells["SELECTOR"]) == \
        ("0/1", 0, 0, "")


@pytest.mark.parametrize(("selector", "text"), [
    ({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
     "env in (dev,prod)"),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]},
                           {"key": "canary", "operator": "DoesNotExist"},
                           {"key": "zone", "operator": "Exists"}]},
     "app=web,!canary,env notin (dev),zone"),
    ({}, "<none>"),
    (None, "<none>"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": []}]}, "<error>"),
    ({"matchExpressions": [{"key": "env", "operator": "Near"}]}, "<error>"),
])
def test_replicaset_selector(selector, text):
    rs = {"metadata": meta("web-5d9c"),
          "spec": {"replicas": 2, "template": TEMPLATE, "selector": selector},
          "status": {"replicas": 2, "readyReplicas": 1}}
    cells = row("rs", rs)
    assert cells["SELECTOR"] == text
    assert (cells["DESIRED"], cells["CURRENT"], cells["READY"]) == (2, 2, 1)


def job(conditions=(), start=None, completion=None, deletion=False, **spec) -> dict:
    status = {"conditions": list(conditions), "succeeded": 1 if completion else 0}
    if start is not None:
        status["startTime"] = ago(start)
    if completion is not None:
        status["completionTime"] = ago(completion)
    m = meta("pi", age=600)
    if deletion:
        m["deletionTimestamp"] = ago(1)
    return {"metadata": m, "spec": {"template": TEMPLATE, **spec}, "status": status}


def cond(ctype: str, status: str = "True") -> dict:
    return {"type": ctype, "status": status}


@pytest.mark.parametrize(("obj", "status", "completions", "duration"), [
    (job(start=300, completions=1), "Running", "0/1", "5m"),
    (job([cond("Complete")], start=300, completion=253, completions=1), "Complete", "1/1", "47s"),
    (job([cond("Failed")], start=300, completions=3), "Failed", "0/3", "5m"),
    (job([cond("Suspended")], suspend=True), "Suspended", "0/1", ""),
    (job([cond("Suspended", "False")], start=10), "Running", "0/1", "10s"),
    (job([cond("FailureTarget")], start=10), "FailureTarget", "0/1", "10s"),
    (job(start=10, deletion=True), "Terminating", "0/1", "10s"),
    (job(parallelism=4), "Running", "0/1 of 4", ""),
    (job(parallelism=1), "Running", "0/1", ""),
    (job(), "Running", "0/1", ""),
])
def test_job_columns(obj, status, completions, duration):
    cells = row("jobs", obj)
    assert (cells["STATUS"], cells["COMPLETIONS"], cells["DURATION"], cells["AGE"]) == \
        (status, completions, duration, "10m")


def hpa(metrics=None, current=None, **spec) -> dict:
    body = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10, **spec}
    if metrics is not None:
        body["metrics"] = metrics
    status = {"currentReplicas": 2}
    if current is not None:
        status["currentMetrics"] = current
    return {"apiVersion": "autoscaling/v2", "metadata": meta("web"), "spec": body,
            "status": status}


def cpu(target=None, value=None) -> dict:
    t = {"type": "Utilization", "averageUtilization": target} if value is None else \
        {"type": "AverageValue", "averageValue": value}
    return {"type": "Resource", "resource": {"name": "cpu", "target": t}}


def cpu_now(percent=None, value=None) -> dict:
    c = {"averageUtilization": percent} if value is None else {"averageValue": value}
    return {"type": "Resource", "resource": {"name": "cpu", "current": c}}


@pytest.mark.parametrize(("obj", "targets"), [
    (hpa([cpu(50)], [cpu_now(40)]), "cpu: 40%/50%"),
    (hpa([cpu(50)]), "cpu: <unknown>/50%"),
    (hpa([cpu(50)], [{"type": "Resource", "resource": {"name": "cpu", "current": {}}}]),
     "cpu: <unknown>/50%"),
    (hpa(), "cpu: <unknown>/80%"),
    (hpa([cpu(value="500m")], [cpu_now(value="250m")]), "cpu: 250m/500m"),
    (hpa([{"type": "Pods", "pods": {"metric": {"name": "rps"},
                                    "target": {"type": "AverageValue", "averageValue": "10"}}}],
         [{"type": "Pods", "pods": {"current": {"averageValue": "7"}}}]), "7/10"),
    (hpa([{"type": "External", "external": {"metric": {"name": "q"},
                                            "target": {"type": "Value", "value": "30"}}}]),
     "<unknown>/30"),
    (hpa([{"type": "Object", "object": {"target": {"type": "AverageValue",
                                                   "averageValue": "5"}}}]),
     "<unknown>/5 (avg)"),
    (hpa([cpu(50), cpu(value="1"), {"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}}],
         [cpu_now(40)]),
     "cpu: 40%/50%, cpu: <unknown>/1 + 1 more..."),
])
def test_hpa_targets(obj, targets):
    assert row("hpa", obj)["TARGETS"] == targets


def test_hpa_columns():
    assert row("hpa", hpa([cpu(50)], [cpu_now(40)])) == {
        "NAME": "web", "REFERENCE": "Deployment/web", "TARGETS": "cpu: 40%/50%",
        "MINPODS": "1", "MAXPODS": 10, "REPLICAS": 2, "AGE": "5m"}


def test_hpa_stored_as_autoscaling_v1():
    v1 = {"apiVersion": "autoscaling/v1", "metadata": meta("web"),
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                   "targetCPUUtilizationPercentage": 50},
          "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 40}}
    cells = row("horizontalpodautoscalers", v1)
    assert (cells["TARGETS"], cells["MINPODS"], cells["MAXPODS"]) == ("cpu: 40%/50%", "1", 5)
    del v1["spec"]["targetCPUUtilizationPercentage"]
    del v1["status"]["currentCPUUtilizationPercentage"]
    assert row("hpa", v1)["TARGETS"] == "cpu: <unknown>/80%"


# --- Table shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "columns", "wide_columns"), [
    ("Pod", ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
     ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]),
    ("Service", ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"]),
    ("Endpoints", ["NAME", "ENDPOINTS", "AGE"], []),
    ("Node", ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
     ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]),
    ("Namespace", ["NAME", "STATUS", "AGE"], []),
    ("Event", ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
     ["SUBOBJECT", "SOURCE", "FIRST SEEN", "COUNT", "NAME"]),
    ("Deployment", ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
     ["CONTAINERS", "IMAGES", "SELECTOR"]),
    ("ReplicaSet", ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
     ["CONTAINERS", "IMAGES", "SELECTOR"]),
    ("Job", ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
     ["CONTAINERS", "IMAGES", "SELECTOR"]),
    ("HorizontalPodAutoscaler",
     ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], []),
    ("Lease", ["NAME", "HOLDER", "AGE"], []),
])
def test_columns_match_kubectl_headers(kind, columns, wide_columns):
    defs = [c.to_dict() for c in PRINTERS[kind].columns]
    assert [c["name"].upper() for c in defs if c["priority"] == 0] == columns
    assert [c["name"].upper() for c in defs if c["priority"] == 1] == wide_columns
    for c in defs:
        assert set(c) == {"name", "type", "format", "description", "priority"}
        assert c["description"]
    # Each kind's cell function fills exactly one cell per column.
    assert len(to_table(kind, [{"metadata": meta("x")}], NOW)["rows"][0]["cells"]) == len(defs)


def test_every_served_kind_has_a_printer():
    from netlab.api.resources import all_resources
    # Kinds that cannot be listed (the create-only access reviews) are never printed.
    assert {r.kind for r in all_resources() if "list" in r.verbs} == set(PRINTERS)


def test_table_envelope_and_include_object():
    obj = pod(statuses=[running()])
    table = to_table("po", [obj], NOW, resource_version="42", continue_token="abc")
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert table["columnDefinitions"][0] == {
        "name": "Name", "type": "string", "format": "name",
        "description": table["columnDefinitions"][0]["description"], "priority": 0}
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata",
                                          "apiVersion": "meta.k8s.io/v1",
                                          "metadata": obj["metadata"]}
    assert to_table("po", [obj], NOW, "Object")["rows"][0]["object"] is obj
    assert "object" not in to_table("po", [obj], NOW, "None")["rows"][0]
    beta = to_table("po", [obj], NOW, api_version="meta.k8s.io/v1beta1")
    assert beta["apiVersion"] == beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    json.dumps(table)
    with pytest.raises(ValueError, match="includeObject"):
        to_table("po", [obj], NOW, "Everything")


@pytest.mark.parametrize("kind", ["Pod", "pods", "po", "pod", "PODS"])
def test_to_table_accepts_kinds_and_typed_names(kind):
    assert to_table(kind, [], NOW)["columnDefinitions"][2]["name"] == "Status"


def test_to_table_accepts_a_resource_and_keeps_row_order():
    objs = [{"metadata": meta(n)} for n in ("b", "a", "c")]
    table = to_table(resolve("ns"), objs, NOW)
    assert [r["cells"][0] for r in table["rows"]] == ["b", "a", "c"]


def test_unknown_kinds_get_the_default_table():
    table = to_table("Widget", [{"metadata": meta("cfg")}], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["cfg", ago(300)]


# --- rendering -----------------------------------------------------------------------------------


def pods_table():
    web = pod(statuses=[running()], conditions=[READY_TRUE], nodeName="node1")
    web["status"]["podIP"] = "10.244.1.2"
    crash = pod(statuses=[waiting("CrashLoopBackOff", restarts=3, **LAST_CRASH)],
                nodeName="node2")
    crash["metadata"] = meta("api-7f9c4d-x2x", age=7200, namespace="shop",
                             labels={"app": "api", "tier": "be"})
    return to_table("pods", [web, crash], NOW)


def test_render_like_kubectl_get():
    assert render_table(pods_table()) == (
        "NAME             READY   STATUS             RESTARTS      AGE\n"
        "web-1            1/1     Running            0             5m\n"
        "api-7f9c4d-x2x   0/1     CrashLoopBackOff   3 (30s ago)   120m\n")


def test_render_wide_all_namespaces():
    assert render_table(pods_table(), wide=True, show_namespace=True) == (
        "NAMESPACE   NAME             READY   STATUS             RESTARTS      AGE    IP"
        "           NODE    NOMINATED NODE   READINESS GATES\n"
        "default     web-1            1/1     Running            0             5m     10.244.1.2"
        "   node1   <none>           <none>\n"
        "shop        api-7f9c4d-x2x   0/1     CrashLoopBackOff   3 (30s ago)   120m   <none>"
        "       node2   <none>           <none>\n")


def test_render_no_headers_labels_and_kind_prefix():
    text = render_table(pods_table(), no_headers=True, show_labels=True, with_kind="Pod")
    assert text == (
        "pod/web-1            1/1   Running            0             5m     <none>\n"
        "pod/api-7f9c4d-x2x   0/1   CrashLoopBackOff   3 (30s ago)   120m   app=api,tier=be\n")
    dep = to_table("deploy", [{"metadata": meta("web"), "spec": {"replicas": 1}}], NOW)
    assert render_table(dep, with_kind="Deployment.apps").splitlines()[1].startswith(
        "deployment.apps/web   0/1")


def test_render_empty_table_prints_nothing():
    assert render_table(to_table("pods", [], NOW)) == ""


def test_render_column_widths_like_go_tabwriter():
    table = {"columnDefinitions": [{"name": "A", "priority": 0}, {"name": "B", "priority": 0},
                                   {"name": "C", "priority": 0}],
             "rows": [{"cells": ["x", None, "last"]}, {"cells": ["y", True, ""]}]}
    # Columns are at least 6 wide; an empty last cell leaves the padding before it.
    assert render_table(table) == ("A     B      C\n"
                                   "x            last\n"
                                   "y     true   \n")
    for line in render_table(pods_table(), wide=True).splitlines():
        assert line == line.rstrip()


def test_render_cuts_multiline_cells_and_escapes():
    table = {"columnDefinitions": [{"name": "Name", "priority": 0},
                                   {"name": "Message", "priority": 0}],
             "rows": [{"cells": ["e1", "first line\nsecond line"]},
                      {"cells": ["e2", "bell\x1b[31mred"]},
                      {"cells": [3.0, 2.5]}]}
    assert render_table(table).splitlines() == [
        "NAME   MESSAGE", "e1     first line...", "e2     bell^[[31mred", "3      2.5"]


def test_pod_status_reason_helper():
    assert printers.pod_status_reason(pod(statuses=[waiting("CrashLoopBackOff")])) == \
        "CrashLoopBackOff"
