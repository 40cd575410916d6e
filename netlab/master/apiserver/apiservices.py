"""The APIService objects of the built-in API groups, and the status APIServices start with.

kube-apiserver's aggregator registers one APIService per served group/version
(``v1.``, ``v1.apps``, ``v2.autoscaling`` ...), Local (no ``service``), labelled
``kube-aggregator.kubernetes.io/automanaged: onstart``, with the priorities of its
``apiVersionPriorities`` table, and its availability controller marks them Available. netlab
computes the same list from :mod:`netlab.api.resources` (so a group added there appears on
the next start) and stores it at bootstrap (``bootstrap.py``), removing automanaged ones whose
group/version is no longer served. User-created APIServices are stored and served like any
object; nothing is proxied to them, and their status says so.
"""

from __future__ import annotations

from netlab.api import resources
from netlab.api.objects import timestamp
from netlab.api.views import dict_at
from netlab.master.apiserver import metricsapi

AUTOMANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
# The label's value on the APIServices of CRD groups, which come and go with the CRDs
# (built-in groups' say "onstart").
CRD_AUTOMANAGED = "true"

# kube-apiserver's apiVersionPriorities: (groupPriorityMinimum, versionPriority).
_PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apiregistration.k8s.io", "v1"): (18000, 15),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("autoscaling", "v1"): (17500, 15),
    ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("node.k8s.io", "v1"): (16300, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
}


def name_of(group: str, version: str) -> str:
    """``v1.apps``; ``v1.`` for the core group."""
    return f"{version}.{group}"


def _priority(group: str, version: str, index: int) -> tuple[int, int]:
    # Groups missing from kube-apiserver's table get what CRD groups get (1000), with
    # the preferred version first.
    return _PRIORITIES.get((group, version), (1000, max(1, 100 - 10 * index)))


def builtin_apiservices() -> list[dict]:
    """One Local APIService per served group/version, core first, then /apis order."""
    out = []
    builtin = {r.group for r in resources.all_resources() if r.custom is None}
    for group in ["", *(g for g in resources.groups() if g in builtin)]:
        versions = ["v1"] if group == "" else resources.group_versions(group)
        for index, version in enumerate(versions):
            group_min, version_prio = _priority(group, version, index)
            out.append({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": name_of(group, version),
                             "labels": {AUTOMANAGED_LABEL: "onstart"}},
                "spec": {"group": group, "version": version,
                         "groupPriorityMinimum": group_min, "versionPriority": version_prio},
            })
    # metrics.k8s.io is served by the API server itself (metricsapi.py), not from the
    # resource table; Local, so Available, where metrics-server's would name its Service.
    out.append(metricsapi.apiservice())
    return out


def crd_apiservice(group: str, version: str) -> dict:
    """The APIService kube-apiserver's CRD registration controller makes for a CRD group."""
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": name_of(group, version),
                         "labels": {AUTOMANAGED_LABEL: CRD_AUTOMANAGED}},
            # CRD groups rank low; their versions sort among themselves kube-like.
            "spec": {"group": group, "version": version, "groupPriorityMinimum": 1000,
                     "versionPriority": 100}}


def initial_status(obj: dict) -> dict:
    """Local APIServices are available; netlab proxies to no aggregated API server, so one
    backed by a service reports the failed discovery check the aggregator would."""
    spec = dict_at(obj, "spec")
    now = timestamp()
    if spec.get("service") is None:
        cond = {"type": "Available", "status": "True", "lastTransitionTime": now,
                "reason": "Local", "message": "Local APIServices are always available"}
    else:
        cond = {"type": "Available", "status": "False", "lastTransitionTime": now,
                "reason": "FailedDiscoveryCheck",
                "message": "netlab does not proxy to aggregated API servers"}
    return {"conditions": [cond]}
