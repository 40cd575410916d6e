"""Print the message table of netlab/master/apiserver/protobuf_messages.py.

``python scripts/gen_protobuf_messages.py API_REPO APIMACHINERY_REPO`` reads the
generated.proto files of k8s.io/api and k8s.io/apimachinery (git directories, read at
HEAD) and prints, for every message reachable from the kinds netlab decodes, one line:
``Name: number jsonName type, ...``. Field numbers and names are wire-format facts; what
this adds is which fields are Go pointers (``?``: kept when zero), which are inlined in
JSON (name ``-``), and the JSON spelling where the proto name differs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

# (repository, file, prefix): a file with a prefix has messages whose names another group
# uses too, with other fields (autoscaling/v2's HorizontalPodAutoscaler and its parts
# against autoscaling/v1's); they are named with the prefix, which the decoder looks up
# by the body's apiVersion.
FILES = [("machinery", "pkg/apis/meta/v1/generated.proto", "")] + [
    ("api", f"{g}/generated.proto", "") for g in (
    "core/v1", "apps/v1", "batch/v1", "networking/v1", "policy/v1", "authorization/v1",
    "authentication/v1", "rbac/v1", "autoscaling/v1", "scheduling/v1")] + [
    ("api", "autoscaling/v2/generated.proto", "autoscaling.v2.")]
ROOTS = str.split("ConfigMap Secret Service Namespace ServiceAccount Pod Deployment ReplicaSet "
         "DaemonSet StatefulSet Job CronJob PodDisruptionBudget Ingress Eviction "
         "SelfSubjectAccessReview SelfSubjectRulesReview SelfSubjectReview TokenRequest "
         "TokenReview Role ClusterRole RoleBinding ClusterRoleBinding Scale "
         "HorizontalPodAutoscaler autoscaling.v2.HorizontalPodAutoscaler OwnerReference "
         "PriorityClass")
# ObjectMeta: what a client may set; timestamps, generation and managedFields are the
# server's to set, so they are left out (skipped on the wire).
OBJECT_META = ("ObjectMeta: 1 name string, 2 generateName string, 3 namespace string, "
               "5 uid string, 6 resourceVersion string, 11 labels map, 12 annotations map, "
               "13 ownerReferences OwnerReference*, 14 finalizers string*")
SPECIAL = {"Quantity": "quantity", "IntOrString": "intorstr", "Time": "time",
           "MicroTime": "microtime", "Duration": "duration"}
SKIP_MESSAGES = {"ObjectMeta", "ManagedFieldsEntry", "RawExtension", "FieldsV1"}
INLINE = {("Volume", "volumeSource"), ("Probe", "handler"), ("IngressRule", "ingressRuleValue"),
          ("EphemeralContainer", "ephemeralContainerCommon")}
RENAME = {"aPIGroup": "apiGroup", "uID": "uid"}
# Go pointer scalars (*int32, *bool, *string): present on the wire means present in JSON.
POINTERS = set(str.split("""
PodSpec.terminationGracePeriodSeconds PodSpec.activeDeadlineSeconds
PodSpec.automountServiceAccountToken PodSpec.shareProcessNamespace PodSpec.priority
PodSpec.enableServiceLinks PodSpec.preemptionPolicy PodSpec.setHostnameAsFQDN
PodSpec.hostUsers
PodSpec.hostnameOverride PodSpec.runtimeClassName Container.restartPolicy
EphemeralContainerCommon.restartPolicy
SecurityContext.privileged SecurityContext.runAsUser SecurityContext.runAsGroup
SecurityContext.runAsNonRoot SecurityContext.readOnlyRootFilesystem
SecurityContext.allowPrivilegeEscalation SecurityContext.procMount
PodSecurityContext.runAsUser PodSecurityContext.runAsGroup PodSecurityContext.runAsNonRoot
PodSecurityContext.fsGroup PodSecurityContext.fsGroupChangePolicy
PodSecurityContext.supplementalGroupsPolicy PodSecurityContext.seLinuxChangePolicy
WindowsSecurityContextOptions.gmsaCredentialSpecName
WindowsSecurityContextOptions.gmsaCredentialSpec
WindowsSecurityContextOptions.runAsUserName
WindowsSecurityContextOptions.hostProcess SeccompProfile.localhostProfile
AppArmorProfile.localhostProfile
Probe.terminationGracePeriodSeconds Toleration.tolerationSeconds GRPCAction.service
ServiceSpec.allocateLoadBalancerNodePorts ServiceSpec.loadBalancerClass
ServiceSpec.internalTrafficPolicy ServiceSpec.ipFamilyPolicy
ServiceSpec.trafficDistribution
ClientIPConfig.timeoutSeconds ServicePort.appProtocol
ConfigMap.immutable Secret.immutable ServiceAccount.automountServiceAccountToken
VolumeMount.mountPropagation VolumeMount.recursiveReadOnly
ConfigMapKeySelector.optional SecretKeySelector.optional ConfigMapEnvSource.optional
SecretEnvSource.optional ConfigMapVolumeSource.defaultMode ConfigMapVolumeSource.optional
SecretVolumeSource.defaultMode SecretVolumeSource.optional KeyToPath.mode
ProjectedVolumeSource.defaultMode DownwardAPIVolumeSource.defaultMode
DownwardAPIVolumeFile.mode ConfigMapProjection.optional SecretProjection.optional
ServiceAccountTokenProjection.expirationSeconds HostPathVolumeSource.type
PersistentVolumeClaimSpec.storageClassName PersistentVolumeClaimSpec.volumeMode
PersistentVolumeClaimSpec.volumeAttributesClassName TypedLocalObjectReference.apiGroup
TypedObjectReference.apiGroup TypedObjectReference.namespace
PodDNSConfigOption.value TopologySpreadConstraint.minDomains
TopologySpreadConstraint.nodeAffinityPolicy TopologySpreadConstraint.nodeTaintsPolicy
CSIVolumeSource.readOnly CSIVolumeSource.fsType PodResourceClaim.resourceClaimName
PodResourceClaim.resourceClaimTemplateName
DeploymentSpec.replicas DeploymentSpec.revisionHistoryLimit
DeploymentSpec.progressDeadlineSeconds
ReplicaSetSpec.replicas StatefulSetSpec.replicas StatefulSetSpec.revisionHistoryLimit
DaemonSetSpec.revisionHistoryLimit RollingUpdateStatefulSetStrategy.partition
JobSpec.parallelism JobSpec.completions JobSpec.activeDeadlineSeconds JobSpec.backoffLimit
JobSpec.backoffLimitPerIndex JobSpec.maxFailedIndexes JobSpec.manualSelector
JobSpec.ttlSecondsAfterFinished JobSpec.completionMode JobSpec.suspend
JobSpec.podReplacementPolicy JobSpec.managedBy CronJobSpec.timeZone
CronJobSpec.startingDeadlineSeconds CronJobSpec.suspend
CronJobSpec.successfulJobsHistoryLimit
CronJobSpec.failedJobsHistoryLimit PodFailurePolicyOnExitCodesRequirement.containerName
SuccessPolicyRule.succeededCount SuccessPolicyRule.succeededIndexes
IngressSpec.ingressClassName HTTPIngressPath.pathType
PodDisruptionBudgetSpec.unhealthyPodEvictionPolicy
DeleteOptions.gracePeriodSeconds DeleteOptions.orphanDependents
DeleteOptions.propagationPolicy
DeleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential Preconditions.uid
Preconditions.resourceVersion OwnerReference.controller OwnerReference.blockOwnerDeletion
HorizontalPodAutoscalerSpec.minReplicas HorizontalPodAutoscalerSpec.targetCPUUtilizationPercentage
autoscaling.v2.HorizontalPodAutoscalerSpec.minReplicas
autoscaling.v2.MetricTarget.averageUtilization
autoscaling.v2.HPAScalingRules.stabilizationWindowSeconds
autoscaling.v2.HPAScalingRules.selectPolicy TokenRequestSpec.expirationSeconds
PriorityClass.preemptionPolicy
"""))


def load(api: str, machinery: str) -> dict[str, list[tuple[int, str, str, bool]]]:
    messages: dict[str, list[tuple[int, str, str, bool]]] = {}
    for repo, path, prefix in FILES:
        text = subprocess.run(["git", "-C", api if repo == "api" else machinery, "show",
                               f"HEAD:{path}"], check=True, capture_output=True,
                              text=True).stdout
        text = re.sub(r"//.*", "", text)
        own = set(re.findall(r"\nmessage (\w+) \{", text))

        def local(typ: str, prefix: str = prefix, own: set[str] = own) -> str:
            # An unqualified type is this file's own message: it takes the file's prefix.
            return prefix + typ if prefix and typ in own else typ.split(".")[-1]

        for m in re.finditer(r"\nmessage (\w+) \{(.*?)\n\}", text, re.S):
            fields = []
            for label, typ, name, num in re.findall(
                    r"(optional|repeated|map<[^>]+>)\s*([\w.]*)\s+(\w+)\s*=\s*(\d+)",
                    m.group(2)):
                if label.startswith("map<"):
                    value = label[4:-1].split(",")[1].strip().split(".")[-1]
                    typ = {"string": "map", "bytes": "bytesmap",
                           "Quantity": "qmap"}.get(value, f"map:{value}")
                    fields.append((int(num), name, typ, False))
                else:
                    fields.append((int(num), name, local(typ), label == "repeated"))
            message = prefix + m.group(1)
            if message in messages and messages[message] != fields:
                print(f"# {path}: another {message}, ignored", file=sys.stderr)
                continue
            messages[message] = fields
    return messages


def main() -> None:
    messages = load(sys.argv[1], sys.argv[2])
    scalar = {"string": "string", "int32": "int", "int64": "int", "bool": "bool",
              "bytes": "bytes", "double": "double"}
    seen: list[str] = []
    todo = list(ROOTS)
    while todo:
        name = todo.pop(0)
        if name in seen or name in SKIP_MESSAGES or name in SPECIAL or name in scalar:
            continue
        if name not in messages:  # from a group not read (newer alpha fields): skipped
            print(f"# {name}: not in the files read, fields of its type dropped",
                  file=sys.stderr)
            continue
        seen.append(name)
        for _num, field, typ, _rep in messages[name]:
            if field == "status" and typ.endswith("Status"):
                continue
            if typ.startswith("map:"):
                typ = typ[4:]
            if typ not in scalar and typ not in SPECIAL and typ not in (
                    "map", "bytesmap", "qmap"):
                todo.append(typ)
    emit(OBJECT_META)
    for name in seen:
        parts = []
        for num, field, typ, rep in messages[name]:
            if field == "status" and typ.endswith("Status"):
                continue
            if typ.startswith("map:"):
                typ = typ[4:]
                rep = False
                kind = f"map:{typ}"
            if typ not in messages and typ not in scalar and typ not in SPECIAL and typ not in (
                    "map", "bytesmap", "qmap") and typ not in SKIP_MESSAGES:
                continue
            json_name = "-" if (name, field) in INLINE else RENAME.get(field, field)
            kind = scalar.get(typ) or SPECIAL.get(typ) or typ
            mark = "*" if rep else "?" if f"{name}.{field}" in POINTERS else ""
            parts.append(f"{num} {json_name} {kind}{mark}")
        emit(f"{name}: " + ", ".join(parts))


def emit(line: str) -> None:
    print("\n".join(textwrap.wrap(line, 92, subsequent_indent="    ",
                                   break_on_hyphens=False)))


if __name__ == "__main__":
    main()
