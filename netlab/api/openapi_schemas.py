"""The OpenAPI v3 component schemas of the kinds netlab serves, restated from k8s.io/api.

Data only: :mod:`netlab.api.openapi` builds the served documents from it, and
:mod:`netlab.api.openapi_validation` checks request bodies against it. Names, field lists,
list types and the strategic-merge extensions (``x-kubernetes-patch-merge-key``,
``x-kubernetes-patch-strategy``) follow the Go types of Kubernetes 1.32/1.33, because two
consumers depend on them being complete:

* ``kubectl apply`` computes its strategic merge patch from these schemas (see the research
  notes in :mod:`netlab.api.openapi`); a field the user writes that is missing here makes it
  print ``warning: error calculating patch from openapi v3 spec`` and fall back.
* ``fieldValidation=Strict`` rejects every field not declared here, so a schema smaller than
  Kubernetes' would refuse valid manifests.

Shapes follow the real server's v3 output: references are ``allOf: [{$ref}]`` (OpenAPI 3.0
ignores siblings of a bare ``$ref``, and kubectl's ``PatchMetaFromOpenAPIV3`` resolves exactly
``allOf[0]``), extensions sit on the property, and top-level kinds carry
``x-kubernetes-group-version-kind`` as a list. Cloud-provider volume sources that cannot exist
on one host are described as free-form objects rather than spelled out.

The builders and the two tables live in :mod:`netlab.api.openapi_schemas_base`, which every
``openapi_schemas_*`` module builds on.
"""

from __future__ import annotations

from typing import Any

from netlab.api.openapi_schemas_base import (
    AS,
    FREE,
    I32,
    I64,
    IOS,
    KINDS,
    MAP,
    META,
    MICRO,
    OBJ,
    QMAP,
    SCHEMAS,
    SELECTOR,
    SMAP,
    TIME,
    A,
    B,
    M,
    Q,
    R,
    S,
    _def,
    _kind,
    full_name,
    obj,
)

__all__ = ["KINDS", "SCHEMAS", "full_name"]


# --- apimachinery -----------------------------------------------------------------------------

_def("Quantity", {"oneOf": [{"type": "string"}, {"type": "number"}]})
_def("IntOrString", {"oneOf": [{"type": "integer"}, {"type": "string"}],
                     "format": "int-or-string"})
_def("RawExtension", dict(FREE))
_def("meta.Time", {"type": "string", "format": "date-time"})
_def("meta.MicroTime", {"type": "string", "format": "date-time"})
# FieldsV1 is raw JSON to the Go decoder: anything goes inside it.
_def("meta.FieldsV1", dict(FREE))
_def("meta.Patch", {"type": "object"})
_def("meta.ObjectMeta", obj(
    annotations=SMAP, creationTimestamp=TIME, deletionGracePeriodSeconds=I64,
    deletionTimestamp=TIME, finalizers=A(S, strategy="merge", ltype="set"), generateName=S,
    generation=I64, labels=SMAP, managedFields=A("meta.ManagedFieldsEntry", ltype="atomic"),
    name=S, namespace=S,
    ownerReferences=M("meta.OwnerReference", "uid"), resourceVersion=S, selfLink=S, uid=S))
_def("meta.ManagedFieldsEntry", obj(
    apiVersion=S, fieldsType=S, fieldsV1=R("meta.FieldsV1"), manager=S, operation=S,
    subresource=S, time=TIME))
_def("meta.OwnerReference", obj(
    ("apiVersion", "kind", "name", "uid"), apiVersion=S, blockOwnerDeletion=B, controller=B,
    kind=S, name=S, uid=S))
_def("meta.ListMeta", OBJ({"continue": S, "remainingItemCount": I64, "resourceVersion": S,
                         "selfLink": S}))
_def("meta.LabelSelector", OBJ({"matchExpressions": A("meta.LabelSelectorRequirement",
                                                    ltype="atomic"),
                              "matchLabels": SMAP}, mtype="atomic"))
_def("meta.LabelSelectorRequirement", obj(("key", "operator"), key=S, operator=S, values=AS()))
_def("meta.Condition", obj(
    ("type", "status", "lastTransitionTime", "reason", "message"), lastTransitionTime=TIME,
    message=S, observedGeneration=I64, reason=S, status=S, type=S))
_def("meta.StatusCause", obj(field=S, message=S, reason=S))
_def("meta.StatusDetails", obj(
    causes=A("meta.StatusCause", ltype="atomic"), group=S, kind=S, name=S,
    retryAfterSeconds=I32, uid=S))
_def("meta.Preconditions", obj(resourceVersion=S, uid=S))
_def("meta.WatchEvent", obj(("type", "object"), object=R("RawExtension"), type=S))

# --- core/v1: pods ------------------------------------------------------------------------------

_def("core.LocalObjectReference", obj(name=S, mtype="atomic"))
_def("core.ObjectReference", OBJ({"apiVersion": S, "fieldPath": S, "kind": S, "name": S,
                                "namespace": S, "resourceVersion": S, "uid": S},
                               mtype="atomic"))
_def("core.ConfigMapKeySelector", obj(("key",), key=S, name=S, optional=B, mtype="atomic"))
_def("core.ObjectFieldSelector", obj(("fieldPath",), apiVersion=S, fieldPath=S))
_def("core.ResourceFieldSelector", obj(("resource",), containerName=S, divisor=Q, resource=S))
_def("core.EnvVarSource", obj(
    configMapKeyRef=R("core.ConfigMapKeySelector"), fieldRef=R("core.ObjectFieldSelector"),
    resourceFieldRef=R("core.ResourceFieldSelector"), secretKeyRef=R("core.SecretKeySelector")))
_def("core.SecretKeySelector", obj(("key",), key=S, name=S, optional=B, mtype="atomic"))
_def("core.EnvVar", obj(("name",), name=S, value=S, valueFrom=R("core.EnvVarSource")))
_def("core.EnvFromSource", obj(
    configMapRef=R("core.ConfigMapEnvSource"), prefix=S, secretRef=R("core.SecretEnvSource")))
_def("core.ConfigMapEnvSource", obj(name=S, optional=B))
_def("core.SecretEnvSource", obj(name=S, optional=B))
_def("core.ContainerPort", obj(
    ("containerPort",), containerPort=I32, hostIP=S, hostPort=I32, name=S, protocol=S))
_def("core.ResourceClaim", obj(("name",), name=S, request=S))
_def("core.ResourceRequirements", obj(
    claims=A("core.ResourceClaim", ltype="map", mkeys=["name"]), limits=QMAP, requests=QMAP))
_def("core.ContainerResizePolicy", obj(("resourceName", "restartPolicy"), resourceName=S,
                                     restartPolicy=S))
_def("core.ExecAction", obj(command=AS()))
_def("core.HTTPHeader", obj(("name", "value"), name=S, value=S))
_def("core.HTTPGetAction", obj(
    ("port",), host=S, httpHeaders=A("core.HTTPHeader", ltype="atomic"), path=S, port=IOS,
    scheme=S))
_def("core.TCPSocketAction", obj(("port",), host=S, port=IOS))
_def("core.GRPCAction", obj(("port",), port=I32, service=S))
_def("core.SleepAction", obj(("seconds",), seconds=I64))
_def("core.Probe", obj(
    exec=R("core.ExecAction"), failureThreshold=I32, grpc=R("core.GRPCAction"),
    httpGet=R("core.HTTPGetAction"), initialDelaySeconds=I32, periodSeconds=I32,
    successThreshold=I32, tcpSocket=R("core.TCPSocketAction"),
    terminationGracePeriodSeconds=I64, timeoutSeconds=I32))
_def("core.LifecycleHandler", obj(
    exec=R("core.ExecAction"), httpGet=R("core.HTTPGetAction"), sleep=R("core.SleepAction"),
    tcpSocket=R("core.TCPSocketAction")))
_def("core.Lifecycle", obj(postStart=R("core.LifecycleHandler"),
                         preStop=R("core.LifecycleHandler"), stopSignal=S))
_def("core.Capabilities", obj(add=AS(), drop=AS()))
_def("core.SELinuxOptions", obj(level=S, role=S, type=S, user=S))
_def("core.SeccompProfile", obj(("type",), localhostProfile=S, type=S))
_def("core.AppArmorProfile", obj(("type",), localhostProfile=S, type=S))
_def("core.WindowsSecurityContextOptions", obj(
    gmsaCredentialSpec=S, gmsaCredentialSpecName=S, hostProcess=B, runAsUserName=S))
# Properties shared by two kinds, passed on as keywords (so Any: obj() takes other keywords).
_SC_COMMON: dict[str, Any] = dict(
    appArmorProfile=R("core.AppArmorProfile"), runAsGroup=I64, runAsNonRoot=B, runAsUser=I64,
    seLinuxOptions=R("core.SELinuxOptions"), seccompProfile=R("core.SeccompProfile"),
    windowsOptions=R("core.WindowsSecurityContextOptions"))
_def("core.SecurityContext", obj(
    allowPrivilegeEscalation=B, capabilities=R("core.Capabilities"), privileged=B, procMount=S,
    readOnlyRootFilesystem=B, **_SC_COMMON))
_def("core.Sysctl", obj(("name", "value"), name=S, value=S))
_def("core.PodSecurityContext", obj(
    fsGroup=I64, fsGroupChangePolicy=S, seLinuxChangePolicy=S,
    supplementalGroups=A(I64, ltype="atomic"), supplementalGroupsPolicy=S,
    sysctls=A("core.Sysctl", ltype="atomic"), **_SC_COMMON))
_def("core.VolumeMount", obj(
    ("name", "mountPath"), mountPath=S, mountPropagation=S, name=S, readOnly=B,
    recursiveReadOnly=S, subPath=S, subPathExpr=S))
_def("core.VolumeDevice", obj(("name", "devicePath"), devicePath=S, name=S))
_CONTAINER: dict[str, Any] = dict(
    args=AS(), command=AS(), env=M("core.EnvVar", "name"),
    envFrom=A("core.EnvFromSource", ltype="atomic"), image=S, imagePullPolicy=S,
    lifecycle=R("core.Lifecycle"), livenessProbe=R("core.Probe"), name=S,
    ports=M("core.ContainerPort", "containerPort", ["containerPort", "protocol"]),
    readinessProbe=R("core.Probe"), resizePolicy=A("core.ContainerResizePolicy",
                                                   ltype="atomic"),
    resources=R("core.ResourceRequirements"), restartPolicy=S,
    securityContext=R("core.SecurityContext"), startupProbe=R("core.Probe"), stdin=B,
    stdinOnce=B, terminationMessagePath=S, terminationMessagePolicy=S, tty=B,
    volumeDevices=M("core.VolumeDevice", "devicePath"),
    volumeMounts=M("core.VolumeMount", "mountPath"), workingDir=S)
_def("core.Container", obj(("name",), **_CONTAINER))
_def("core.EphemeralContainer", obj(("name",), targetContainerName=S, **_CONTAINER))
_def("core.Toleration", obj(effect=S, key=S, operator=S, tolerationSeconds=I64, value=S))
_def("core.NodeSelectorRequirement", obj(("key", "operator"), key=S, operator=S, values=AS()))
_def("core.NodeSelectorTerm", OBJ({
    "matchExpressions": A("core.NodeSelectorRequirement", ltype="atomic"),
    "matchFields": A("core.NodeSelectorRequirement", ltype="atomic")}, mtype="atomic"))
_def("core.NodeSelector", OBJ({"nodeSelectorTerms": A("core.NodeSelectorTerm", ltype="atomic")},
                            ("nodeSelectorTerms",), mtype="atomic"))
_def("core.PreferredSchedulingTerm", obj(("weight", "preference"),
                                       preference=R("core.NodeSelectorTerm"), weight=I32))
_def("core.NodeAffinity", obj(
    preferredDuringSchedulingIgnoredDuringExecution=A("core.PreferredSchedulingTerm",
                                                      ltype="atomic"),
    requiredDuringSchedulingIgnoredDuringExecution=R("core.NodeSelector")))
_def("core.PodAffinityTerm", obj(
    ("topologyKey",), labelSelector=SELECTOR, matchLabelKeys=AS(), mismatchLabelKeys=AS(),
    namespaceSelector=SELECTOR, namespaces=AS(), topologyKey=S))
_def("core.WeightedPodAffinityTerm", obj(("weight", "podAffinityTerm"),
                                       podAffinityTerm=R("core.PodAffinityTerm"), weight=I32))
_def("core.PodAffinity", obj(
    preferredDuringSchedulingIgnoredDuringExecution=A("core.WeightedPodAffinityTerm",
                                                      ltype="atomic"),
    requiredDuringSchedulingIgnoredDuringExecution=A("core.PodAffinityTerm", ltype="atomic")))
SCHEMAS[full_name("core.PodAntiAffinity")] = SCHEMAS[full_name("core.PodAffinity")]
_def("core.Affinity", obj(nodeAffinity=R("core.NodeAffinity"), podAffinity=R("core.PodAffinity"),
                        podAntiAffinity=R("core.PodAntiAffinity")))
_def("core.TopologySpreadConstraint", obj(
    ("maxSkew", "topologyKey", "whenUnsatisfiable"), labelSelector=SELECTOR,
    matchLabelKeys=AS(), maxSkew=I32, minDomains=I32, nodeAffinityPolicy=S,
    nodeTaintsPolicy=S, topologyKey=S, whenUnsatisfiable=S))
_def("core.PodDNSConfigOption", obj(name=S, value=S))
_def("core.PodDNSConfig", obj(nameservers=AS(), options=A("core.PodDNSConfigOption",
                                                        ltype="atomic"), searches=AS()))
_def("core.HostAlias", obj(("ip",), hostnames=AS(), ip=S))
_def("core.PodReadinessGate", obj(("conditionType",), conditionType=S))
_def("core.PodResourceClaim", obj(("name",), name=S, resourceClaimName=S,
                                resourceClaimTemplateName=S))
_def("core.PodSchedulingGate", obj(("name",), name=S))
_def("core.PodOS", obj(("name",), name=S))
_def("core.PodSpec", obj(
    ("containers",),
    activeDeadlineSeconds=I64, affinity=R("core.Affinity"), automountServiceAccountToken=B,
    containers=M("core.Container", "name"), dnsConfig=R("core.PodDNSConfig"), dnsPolicy=S,
    enableServiceLinks=B, ephemeralContainers=M("core.EphemeralContainer", "name"),
    hostAliases=M("core.HostAlias", "ip"), hostIPC=B, hostNetwork=B, hostPID=B, hostUsers=B,
    hostname=S, imagePullSecrets=M("core.LocalObjectReference", "name"),
    initContainers=M("core.Container", "name"), nodeName=S, nodeSelector=MAP(S, mtype="atomic"),
    os=R("core.PodOS"), overhead=QMAP, preemptionPolicy=S, priority=I32, priorityClassName=S,
    readinessGates=A("core.PodReadinessGate", ltype="atomic"),
    resourceClaims=M("core.PodResourceClaim", "name", strategy="merge,retainKeys"),
    resources=R("core.ResourceRequirements"), restartPolicy=S, runtimeClassName=S,
    schedulerName=S, schedulingGates=M("core.PodSchedulingGate", "name"),
    securityContext=R("core.PodSecurityContext"), serviceAccount=S, serviceAccountName=S,
    setHostnameAsFQDN=B, shareProcessNamespace=B, subdomain=S,
    terminationGracePeriodSeconds=I64, tolerations=A("core.Toleration", ltype="atomic"),
    topologySpreadConstraints=M("core.TopologySpreadConstraint", "topologyKey",
                                ["topologyKey", "whenUnsatisfiable"]),
    volumes=M("core.Volume", "name", strategy="merge,retainKeys")))
_def("core.PodTemplateSpec", obj(metadata=META, spec=R("core.PodSpec")))

# Volumes: the sources a one-host lab can use are spelled out; the rest are free-form.
_def("core.KeyToPath", obj(("key", "path"), key=S, mode=I32, path=S))
_def("core.ConfigMapVolumeSource", obj(defaultMode=I32, items=A("core.KeyToPath",
                                                              ltype="atomic"),
                                     name=S, optional=B))
_def("core.SecretVolumeSource", obj(defaultMode=I32, items=A("core.KeyToPath", ltype="atomic"),
                                  optional=B, secretName=S))
_def("core.EmptyDirVolumeSource", obj(medium=S, sizeLimit=Q))
_def("core.HostPathVolumeSource", obj(("path",), path=S, type=S))
_def("core.DownwardAPIVolumeFile", obj(
    ("path",), fieldRef=R("core.ObjectFieldSelector"), mode=I32, path=S,
    resourceFieldRef=R("core.ResourceFieldSelector")))
_def("core.DownwardAPIVolumeSource", obj(defaultMode=I32,
                                       items=A("core.DownwardAPIVolumeFile", ltype="atomic")))
_def("core.DownwardAPIProjection", obj(items=A("core.DownwardAPIVolumeFile", ltype="atomic")))
_def("core.ConfigMapProjection", obj(items=A("core.KeyToPath", ltype="atomic"), name=S,
                                   optional=B))
_def("core.SecretProjection", obj(items=A("core.KeyToPath", ltype="atomic"), name=S, optional=B))
_def("core.ServiceAccountTokenProjection", obj(("path",), audience=S, expirationSeconds=I64,
                                             path=S))
_def("core.ClusterTrustBundleProjection", obj(("path",), labelSelector=SELECTOR, name=S,
                                            optional=B, path=S, signerName=S))
_def("core.VolumeProjection", obj(
    clusterTrustBundle=R("core.ClusterTrustBundleProjection"),
    configMap=R("core.ConfigMapProjection"), downwardAPI=R("core.DownwardAPIProjection"),
    secret=R("core.SecretProjection"),
    serviceAccountToken=R("core.ServiceAccountTokenProjection")))
_def("core.ProjectedVolumeSource", obj(defaultMode=I32, sources=A("core.VolumeProjection",
                                                                ltype="atomic")))
_def("core.PersistentVolumeClaimVolumeSource", obj(("claimName",), claimName=S, readOnly=B))
_def("core.NFSVolumeSource", obj(("server", "path"), path=S, readOnly=B, server=S))
_def("core.CSIVolumeSource", obj(("driver",), driver=S, fsType=S,
                               nodePublishSecretRef=R("core.LocalObjectReference"),
                               readOnly=B, volumeAttributes=SMAP))
_def("core.ImageVolumeSource", obj(pullPolicy=S, reference=S))
_def("core.TypedLocalObjectReference", obj(("kind", "name"), apiGroup=S, kind=S, name=S,
                                         mtype="atomic"))
_def("core.TypedObjectReference", obj(("kind", "name"), apiGroup=S, kind=S, name=S,
                                    namespace=S))
_def("core.VolumeResourceRequirements", obj(limits=QMAP, requests=QMAP))
_def("core.PersistentVolumeClaimSpec", obj(
    accessModes=AS(), dataSource=R("core.TypedLocalObjectReference"),
    dataSourceRef=R("core.TypedObjectReference"),
    resources=R("core.VolumeResourceRequirements"), selector=SELECTOR, storageClassName=S,
    volumeAttributesClassName=S, volumeMode=S, volumeName=S))
_def("core.PersistentVolumeClaimTemplate", obj(("spec",), metadata=META,
                                             spec=R("core.PersistentVolumeClaimSpec")))
_def("core.EphemeralVolumeSource", obj(
    volumeClaimTemplate=R("core.PersistentVolumeClaimTemplate")))
_CLOUD_VOLUMES = ("awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc",
                  "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "iscsi",
                  "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO",
                  "storageos", "vsphereVolume")
_CLOUD_VOLUME_PROPS: dict[str, Any] = {name: FREE for name in _CLOUD_VOLUMES}
_def("core.Volume", obj(
    ("name",), name=S, configMap=R("core.ConfigMapVolumeSource"), csi=R("core.CSIVolumeSource"),
    downwardAPI=R("core.DownwardAPIVolumeSource"), emptyDir=R("core.EmptyDirVolumeSource"),
    ephemeral=R("core.EphemeralVolumeSource"), hostPath=R("core.HostPathVolumeSource"),
    image=R("core.ImageVolumeSource"), nfs=R("core.NFSVolumeSource"),
    persistentVolumeClaim=R("core.PersistentVolumeClaimVolumeSource"),
    projected=R("core.ProjectedVolumeSource"), secret=R("core.SecretVolumeSource"),
    **_CLOUD_VOLUME_PROPS))

# Pod status.
_def("core.PodCondition", obj(
    ("type", "status"), lastProbeTime=TIME, lastTransitionTime=TIME, message=S,
    observedGeneration=I64, reason=S, status=S, type=S))
_def("core.ContainerStateRunning", obj(startedAt=TIME))
_def("core.ContainerStateTerminated", obj(
    ("exitCode",), containerID=S, exitCode=I32, finishedAt=TIME, message=S, reason=S,
    signal=I32, startedAt=TIME))
_def("core.ContainerStateWaiting", obj(message=S, reason=S))
_def("core.ContainerState", obj(running=R("core.ContainerStateRunning"),
                              terminated=R("core.ContainerStateTerminated"),
                              waiting=R("core.ContainerStateWaiting")))
_def("core.ResourceHealth", obj(("resourceID",), health=S, resourceID=S))
_def("core.ResourceStatus", obj(("name",), name=S,
                              resources=A("core.ResourceHealth", ltype="map",
                                          mkeys=["resourceID"])))
_def("core.LinuxContainerUser", obj(("uid", "gid"), gid=I64,
                                  supplementalGroups=A(I64, ltype="atomic"), uid=I64))
_def("core.ContainerUser", obj(linux=R("core.LinuxContainerUser")))
_def("core.VolumeMountStatus", obj(("name", "mountPath"), mountPath=S, name=S, readOnly=B,
                                 recursiveReadOnly=S))
_def("core.ContainerStatus", obj(
    ("name", "ready", "restartCount", "image", "imageID"), allocatedResources=QMAP,
    allocatedResourcesStatus=A("core.ResourceStatus", ltype="map", mkeys=["name"]),
    containerID=S, image=S, imageID=S, lastState=R("core.ContainerState"), name=S, ready=B,
    resources=R("core.ResourceRequirements"), restartCount=I32, started=B,
    state=R("core.ContainerState"), stopSignal=S, user=R("core.ContainerUser"),
    volumeMounts=M("core.VolumeMountStatus", "mountPath")))
_def("core.HostIP", obj(("ip",), ip=S))
_def("core.PodIP", obj(("ip",), ip=S))
_def("core.PodResourceClaimStatus", obj(("name",), name=S, resourceClaimName=S))
_def("core.PodStatus", obj(
    conditions=M("core.PodCondition", "type"),
    containerStatuses=A("core.ContainerStatus", ltype="atomic"),
    ephemeralContainerStatuses=A("core.ContainerStatus", ltype="atomic"), hostIP=S,
    hostIPs=M("core.HostIP", "ip", ltype="atomic"),
    initContainerStatuses=A("core.ContainerStatus", ltype="atomic"), message=S,
    nominatedNodeName=S, observedGeneration=I64, phase=S, podIP=S,
    podIPs=M("core.PodIP", "ip"), qosClass=S, reason=S, resize=S,
    resourceClaimStatuses=M("core.PodResourceClaimStatus", "name",
                            strategy="merge,retainKeys"),
    startTime=TIME))
_kind("core.Pod", "", "v1", {"spec": R("core.PodSpec"), "status": R("core.PodStatus")})
_def("core.Binding", OBJ({"apiVersion": S, "kind": S, "metadata": META,
                        "target": R("core.ObjectReference")}, ("target",)))
SCHEMAS[full_name("core.Binding")]["x-kubernetes-group-version-kind"] = [
    {"group": "", "kind": "Binding", "version": "v1"}]
KINDS["core.Binding"] = ("", "v1", "Binding")  # the pods/binding subresource's kind

# --- core/v1: services, endpoints, namespaces, nodes, events ------------------------------------

_def("core.ServicePort", obj(("port",), appProtocol=S, name=S, nodePort=I32, port=I32, protocol=S,
                           targetPort=IOS))
_def("core.ClientIPConfig", obj(timeoutSeconds=I32))
_def("core.SessionAffinityConfig", obj(clientIP=R("core.ClientIPConfig")))
_def("core.ServiceSpec", obj(
    allocateLoadBalancerNodePorts=B, clusterIP=S, clusterIPs=AS(), externalIPs=AS(),
    externalName=S, externalTrafficPolicy=S, healthCheckNodePort=I32,
    internalTrafficPolicy=S, ipFamilies=AS(), ipFamilyPolicy=S, loadBalancerClass=S,
    loadBalancerIP=S, loadBalancerSourceRanges=AS(),
    ports=M("core.ServicePort", "port", ["port", "protocol"]), publishNotReadyAddresses=B,
    selector=MAP(S, mtype="atomic"), sessionAffinity=S,
    sessionAffinityConfig=R("core.SessionAffinityConfig"), trafficDistribution=S, type=S))
_def("core.PortStatus", obj(("port", "protocol"), error=S, port=I32, protocol=S))
_def("core.LoadBalancerIngress", obj(hostname=S, ip=S, ipMode=S,
                                   ports=A("core.PortStatus", ltype="atomic")))
_def("core.LoadBalancerStatus", obj(ingress=A("core.LoadBalancerIngress", ltype="atomic")))
_def("core.ServiceStatus", obj(conditions=M("meta.Condition", "type"),
                             loadBalancer=R("core.LoadBalancerStatus")))
_kind("core.Service", "", "v1", {"spec": R("core.ServiceSpec"),
                                 "status": R("core.ServiceStatus")})

_def("core.EndpointAddress", obj(("ip",), hostname=S, ip=S, nodeName=S,
                               targetRef=R("core.ObjectReference"), mtype="atomic"))
_def("core.EndpointPort", obj(("port",), appProtocol=S, name=S, port=I32, protocol=S,
                            mtype="atomic"))
_def("core.EndpointSubset", obj(addresses=A("core.EndpointAddress", ltype="atomic"),
                              notReadyAddresses=A("core.EndpointAddress", ltype="atomic"),
                              ports=A("core.EndpointPort", ltype="atomic")))
_kind("core.Endpoints", "", "v1", {"subsets": A("core.EndpointSubset", ltype="atomic")})

_def("core.NamespaceSpec", obj(finalizers=AS()))
_def("core.NamespaceCondition", obj(("type", "status"), lastTransitionTime=TIME, message=S,
                                  reason=S, status=S, type=S))
_def("core.NamespaceStatus", obj(conditions=M("core.NamespaceCondition", "type"), phase=S))
_kind("core.Namespace", "", "v1", {"spec": R("core.NamespaceSpec"),
                                   "status": R("core.NamespaceStatus")})

_def("core.Taint", obj(("key", "effect"), effect=S, key=S, timeAdded=TIME, value=S))
_def("core.ConfigMapNodeConfigSource", obj(
    ("namespace", "name", "kubeletConfigKey"), kubeletConfigKey=S, name=S, namespace=S,
    resourceVersion=S, uid=S))
_def("core.NodeConfigSource", obj(configMap=R("core.ConfigMapNodeConfigSource")))
_def("core.NodeSpec", obj(
    configSource=R("core.NodeConfigSource"), externalID=S, podCIDR=S,
    podCIDRs=A(S, strategy="merge", ltype="set"), providerID=S,
    taints=A("core.Taint", ltype="atomic"), unschedulable=B))
_def("core.NodeAddress", obj(("type", "address"), address=S, type=S))
_def("core.NodeCondition", obj(("type", "status"), lastHeartbeatTime=TIME,
                             lastTransitionTime=TIME, message=S, reason=S, status=S, type=S))
_def("core.NodeConfigStatus", obj(active=R("core.NodeConfigSource"),
                                assigned=R("core.NodeConfigSource"), error=S,
                                lastKnownGood=R("core.NodeConfigSource")))
_def("core.DaemonEndpoint", OBJ({"Port": I32}, ("Port",)))
_def("core.NodeDaemonEndpoints", obj(kubeletEndpoint=R("core.DaemonEndpoint")))
_def("core.NodeFeatures", obj(supplementalGroupsPolicy=B))
_def("core.ContainerImage", obj(names=AS(), sizeBytes=I64))
_def("core.NodeSwapStatus", obj(capacity=I64))
_def("core.NodeSystemInfo", obj(
    ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
     "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion", "operatingSystem",
     "architecture"),
    architecture=S, bootID=S, containerRuntimeVersion=S, kernelVersion=S, kubeProxyVersion=S,
    kubeletVersion=S, machineID=S, operatingSystem=S, osImage=S, swap=R("core.NodeSwapStatus"),
    systemUUID=S))
_def("core.NodeRuntimeHandlerFeatures", obj(recursiveReadOnlyMounts=B, userNamespaces=B))
_def("core.NodeRuntimeHandler", obj(features=R("core.NodeRuntimeHandlerFeatures"), name=S))
_def("core.AttachedVolume", obj(("name", "devicePath"), devicePath=S, name=S))
_def("core.NodeStatus", obj(
    addresses=M("core.NodeAddress", "type"), allocatable=QMAP, capacity=QMAP,
    conditions=M("core.NodeCondition", "type"), config=R("core.NodeConfigStatus"),
    daemonEndpoints=R("core.NodeDaemonEndpoints"), features=R("core.NodeFeatures"),
    images=A("core.ContainerImage", ltype="atomic"), nodeInfo=R("core.NodeSystemInfo"),
    phase=S, runtimeHandlers=A("core.NodeRuntimeHandler", ltype="atomic"),
    volumesAttached=A("core.AttachedVolume", ltype="atomic"), volumesInUse=AS()))
_kind("core.Node", "", "v1", {"spec": R("core.NodeSpec"), "status": R("core.NodeStatus")})

_def("core.EventSeries", obj(count=I32, lastObservedTime=MICRO))
_def("core.EventSource", obj(component=S, host=S))
_kind("core.Event", "", "v1", {
    "action": S, "count": I32, "eventTime": MICRO, "firstTimestamp": TIME,
    "involvedObject": R("core.ObjectReference"), "lastTimestamp": TIME, "message": S,
    "reason": S, "related": R("core.ObjectReference"), "reportingComponent": S,
    "reportingInstance": S, "series": R("core.EventSeries"), "source": R("core.EventSource"),
    "type": S}, ("metadata", "involvedObject"))

# --- apps/v1 ------------------------------------------------------------------------------------

_def("apps.RollingUpdateDeployment", obj(maxSurge=IOS, maxUnavailable=IOS))
_def("apps.DeploymentStrategy", obj(rollingUpdate=R("apps.RollingUpdateDeployment"), type=S))
_def("apps.DeploymentSpec", obj(
    ("selector", "template"), minReadySeconds=I32, paused=B, progressDeadlineSeconds=I32,
    replicas=I32, revisionHistoryLimit=I32, selector=SELECTOR,
    strategy=R("apps.DeploymentStrategy", strategy="retainKeys"),
    template=R("core.PodTemplateSpec")))
_def("apps.DeploymentCondition", obj(("type", "status"), lastTransitionTime=TIME,
                                   lastUpdateTime=TIME, message=S, reason=S, status=S, type=S))
_def("apps.DeploymentStatus", obj(
    availableReplicas=I32, collisionCount=I32, conditions=M("apps.DeploymentCondition", "type"),
    observedGeneration=I64, readyReplicas=I32, replicas=I32, terminatingReplicas=I32,
    unavailableReplicas=I32, updatedReplicas=I32))
_kind("apps.Deployment", "apps", "v1", {"spec": R("apps.DeploymentSpec"),
                                        "status": R("apps.DeploymentStatus")})
_def("apps.ReplicaSetSpec", obj(("selector",), minReadySeconds=I32, replicas=I32,
                              selector=SELECTOR, template=R("core.PodTemplateSpec")))
_def("apps.ReplicaSetCondition", obj(("type", "status"), lastTransitionTime=TIME, message=S,
                                   reason=S, status=S, type=S))
_def("apps.ReplicaSetStatus", obj(
    ("replicas",), availableReplicas=I32, conditions=M("apps.ReplicaSetCondition", "type"),
    fullyLabeledReplicas=I32, observedGeneration=I64, readyReplicas=I32, replicas=I32,
    terminatingReplicas=I32))
_kind("apps.ReplicaSet", "apps", "v1", {"spec": R("apps.ReplicaSetSpec"),
                                        "status": R("apps.ReplicaSetStatus")})

# --- batch/v1 -----------------------------------------------------------------------------------

_def("batch.PodFailurePolicyOnExitCodesRequirement", obj(
    ("operator", "values"), containerName=S, operator=S, values=A(I32, ltype="set")))
_def("batch.PodFailurePolicyOnPodConditionsPattern", obj(("type",), status=S, type=S))
_def("batch.PodFailurePolicyRule", obj(
    ("action",), action=S, onExitCodes=R("batch.PodFailurePolicyOnExitCodesRequirement"),
    onPodConditions=A("batch.PodFailurePolicyOnPodConditionsPattern", ltype="atomic")))
_def("batch.PodFailurePolicy", obj(("rules",),
                                 rules=A("batch.PodFailurePolicyRule", ltype="atomic")))
_def("batch.SuccessPolicyRule", obj(succeededCount=I32, succeededIndexes=S))
_def("batch.SuccessPolicy", obj(("rules",), rules=A("batch.SuccessPolicyRule", ltype="atomic")))
_def("batch.JobSpec", obj(
    ("template",), activeDeadlineSeconds=I64, backoffLimit=I32, backoffLimitPerIndex=I32,
    completionMode=S, completions=I32, managedBy=S, manualSelector=B, maxFailedIndexes=I32,
    parallelism=I32, podFailurePolicy=R("batch.PodFailurePolicy"), podReplacementPolicy=S,
    selector=SELECTOR, successPolicy=R("batch.SuccessPolicy"), suspend=B,
    template=R("core.PodTemplateSpec"), ttlSecondsAfterFinished=I32))
_def("batch.JobCondition", obj(("type", "status"), lastProbeTime=TIME, lastTransitionTime=TIME,
                             message=S, reason=S, status=S, type=S))
_def("batch.UncountedTerminatedPods", obj(failed=AS(ltype="set"), succeeded=AS(ltype="set")))
_def("batch.JobStatus", obj(
    active=I32, completedIndexes=S, completionTime=TIME,
    conditions=M("batch.JobCondition", "type", ltype="atomic"), failed=I32, failedIndexes=S,
    ready=I32, startTime=TIME, succeeded=I32, terminating=I32,
    uncountedTerminatedPods=R("batch.UncountedTerminatedPods")))
_kind("batch.Job", "batch", "v1", {"spec": R("batch.JobSpec"), "status": R("batch.JobStatus")})

# --- autoscaling/v1 and v2 ------------------------------------------------------------------------

for _v in ("asv1", "asv2"):
    _def(f"{_v}.CrossVersionObjectReference", obj(("kind", "name"), apiVersion=S, kind=S,
                                                name=S, mtype="atomic"))
_def("asv1.ScaleSpec", obj(replicas=I32))
_def("asv1.ScaleStatus", obj(("replicas",), replicas=I32, selector=S))
_kind("asv1.Scale", "autoscaling", "v1", {"spec": R("asv1.ScaleSpec"),
                                          "status": R("asv1.ScaleStatus")})
SCHEMAS.pop(full_name("asv1.ScaleList"))  # Scale is a subresource kind: no list
_def("asv1.HorizontalPodAutoscalerSpec", obj(
    ("scaleTargetRef", "maxReplicas"), maxReplicas=I32, minReplicas=I32,
    scaleTargetRef=R("asv1.CrossVersionObjectReference"), targetCPUUtilizationPercentage=I32))
_def("asv1.HorizontalPodAutoscalerStatus", obj(
    ("currentReplicas", "desiredReplicas"), currentCPUUtilizationPercentage=I32,
    currentReplicas=I32, desiredReplicas=I32, lastScaleTime=TIME, observedGeneration=I64))
_kind("asv1.HorizontalPodAutoscaler", "autoscaling", "v1", {
    "spec": R("asv1.HorizontalPodAutoscalerSpec"),
    "status": R("asv1.HorizontalPodAutoscalerStatus")})

_def("asv2.MetricTarget", obj(("type",), averageUtilization=I32, averageValue=Q, type=S,
                            value=Q))
_def("asv2.MetricValueStatus", obj(averageUtilization=I32, averageValue=Q, value=Q))
_def("asv2.MetricIdentifier", obj(("name",), name=S, selector=SELECTOR))
_T, _C, _MI = R("asv2.MetricTarget"), R("asv2.MetricValueStatus"), R("asv2.MetricIdentifier")
_XREF = R("asv2.CrossVersionObjectReference")
_def("asv2.ContainerResourceMetricSource", obj(("name", "target", "container"), container=S,
                                             name=S, target=_T))
_def("asv2.ExternalMetricSource", obj(("metric", "target"), metric=_MI, target=_T))
_def("asv2.ObjectMetricSource", obj(("describedObject", "target", "metric"),
                                  describedObject=_XREF, metric=_MI, target=_T))
_def("asv2.PodsMetricSource", obj(("metric", "target"), metric=_MI, target=_T))
_def("asv2.ResourceMetricSource", obj(("name", "target"), name=S, target=_T))
_def("asv2.MetricSpec", obj(
    ("type",), containerResource=R("asv2.ContainerResourceMetricSource"),
    external=R("asv2.ExternalMetricSource"), object=R("asv2.ObjectMetricSource"),
    pods=R("asv2.PodsMetricSource"), resource=R("asv2.ResourceMetricSource"), type=S))
_def("asv2.ContainerResourceMetricStatus", obj(("name", "current", "container"), container=S,
                                             current=_C, name=S))
_def("asv2.ExternalMetricStatus", obj(("metric", "current"), current=_C, metric=_MI))
_def("asv2.ObjectMetricStatus", obj(("metric", "current", "describedObject"), current=_C,
                                  describedObject=_XREF, metric=_MI))
_def("asv2.PodsMetricStatus", obj(("metric", "current"), current=_C, metric=_MI))
_def("asv2.ResourceMetricStatus", obj(("name", "current"), current=_C, name=S))
_def("asv2.MetricStatus", obj(
    ("type",), containerResource=R("asv2.ContainerResourceMetricStatus"),
    external=R("asv2.ExternalMetricStatus"), object=R("asv2.ObjectMetricStatus"),
    pods=R("asv2.PodsMetricStatus"), resource=R("asv2.ResourceMetricStatus"), type=S))
_def("asv2.HPAScalingPolicy", obj(("type", "value", "periodSeconds"), periodSeconds=I32, type=S,
                                value=I32))
_def("asv2.HPAScalingRules", obj(policies=A("asv2.HPAScalingPolicy", ltype="atomic"),
                               selectPolicy=S, stabilizationWindowSeconds=I32, tolerance=Q))
_def("asv2.HorizontalPodAutoscalerBehavior", obj(scaleDown=R("asv2.HPAScalingRules"),
                                               scaleUp=R("asv2.HPAScalingRules")))
_def("asv2.HorizontalPodAutoscalerSpec", obj(
    ("scaleTargetRef", "maxReplicas"), behavior=R("asv2.HorizontalPodAutoscalerBehavior"),
    maxReplicas=I32, metrics=A("asv2.MetricSpec", ltype="atomic"), minReplicas=I32,
    scaleTargetRef=_XREF))
_def("asv2.HorizontalPodAutoscalerCondition", obj(("type", "status"), lastTransitionTime=TIME,
                                                message=S, reason=S, status=S, type=S))
_def("asv2.HorizontalPodAutoscalerStatus", obj(
    ("desiredReplicas",), conditions=M("asv2.HorizontalPodAutoscalerCondition", "type"),
    currentMetrics=A("asv2.MetricStatus", ltype="atomic"), currentReplicas=I32,
    desiredReplicas=I32, lastScaleTime=TIME, observedGeneration=I64))
_kind("asv2.HorizontalPodAutoscaler", "autoscaling", "v2", {
    "spec": R("asv2.HorizontalPodAutoscalerSpec"),
    "status": R("asv2.HorizontalPodAutoscalerStatus")})

# --- coordination.k8s.io/v1 -----------------------------------------------------------------------

_def("coord.LeaseSpec", obj(acquireTime=MICRO, holderIdentity=S, leaseDurationSeconds=I32,
                          leaseTransitions=I32, preferredHolder=S, renewTime=MICRO, strategy=S))
_kind("coord.Lease", "coordination.k8s.io", "v1", {"spec": R("coord.LeaseSpec")})

# Status and DeleteOptions are shared by every group; the documents add their GVK lists.
_def("meta.Status", obj(apiVersion=S, code=I32, details=R("meta.StatusDetails"), kind=S,
                      message=S, metadata=R("meta.ListMeta"), reason=S, status=S))
_def("meta.DeleteOptions", obj(
    apiVersion=S, dryRun=AS(), gracePeriodSeconds=I64,
    ignoreStoreReadErrorWithClusterBreakingPotential=B, kind=S, orphanDependents=B,
    preconditions=R("meta.Preconditions"), propagationPolicy=S))

# Kinds restated in their own modules register into the same tables when imported: last,
# so the tables list the components above first.
from netlab.api import (  # noqa: E402,F401
    openapi_schemas_apiextensions,
    openapi_schemas_apps,
    openapi_schemas_batch_policy,
    openapi_schemas_config,
    openapi_schemas_discovery,
    openapi_schemas_netrbac,
    openapi_schemas_scheduling,
    openapi_schemas_storage,
)
