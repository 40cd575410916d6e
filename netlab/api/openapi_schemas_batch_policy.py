"""OpenAPI schemas of batch/v1 CronJob and policy/v1 PodDisruptionBudget and Eviction.

Restated from k8s.io/api (batch/v1 ``CronJob``, policy/v1 ``PodDisruptionBudget`` and
``Eviction``) into the shared tables of :mod:`netlab.api.openapi_schemas`, which imports this
module at its end so these ``_def``/``_kind`` calls run with the rest. The Job spec inside a
CronJob's ``jobTemplate`` reuses the Job schemas defined there.
"""

from __future__ import annotations

from netlab.api.openapi_schemas_base import (
    I32,
    I64,
    IOS,
    KINDS,
    MAP,
    META,
    OBJ,
    SELECTOR,
    TIME,
    A,
    B,
    M,
    R,
    S,
    _def,
    _kind,
    obj,
)

# --- batch/v1 CronJob ---------------------------------------------------------------------------

_def("batch.JobTemplateSpec", obj(metadata=META, spec=R("batch.JobSpec")))
_def("batch.CronJobSpec", obj(
    ("schedule", "jobTemplate"), concurrencyPolicy=S, failedJobsHistoryLimit=I32,
    jobTemplate=R("batch.JobTemplateSpec"), schedule=S, startingDeadlineSeconds=I64,
    successfulJobsHistoryLimit=I32, suspend=B, timeZone=S))
_def("batch.CronJobStatus", obj(active=A("core.ObjectReference", ltype="atomic"),
                                lastScheduleTime=TIME, lastSuccessfulTime=TIME))
_kind("batch.CronJob", "batch", "v1", {"spec": R("batch.CronJobSpec"),
                                       "status": R("batch.CronJobStatus")})

# --- policy/v1 PodDisruptionBudget and Eviction ---------------------------------------------------

_def("policy.PodDisruptionBudgetSpec", obj(
    maxUnavailable=IOS, minAvailable=IOS,
    selector={**SELECTOR, "x-kubernetes-patch-strategy": "replace"},
    unhealthyPodEvictionPolicy=S))
_def("policy.PodDisruptionBudgetStatus", obj(
    ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"),
    conditions=M("meta.Condition", "type"), currentHealthy=I32, desiredHealthy=I32,
    disruptedPods=MAP(TIME), disruptionsAllowed=I32, expectedPods=I32,
    observedGeneration=I64))
_kind("policy.PodDisruptionBudget", "policy", "v1", {
    "spec": R("policy.PodDisruptionBudgetSpec"),
    "status": R("policy.PodDisruptionBudgetStatus")})

# Eviction is only ever POSTed to pods/eviction: a kind without a List.
_EVICTION = OBJ({"apiVersion": S, "deleteOptions": R("meta.DeleteOptions"), "kind": S,
                 "metadata": META})
_EVICTION["x-kubernetes-group-version-kind"] = [{"group": "policy", "kind": "Eviction",
                                                 "version": "v1"}]
_def("policy.Eviction", _EVICTION)
KINDS["policy.Eviction"] = ("policy", "v1", "Eviction")
