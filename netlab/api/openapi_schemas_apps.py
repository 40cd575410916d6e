"""OpenAPI v3 schemas of apps/v1 DaemonSet, StatefulSet and ControllerRevision.

Restated from k8s.io/api/apps/v1 (types.go) in the shapes of
:mod:`netlab.api.openapi_schemas`, which imports this module at its end so that
these ``_def``/``_kind`` calls land in the same tables. Complete field lists
matter: strict field validation refuses what is not declared here, and
``kubectl apply`` reads the patch strategies from these schemas.
"""

from __future__ import annotations

from netlab.api.openapi_schemas_base import (
    I32,
    I64,
    IOS,
    SELECTOR,
    TIME,
    A,
    M,
    R,
    S,
    _def,
    _kind,
    obj,
)

# --- DaemonSet ----------------------------------------------------------------------------------

_def("apps.RollingUpdateDaemonSet", obj(maxSurge=IOS, maxUnavailable=IOS))
_def("apps.DaemonSetUpdateStrategy", obj(rollingUpdate=R("apps.RollingUpdateDaemonSet"), type=S))
_def("apps.DaemonSetSpec", obj(
    ("selector", "template"), minReadySeconds=I32, revisionHistoryLimit=I32, selector=SELECTOR,
    template=R("core.PodTemplateSpec"), updateStrategy=R("apps.DaemonSetUpdateStrategy")))
_def("apps.DaemonSetCondition", obj(("type", "status"), lastTransitionTime=TIME, message=S,
                                  reason=S, status=S, type=S))
_def("apps.DaemonSetStatus", obj(
    ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"),
    collisionCount=I32, conditions=M("apps.DaemonSetCondition", "type"),
    currentNumberScheduled=I32, desiredNumberScheduled=I32, numberAvailable=I32,
    numberMisscheduled=I32, numberReady=I32, numberUnavailable=I32, observedGeneration=I64,
    updatedNumberScheduled=I32))
_kind("apps.DaemonSet", "apps", "v1", {"spec": R("apps.DaemonSetSpec"),
                                       "status": R("apps.DaemonSetStatus")})

# --- StatefulSet --------------------------------------------------------------------------------

# volumeClaimTemplates are full PersistentVolumeClaims: ``core.PersistentVolumeClaim``,
# a served kind, is restated in openapi_schemas_storage.
_def("apps.RollingUpdateStatefulSetStrategy", obj(maxUnavailable=IOS, partition=I32))
_def("apps.StatefulSetUpdateStrategy", obj(
    rollingUpdate=R("apps.RollingUpdateStatefulSetStrategy"), type=S))
_def("apps.StatefulSetPersistentVolumeClaimRetentionPolicy", obj(whenDeleted=S, whenScaled=S))
_def("apps.StatefulSetOrdinals", obj(start=I32))
_def("apps.StatefulSetSpec", obj(
    ("selector", "template"), minReadySeconds=I32, ordinals=R("apps.StatefulSetOrdinals"),
    persistentVolumeClaimRetentionPolicy=R("apps.StatefulSetPersistentVolumeClaimRetentionPolicy"),
    podManagementPolicy=S, replicas=I32, revisionHistoryLimit=I32, selector=SELECTOR,
    serviceName=S, template=R("core.PodTemplateSpec"),
    updateStrategy=R("apps.StatefulSetUpdateStrategy"),
    volumeClaimTemplates=A("core.PersistentVolumeClaim", ltype="atomic")))
_def("apps.StatefulSetCondition", obj(("type", "status"), lastTransitionTime=TIME, message=S,
                                    reason=S, status=S, type=S))
_def("apps.StatefulSetStatus", obj(
    ("replicas",), availableReplicas=I32, collisionCount=I32,
    conditions=M("apps.StatefulSetCondition", "type"), currentReplicas=I32,
    currentRevision=S, observedGeneration=I64, readyReplicas=I32, replicas=I32,
    updateRevision=S, updatedReplicas=I32))
_kind("apps.StatefulSet", "apps", "v1", {"spec": R("apps.StatefulSetSpec"),
                                         "status": R("apps.StatefulSetStatus")})

# --- ControllerRevision ---------------------------------------------------------------------------

_kind("apps.ControllerRevision", "apps", "v1", {"data": R("RawExtension"), "revision": I64},
      ("revision",))
