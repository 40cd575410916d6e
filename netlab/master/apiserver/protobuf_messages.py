"""The Kubernetes protobuf messages netlab reads, as data: field number -> JSON name and type.

:mod:`netlab.master.apiserver.protobuf` is the wire decoder; this is what it decodes. The
table below was printed by ``scripts/gen_protobuf_messages.py`` from the ``generated.proto``
files of k8s.io/api and k8s.io/apimachinery (field numbers and names are wire-format facts)
for every message reachable from :data:`KINDS`. One line per message (continued on indented
lines): ``Name: number jsonName type, ...`` where

* type is ``string``, ``int`` (int32/int64), ``bool``, ``double``, ``bytes`` (base64 in
  JSON), ``map`` (map<string,string>), ``bytesmap`` (map<string,bytes>), ``qmap``
  (map<string,Quantity>), ``quantity`` (resource.Quantity, a string in JSON),
  ``intorstr`` (intstr.IntOrString), ``time``/``microtime`` (metav1.Time/MicroTime,
  RFC 3339 in JSON), ``duration`` (metav1.Duration) or another message's name;
* a trailing ``*`` marks a repeated field, ``?`` a Go pointer: Go's marshaller writes a
  pointer only when it is set, so its presence is kept even when it is zero (``replicas:
  0``), while a plain scalar is always written and dropped when zero, as JSON's
  ``omitempty`` would;
* the name ``-`` marks a struct JSON inlines into its parent (``Volume``'s volume source,
  ``Probe``'s handler, ``IngressRule``'s value);
* a message named with its group and version (``autoscaling.v2.MetricSpec``) is that
  version's, where another group's message has the same name with other fields.

Status fields are left out (a client does not set them; unknown field numbers are skipped),
and so are ObjectMeta's timestamps, generation and managedFields, which the server sets.
"""

from __future__ import annotations

# The kinds whose request bodies are decoded.
KINDS = frozenset(str.split("""
ConfigMap Secret Service Namespace ServiceAccount Pod Deployment ReplicaSet DaemonSet
StatefulSet Job CronJob PodDisruptionBudget Ingress Eviction SelfSubjectAccessReview
SelfSubjectRulesReview SelfSubjectReview TokenRequest TokenReview Role ClusterRole
RoleBinding ClusterRoleBinding Scale HorizontalPodAutoscaler PriorityClass"""))

SCALARS = frozenset(("string", "int", "bool", "double", "bytes", "map", "bytesmap", "qmap",
                     "quantity", "intorstr", "time", "microtime", "duration"))

TABLE = """\
ObjectMeta: 1 name string, 2 generateName string, 3 namespace string, 5 uid string, 6
    resourceVersion string, 11 labels map, 12 annotations map, 13 ownerReferences
    OwnerReference*, 14 finalizers string*
ConfigMap: 1 metadata ObjectMeta, 4 immutable bool?, 2 data map, 3 binaryData bytesmap
Secret: 1 metadata ObjectMeta, 5 immutable bool?, 2 data bytesmap, 4 stringData map, 3 type
    string
Service: 1 metadata ObjectMeta, 2 spec ServiceSpec
Namespace: 1 metadata ObjectMeta, 2 spec NamespaceSpec
ServiceAccount: 1 metadata ObjectMeta, 2 secrets ObjectReference*, 3 imagePullSecrets
    LocalObjectReference*, 4 automountServiceAccountToken bool?
Pod: 1 metadata ObjectMeta, 2 spec PodSpec
Deployment: 1 metadata ObjectMeta, 2 spec DeploymentSpec
ReplicaSet: 1 metadata ObjectMeta, 2 spec ReplicaSetSpec
DaemonSet: 1 metadata ObjectMeta, 2 spec DaemonSetSpec
StatefulSet: 1 metadata ObjectMeta, 2 spec StatefulSetSpec
Job: 1 metadata ObjectMeta, 2 spec JobSpec
CronJob: 1 metadata ObjectMeta, 2 spec CronJobSpec
PodDisruptionBudget: 1 metadata ObjectMeta, 2 spec PodDisruptionBudgetSpec
Ingress: 1 metadata ObjectMeta, 2 spec IngressSpec
Eviction: 1 metadata ObjectMeta, 2 deleteOptions DeleteOptions
SelfSubjectAccessReview: 1 metadata ObjectMeta, 2 spec SelfSubjectAccessReviewSpec
SelfSubjectRulesReview: 1 metadata ObjectMeta, 2 spec SelfSubjectRulesReviewSpec
SelfSubjectReview: 1 metadata ObjectMeta
TokenRequest: 1 metadata ObjectMeta, 2 spec TokenRequestSpec
TokenReview: 1 metadata ObjectMeta, 2 spec TokenReviewSpec
Role: 1 metadata ObjectMeta, 2 rules PolicyRule*
ClusterRole: 1 metadata ObjectMeta, 2 rules PolicyRule*, 3 aggregationRule AggregationRule
RoleBinding: 1 metadata ObjectMeta, 2 subjects Subject*, 3 roleRef RoleRef
ClusterRoleBinding: 1 metadata ObjectMeta, 2 subjects Subject*, 3 roleRef RoleRef
Scale: 1 metadata ObjectMeta, 2 spec ScaleSpec
HorizontalPodAutoscaler: 1 metadata ObjectMeta, 2 spec HorizontalPodAutoscalerSpec
autoscaling.v2.HorizontalPodAutoscaler: 1 metadata ObjectMeta, 2 spec
    autoscaling.v2.HorizontalPodAutoscalerSpec
OwnerReference: 5 apiVersion string, 1 kind string, 3 name string, 4 uid string, 6
    controller bool?, 7 blockOwnerDeletion bool?
PriorityClass: 1 metadata ObjectMeta, 2 value int, 3 globalDefault bool, 4 description
    string, 5 preemptionPolicy string?
ServiceSpec: 1 ports ServicePort*, 2 selector map, 3 clusterIP string, 18 clusterIPs
    string*, 4 type string, 5 externalIPs string*, 7 sessionAffinity string, 8
    loadBalancerIP string, 9 loadBalancerSourceRanges string*, 10 externalName string, 11
    externalTrafficPolicy string, 12 healthCheckNodePort int, 13 publishNotReadyAddresses
    bool, 14 sessionAffinityConfig SessionAffinityConfig, 19 ipFamilies string*, 17
    ipFamilyPolicy string?, 20 allocateLoadBalancerNodePorts bool?, 21 loadBalancerClass
    string?, 22 internalTrafficPolicy string?, 23 trafficDistribution string?
NamespaceSpec: 1 finalizers string*
ObjectReference: 1 kind string, 2 namespace string, 3 name string, 4 uid string, 5
    apiVersion string, 6 resourceVersion string, 7 fieldPath string
LocalObjectReference: 1 name string
PodSpec: 1 volumes Volume*, 20 initContainers Container*, 2 containers Container*, 34
    ephemeralContainers EphemeralContainer*, 3 restartPolicy string, 4
    terminationGracePeriodSeconds int?, 5 activeDeadlineSeconds int?, 6 dnsPolicy string, 7
    nodeSelector map, 8 serviceAccountName string, 9 serviceAccount string, 21
    automountServiceAccountToken bool?, 10 nodeName string, 11 hostNetwork bool, 12 hostPID
    bool, 13 hostIPC bool, 27 shareProcessNamespace bool?, 14 securityContext
    PodSecurityContext, 15 imagePullSecrets LocalObjectReference*, 16 hostname string, 17
    subdomain string, 18 affinity Affinity, 19 schedulerName string, 22 tolerations
    Toleration*, 23 hostAliases HostAlias*, 24 priorityClassName string, 25 priority int?,
    26 dnsConfig PodDNSConfig, 28 readinessGates PodReadinessGate*, 29 runtimeClassName
    string?, 30 enableServiceLinks bool?, 31 preemptionPolicy string?, 32 overhead qmap, 33
    topologySpreadConstraints TopologySpreadConstraint*, 35 setHostnameAsFQDN bool?, 36 os
    PodOS, 37 hostUsers bool?, 38 schedulingGates PodSchedulingGate*, 39 resourceClaims
    PodResourceClaim*, 40 resources ResourceRequirements, 41 hostnameOverride string?, 43
    schedulingGroup PodSchedulingGroup, 44 evictionResponders EvictionResponder*
DeploymentSpec: 1 replicas int?, 2 selector LabelSelector, 3 template PodTemplateSpec, 4
    strategy DeploymentStrategy, 5 minReadySeconds int, 6 revisionHistoryLimit int?, 7
    paused bool, 9 progressDeadlineSeconds int?
ReplicaSetSpec: 1 replicas int?, 4 minReadySeconds int, 2 selector LabelSelector, 3 template
    PodTemplateSpec
DaemonSetSpec: 1 selector LabelSelector, 2 template PodTemplateSpec, 3 updateStrategy
    DaemonSetUpdateStrategy, 4 minReadySeconds int, 6 revisionHistoryLimit int?
StatefulSetSpec: 1 replicas int?, 2 selector LabelSelector, 3 template PodTemplateSpec, 4
    volumeClaimTemplates PersistentVolumeClaim*, 5 serviceName string, 6 podManagementPolicy
    string, 7 updateStrategy StatefulSetUpdateStrategy, 8 revisionHistoryLimit int?, 9
    minReadySeconds int, 10 persistentVolumeClaimRetentionPolicy
    StatefulSetPersistentVolumeClaimRetentionPolicy, 11 ordinals StatefulSetOrdinals
JobSpec: 1 parallelism int?, 2 completions int?, 3 activeDeadlineSeconds int?, 11
    podFailurePolicy PodFailurePolicy, 16 successPolicy SuccessPolicy, 7 backoffLimit int?,
    12 backoffLimitPerIndex int?, 13 maxFailedIndexes int?, 4 selector LabelSelector, 5
    manualSelector bool?, 6 template PodTemplateSpec, 8 ttlSecondsAfterFinished int?, 9
    completionMode string?, 10 suspend bool?, 14 podReplacementPolicy string?, 15 managedBy
    string?, 17 scheduling JobSchedulingConfiguration
CronJobSpec: 1 schedule string, 8 timeZone string?, 2 startingDeadlineSeconds int?, 3
    concurrencyPolicy string, 4 suspend bool?, 5 jobTemplate JobTemplateSpec, 6
    successfulJobsHistoryLimit int?, 7 failedJobsHistoryLimit int?
PodDisruptionBudgetSpec: 1 minAvailable intorstr, 2 selector LabelSelector, 3 maxUnavailable
    intorstr, 4 unhealthyPodEvictionPolicy string?
IngressSpec: 4 ingressClassName string?, 1 defaultBackend IngressBackend, 2 tls IngressTLS*,
    3 rules IngressRule*
DeleteOptions: 1 gracePeriodSeconds int?, 2 preconditions Preconditions, 3 orphanDependents
    bool?, 4 propagationPolicy string?, 5 dryRun string*, 6
    ignoreStoreReadErrorWithClusterBreakingPotential bool?
SelfSubjectAccessReviewSpec: 1 resourceAttributes ResourceAttributes, 2
    nonResourceAttributes NonResourceAttributes
SelfSubjectRulesReviewSpec: 1 namespace string
TokenRequestSpec: 1 audiences string*, 4 expirationSeconds int?, 3 boundObjectRef
    BoundObjectReference, 5 attestations AttestationValue
TokenReviewSpec: 1 token string, 2 audiences string*
PolicyRule: 1 verbs string*, 2 apiGroups string*, 3 resources string*, 4 resourceNames
    string*, 5 nonResourceURLs string*
AggregationRule: 1 clusterRoleSelectors LabelSelector*
Subject: 1 kind string, 2 apiGroup string, 3 name string, 4 namespace string
RoleRef: 1 apiGroup string, 2 kind string, 3 name string
ScaleSpec: 1 replicas int
HorizontalPodAutoscalerSpec: 1 scaleTargetRef CrossVersionObjectReference, 2 minReplicas
    int?, 3 maxReplicas int, 4 targetCPUUtilizationPercentage int?
autoscaling.v2.HorizontalPodAutoscalerSpec: 1 scaleTargetRef
    autoscaling.v2.CrossVersionObjectReference, 2 minReplicas int?, 3 maxReplicas int, 4
    metrics autoscaling.v2.MetricSpec*, 5 behavior
    autoscaling.v2.HorizontalPodAutoscalerBehavior
ServicePort: 1 name string, 2 protocol string, 6 appProtocol string?, 3 port int, 4
    targetPort intorstr, 5 nodePort int
SessionAffinityConfig: 1 clientIP ClientIPConfig
Volume: 1 name string, 2 - VolumeSource
Container: 1 name string, 2 image string, 3 command string*, 4 args string*, 5 workingDir
    string, 6 ports ContainerPort*, 19 envFrom EnvFromSource*, 7 env EnvVar*, 8 resources
    ResourceRequirements, 23 resizePolicy ContainerResizePolicy*, 24 restartPolicy string?,
    25 restartPolicyRules ContainerRestartRule*, 9 volumeMounts VolumeMount*, 21
    volumeDevices VolumeDevice*, 10 livenessProbe Probe, 11 readinessProbe Probe, 22
    startupProbe Probe, 12 lifecycle Lifecycle, 13 terminationMessagePath string, 20
    terminationMessagePolicy string, 14 imagePullPolicy string, 15 securityContext
    SecurityContext, 16 stdin bool, 17 stdinOnce bool, 18 tty bool
EphemeralContainer: 1 - EphemeralContainerCommon, 2 targetContainerName string
PodSecurityContext: 1 seLinuxOptions SELinuxOptions, 8 windowsOptions
    WindowsSecurityContextOptions, 2 runAsUser int?, 6 runAsGroup int?, 3 runAsNonRoot
    bool?, 4 supplementalGroups int*, 12 supplementalGroupsPolicy string?, 5 fsGroup int?, 7
    sysctls Sysctl*, 9 fsGroupChangePolicy string?, 10 seccompProfile SeccompProfile, 11
    appArmorProfile AppArmorProfile, 13 seLinuxChangePolicy string?
Affinity: 1 nodeAffinity NodeAffinity, 2 podAffinity PodAffinity, 3 podAntiAffinity
    PodAntiAffinity
Toleration: 1 key string, 2 operator string, 3 value string, 4 effect string, 5
    tolerationSeconds int?
HostAlias: 1 ip string, 2 hostnames string*
PodDNSConfig: 1 nameservers string*, 2 searches string*, 3 options PodDNSConfigOption*
PodReadinessGate: 1 conditionType string
TopologySpreadConstraint: 1 maxSkew int, 2 topologyKey string, 3 whenUnsatisfiable string, 4
    labelSelector LabelSelector, 5 minDomains int?, 6 nodeAffinityPolicy string?, 7
    nodeTaintsPolicy string?, 8 matchLabelKeys string*
PodOS: 1 name string
PodSchedulingGate: 1 name string
PodResourceClaim: 1 name string, 3 resourceClaimName string?, 4 resourceClaimTemplateName
    string?
ResourceRequirements: 1 limits qmap, 2 requests qmap, 3 claims ResourceClaim*
PodSchedulingGroup: 1 podGroupName string
EvictionResponder: 1 name string, 2 priority int
LabelSelector: 1 matchLabels map, 2 matchExpressions LabelSelectorRequirement*
PodTemplateSpec: 1 metadata ObjectMeta, 2 spec PodSpec
DeploymentStrategy: 1 type string, 2 rollingUpdate RollingUpdateDeployment
DaemonSetUpdateStrategy: 1 type string, 2 rollingUpdate RollingUpdateDaemonSet
PersistentVolumeClaim: 1 metadata ObjectMeta, 2 spec PersistentVolumeClaimSpec
StatefulSetUpdateStrategy: 1 type string, 2 rollingUpdate RollingUpdateStatefulSetStrategy
StatefulSetPersistentVolumeClaimRetentionPolicy: 1 whenDeleted string, 2 whenScaled string
StatefulSetOrdinals: 1 start int
PodFailurePolicy: 1 rules PodFailurePolicyRule*
SuccessPolicy: 1 rules SuccessPolicyRule*
JobSchedulingConfiguration:
JobTemplateSpec: 1 metadata ObjectMeta, 2 spec JobSpec
IngressBackend: 4 service IngressServiceBackend, 3 resource TypedLocalObjectReference
IngressTLS: 1 hosts string*, 2 secretName string
IngressRule: 1 host string, 2 - IngressRuleValue
Preconditions: 1 uid string?, 2 resourceVersion string?
ResourceAttributes: 1 namespace string, 2 verb string, 3 group string, 4 version string, 5
    resource string, 6 subresource string, 7 name string, 8 fieldSelector
    FieldSelectorAttributes, 9 labelSelector LabelSelectorAttributes
NonResourceAttributes: 1 path string, 2 verb string
BoundObjectReference: 1 kind string, 2 apiVersion string, 3 name string, 4 uid string
AttestationValue: 1 items string*
CrossVersionObjectReference: 1 kind string, 2 name string, 3 apiVersion string
autoscaling.v2.CrossVersionObjectReference: 1 kind string, 2 name string, 3 apiVersion
    string
autoscaling.v2.MetricSpec: 1 type string, 2 object autoscaling.v2.ObjectMetricSource, 3 pods
    autoscaling.v2.PodsMetricSource, 4 resource autoscaling.v2.ResourceMetricSource, 7
    containerResource autoscaling.v2.ContainerResourceMetricSource, 5 external
    autoscaling.v2.ExternalMetricSource
autoscaling.v2.HorizontalPodAutoscalerBehavior: 1 scaleUp autoscaling.v2.HPAScalingRules, 2
    scaleDown autoscaling.v2.HPAScalingRules
ClientIPConfig: 1 timeoutSeconds int?
VolumeSource: 1 hostPath HostPathVolumeSource, 2 emptyDir EmptyDirVolumeSource, 3
    gcePersistentDisk GCEPersistentDiskVolumeSource, 4 awsElasticBlockStore
    AWSElasticBlockStoreVolumeSource, 5 gitRepo GitRepoVolumeSource, 6 secret
    SecretVolumeSource, 7 nfs NFSVolumeSource, 8 iscsi ISCSIVolumeSource, 9 glusterfs
    GlusterfsVolumeSource, 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource, 11
    rbd RBDVolumeSource, 12 flexVolume FlexVolumeSource, 13 cinder CinderVolumeSource, 14
    cephfs CephFSVolumeSource, 15 flocker FlockerVolumeSource, 16 downwardAPI
    DownwardAPIVolumeSource, 17 fc FCVolumeSource, 18 azureFile AzureFileVolumeSource, 19
    configMap ConfigMapVolumeSource, 20 vsphereVolume VsphereVirtualDiskVolumeSource, 21
    quobyte QuobyteVolumeSource, 22 azureDisk AzureDiskVolumeSource, 23 photonPersistentDisk
    PhotonPersistentDiskVolumeSource, 26 projected ProjectedVolumeSource, 24 portworxVolume
    PortworxVolumeSource, 25 scaleIO ScaleIOVolumeSource, 27 storageos
    StorageOSVolumeSource, 28 csi CSIVolumeSource, 29 ephemeral EphemeralVolumeSource, 30
    image ImageVolumeSource
ContainerPort: 1 name string, 2 hostPort int, 3 containerPort int, 4 protocol string, 5
    hostIP string
EnvFromSource: 1 prefix string, 2 configMapRef ConfigMapEnvSource, 3 secretRef
    SecretEnvSource
EnvVar: 1 name string, 2 value string, 3 valueFrom EnvVarSource
ContainerResizePolicy: 1 resourceName string, 2 restartPolicy string
ContainerRestartRule: 1 action string, 2 exitCodes ContainerRestartRuleOnExitCodes
VolumeMount: 1 name string, 2 readOnly bool, 7 recursiveReadOnly string?, 3 mountPath
    string, 4 subPath string, 5 mountPropagation string?, 6 subPathExpr string, 8
    bindMountOptions string*
VolumeDevice: 1 name string, 2 devicePath string
Probe: 1 - ProbeHandler, 2 initialDelaySeconds int, 3 timeoutSeconds int, 4 periodSeconds
    int, 5 successThreshold int, 6 failureThreshold int, 7 terminationGracePeriodSeconds
    int?
Lifecycle: 1 postStart LifecycleHandler, 2 preStop LifecycleHandler, 3 stopSignal string
SecurityContext: 1 capabilities Capabilities, 2 privileged bool?, 3 seLinuxOptions
    SELinuxOptions, 10 windowsOptions WindowsSecurityContextOptions, 4 runAsUser int?, 8
    runAsGroup int?, 5 runAsNonRoot bool?, 6 readOnlyRootFilesystem bool?, 7
    allowPrivilegeEscalation bool?, 9 procMount string?, 11 seccompProfile SeccompProfile,
    12 appArmorProfile AppArmorProfile
EphemeralContainerCommon: 1 name string, 2 image string, 3 command string*, 4 args string*,
    5 workingDir string, 6 ports ContainerPort*, 19 envFrom EnvFromSource*, 7 env EnvVar*, 8
    resources ResourceRequirements, 23 resizePolicy ContainerResizePolicy*, 24 restartPolicy
    string?, 25 restartPolicyRules ContainerRestartRule*, 9 volumeMounts VolumeMount*, 21
    volumeDevices VolumeDevice*, 10 livenessProbe Probe, 11 readinessProbe Probe, 22
    startupProbe Probe, 12 lifecycle Lifecycle, 13 terminationMessagePath string, 20
    terminationMessagePolicy string, 14 imagePullPolicy string, 15 securityContext
    SecurityContext, 16 stdin bool, 17 stdinOnce bool, 18 tty bool
SELinuxOptions: 1 user string, 2 role string, 3 type string, 4 level string
WindowsSecurityContextOptions: 1 gmsaCredentialSpecName string?, 2 gmsaCredentialSpec
    string?, 3 runAsUserName string?, 4 hostProcess bool?
Sysctl: 1 name string, 2 value string
SeccompProfile: 1 type string, 2 localhostProfile string?
AppArmorProfile: 1 type string, 2 localhostProfile string?
NodeAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector, 2
    preferredDuringSchedulingIgnoredDuringExecution PreferredSchedulingTerm*
PodAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution PodAffinityTerm*, 2
    preferredDuringSchedulingIgnoredDuringExecution WeightedPodAffinityTerm*
PodAntiAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution PodAffinityTerm*, 2
    preferredDuringSchedulingIgnoredDuringExecution WeightedPodAffinityTerm*
PodDNSConfigOption: 1 name string, 2 value string?
ResourceClaim: 1 name string, 2 request string
LabelSelectorRequirement: 1 key string, 2 operator string, 3 values string*
RollingUpdateDeployment: 1 maxUnavailable intorstr, 2 maxSurge intorstr
RollingUpdateDaemonSet: 1 maxUnavailable intorstr, 2 maxSurge intorstr
PersistentVolumeClaimSpec: 1 accessModes string*, 4 selector LabelSelector, 2 resources
    VolumeResourceRequirements, 3 volumeName string, 5 storageClassName string?, 6
    volumeMode string?, 7 dataSource TypedLocalObjectReference, 8 dataSourceRef
    TypedObjectReference, 9 volumeAttributesClassName string?
RollingUpdateStatefulSetStrategy: 1 partition int?, 2 maxUnavailable intorstr
PodFailurePolicyRule: 1 action string, 2 onExitCodes PodFailurePolicyOnExitCodesRequirement,
    3 onPodConditions PodFailurePolicyOnPodConditionsPattern*
SuccessPolicyRule: 1 succeededIndexes string?, 2 succeededCount int?
IngressServiceBackend: 1 name string, 2 port ServiceBackendPort
TypedLocalObjectReference: 1 apiGroup string?, 2 kind string, 3 name string
IngressRuleValue: 1 http HTTPIngressRuleValue
FieldSelectorAttributes: 1 rawSelector string, 2 requirements FieldSelectorRequirement*
LabelSelectorAttributes: 1 rawSelector string, 2 requirements LabelSelectorRequirement*
autoscaling.v2.ObjectMetricSource: 1 describedObject
    autoscaling.v2.CrossVersionObjectReference, 2 target autoscaling.v2.MetricTarget, 3
    metric autoscaling.v2.MetricIdentifier
autoscaling.v2.PodsMetricSource: 1 metric autoscaling.v2.MetricIdentifier, 2 target
    autoscaling.v2.MetricTarget
autoscaling.v2.ResourceMetricSource: 1 name string, 2 target autoscaling.v2.MetricTarget
autoscaling.v2.ContainerResourceMetricSource: 1 name string, 2 target
    autoscaling.v2.MetricTarget, 3 container string
autoscaling.v2.ExternalMetricSource: 1 metric autoscaling.v2.MetricIdentifier, 2 target
    autoscaling.v2.MetricTarget
autoscaling.v2.HPAScalingRules: 3 stabilizationWindowSeconds int?, 1 selectPolicy string?, 2
    policies autoscaling.v2.HPAScalingPolicy*, 4 tolerance quantity
HostPathVolumeSource: 1 path string, 2 type string?
EmptyDirVolumeSource: 1 medium string, 2 sizeLimit quantity, 3 mode int
GCEPersistentDiskVolumeSource: 1 pdName string, 2 fsType string, 3 partition int, 4 readOnly
    bool
AWSElasticBlockStoreVolumeSource: 1 volumeID string, 2 fsType string, 3 partition int, 4
    readOnly bool
GitRepoVolumeSource: 1 repository string, 2 revision string, 3 directory string
SecretVolumeSource: 1 secretName string, 2 items KeyToPath*, 3 defaultMode int?, 4 optional
    bool?, 5 defaultUser int
NFSVolumeSource: 1 server string, 2 path string, 3 readOnly bool
ISCSIVolumeSource: 1 targetPortal string, 2 iqn string, 3 lun int, 4 iscsiInterface string,
    5 fsType string, 6 readOnly bool, 7 portals string*, 8 chapAuthDiscovery bool, 11
    chapAuthSession bool, 10 secretRef LocalObjectReference, 12 initiatorName string
GlusterfsVolumeSource: 1 endpoints string, 2 path string, 3 readOnly bool
PersistentVolumeClaimVolumeSource: 1 claimName string, 2 readOnly bool
RBDVolumeSource: 1 monitors string*, 2 image string, 3 fsType string, 4 pool string, 5 user
    string, 6 keyring string, 7 secretRef LocalObjectReference, 8 readOnly bool
FlexVolumeSource: 1 driver string, 2 fsType string, 3 secretRef LocalObjectReference, 4
    readOnly bool, 5 options map
CinderVolumeSource: 1 volumeID string, 2 fsType string, 3 readOnly bool, 4 secretRef
    LocalObjectReference
CephFSVolumeSource: 1 monitors string*, 2 path string, 3 user string, 4 secretFile string, 5
    secretRef LocalObjectReference, 6 readOnly bool
FlockerVolumeSource: 1 datasetName string, 2 datasetUUID string
DownwardAPIVolumeSource: 1 items DownwardAPIVolumeFile*, 2 defaultMode int?, 3 defaultUser
    int
FCVolumeSource: 1 targetWWNs string*, 2 lun int, 3 fsType string, 4 readOnly bool, 5 wwids
    string*
AzureFileVolumeSource: 1 secretName string, 2 shareName string, 3 readOnly bool
ConfigMapVolumeSource: 1 localObjectReference LocalObjectReference, 2 items KeyToPath*, 3
    defaultMode int?, 4 optional bool?, 5 defaultUser int
VsphereVirtualDiskVolumeSource: 1 volumePath string, 2 fsType string, 3 storagePolicyName
    string, 4 storagePolicyID string
QuobyteVolumeSource: 1 registry string, 2 volume string, 3 readOnly bool, 4 user string, 5
    group string, 6 tenant string
AzureDiskVolumeSource: 1 diskName string, 2 diskURI string, 3 cachingMode string, 4 fsType
    string, 5 readOnly bool, 6 kind string
PhotonPersistentDiskVolumeSource: 1 pdID string, 2 fsType string
ProjectedVolumeSource: 1 sources VolumeProjection*, 2 defaultMode int?, 3 defaultUser int
PortworxVolumeSource: 1 volumeID string, 2 fsType string, 3 readOnly bool
ScaleIOVolumeSource: 1 gateway string, 2 system string, 3 secretRef LocalObjectReference, 4
    sslEnabled bool, 5 protectionDomain string, 6 storagePool string, 7 storageMode string,
    8 volumeName string, 9 fsType string, 10 readOnly bool
StorageOSVolumeSource: 1 volumeName string, 2 volumeNamespace string, 3 fsType string, 4
    readOnly bool, 5 secretRef LocalObjectReference
CSIVolumeSource: 1 driver string, 2 readOnly bool?, 3 fsType string?, 4 volumeAttributes
    map, 5 nodePublishSecretRef LocalObjectReference
EphemeralVolumeSource: 1 volumeClaimTemplate PersistentVolumeClaimTemplate
ImageVolumeSource: 1 reference string, 2 pullPolicy string
ConfigMapEnvSource: 1 localObjectReference LocalObjectReference, 2 optional bool?
SecretEnvSource: 1 localObjectReference LocalObjectReference, 2 optional bool?
EnvVarSource: 1 fieldRef ObjectFieldSelector, 2 resourceFieldRef ResourceFieldSelector, 3
    configMapKeyRef ConfigMapKeySelector, 4 secretKeyRef SecretKeySelector, 5 fileKeyRef
    FileKeySelector
ContainerRestartRuleOnExitCodes: 1 operator string, 2 values int*
ProbeHandler: 1 exec ExecAction, 2 httpGet HTTPGetAction, 3 tcpSocket TCPSocketAction, 4
    grpc GRPCAction
LifecycleHandler: 1 exec ExecAction, 2 httpGet HTTPGetAction, 3 tcpSocket TCPSocketAction, 4
    sleep SleepAction
Capabilities: 1 add string*, 2 drop string*
NodeSelector: 1 nodeSelectorTerms NodeSelectorTerm*
PreferredSchedulingTerm: 1 weight int, 2 preference NodeSelectorTerm
PodAffinityTerm: 1 labelSelector LabelSelector, 2 namespaces string*, 3 topologyKey string,
    4 namespaceSelector LabelSelector, 5 matchLabelKeys string*, 6 mismatchLabelKeys string*
WeightedPodAffinityTerm: 1 weight int, 2 podAffinityTerm PodAffinityTerm
VolumeResourceRequirements: 1 limits qmap, 2 requests qmap
TypedObjectReference: 1 apiGroup string?, 2 kind string, 3 name string, 4 namespace string?
PodFailurePolicyOnExitCodesRequirement: 1 containerName string?, 2 operator string, 3 values
    int*
PodFailurePolicyOnPodConditionsPattern: 1 type string, 2 status string
ServiceBackendPort: 1 name string, 2 number int
HTTPIngressRuleValue: 1 paths HTTPIngressPath*
FieldSelectorRequirement: 1 key string, 2 operator string, 3 values string*
autoscaling.v2.MetricTarget: 1 type string, 2 value quantity, 3 averageValue quantity, 4
    averageUtilization int?
autoscaling.v2.MetricIdentifier: 1 name string, 2 selector LabelSelector
autoscaling.v2.HPAScalingPolicy: 1 type string, 2 value int, 3 periodSeconds int
KeyToPath: 1 key string, 2 path string, 3 mode int?, 4 user int
DownwardAPIVolumeFile: 1 path string, 2 fieldRef ObjectFieldSelector, 3 resourceFieldRef
    ResourceFieldSelector, 4 mode int?, 5 user int
VolumeProjection: 1 secret SecretProjection, 2 downwardAPI DownwardAPIProjection, 3
    configMap ConfigMapProjection, 4 serviceAccountToken ServiceAccountTokenProjection, 5
    clusterTrustBundle ClusterTrustBundleProjection, 6 podCertificate
    PodCertificateProjection
PersistentVolumeClaimTemplate: 1 metadata ObjectMeta, 2 spec PersistentVolumeClaimSpec
ObjectFieldSelector: 1 apiVersion string, 2 fieldPath string
ResourceFieldSelector: 1 containerName string, 2 resource string, 3 divisor quantity
ConfigMapKeySelector: 1 localObjectReference LocalObjectReference, 2 key string, 3 optional
    bool?
SecretKeySelector: 1 localObjectReference LocalObjectReference, 2 key string, 3 optional
    bool?
FileKeySelector: 1 volumeName string, 2 path string, 3 key string, 4 optional bool
ExecAction: 1 command string*
HTTPGetAction: 1 path string, 2 port intorstr, 3 host string, 4 scheme string, 5 httpHeaders
    HTTPHeader*, 6 protocol string
TCPSocketAction: 1 port intorstr, 2 host string
GRPCAction: 1 port int, 2 service string?, 3 mode string
SleepAction: 1 seconds int
NodeSelectorTerm: 1 matchExpressions NodeSelectorRequirement*, 2 matchFields
    NodeSelectorRequirement*
HTTPIngressPath: 1 path string, 3 pathType string?, 2 backend IngressBackend
SecretProjection: 1 localObjectReference LocalObjectReference, 2 items KeyToPath*, 4
    optional bool?
DownwardAPIProjection: 1 items DownwardAPIVolumeFile*
ConfigMapProjection: 1 localObjectReference LocalObjectReference, 2 items KeyToPath*, 4
    optional bool?
ServiceAccountTokenProjection: 1 audience string, 2 expirationSeconds int?, 3 path string, 4
    user int
ClusterTrustBundleProjection: 1 name string, 2 signerName string, 3 labelSelector
    LabelSelector, 5 optional bool, 4 path string, 6 user int
PodCertificateProjection: 1 signerName string, 2 keyType string, 3 maxExpirationSeconds int,
    4 credentialBundlePath string, 5 keyPath string, 6 certificateChainPath string, 7
    userAnnotations map, 8 user int
HTTPHeader: 1 name string, 2 value string
NodeSelectorRequirement: 1 key string, 2 operator string, 3 values string*
"""

# A message: field number -> (JSON name or "-" for inline, type, mark "" / "*" / "?").
Message = dict[int, tuple[str, str, str]]


def _parse(text: str) -> dict[str, Message]:
    messages: dict[str, Message] = {}
    for line in text.replace("\n    ", " ").splitlines():
        name, _, body = line.partition(":")
        fields: Message = {}
        for part in filter(str.strip, body.split(",")):
            number, json_name, kind = part.split()
            mark = kind[-1] if kind[-1] in "*?" else ""
            fields[int(number)] = (json_name, kind.rstrip("*?"), mark)
        messages[name.strip()] = fields
    for name, fields in messages.items():
        for field_number, (_, kind, _) in fields.items():
            if kind not in SCALARS and kind not in messages:
                raise ValueError(f"{name} field {field_number}: unknown type {kind}")
    return messages


MESSAGES: dict[str, Message] = _parse(TABLE)
