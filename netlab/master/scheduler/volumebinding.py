"""VolumeBinding: where a pod's PersistentVolumeClaims let it run (pure).

kube-scheduler's VolumeBinding plugin, for what netlab's volumes need:

* PreFilter (:func:`pod_claims`): every claim the pod names must exist and not be
  being deleted (``persistentvolumeclaim "x" not found``, ``... is being deleted``), and
  an unbound claim of an Immediate class must be bound first (``pod has unbound
  immediate PersistentVolumeClaims``); each is the whole FitError (:func:`prefilter_error`,
  ``0/3 nodes are available: persistentvolumeclaim "x" not found.``), and the pod waits;
* Filter (:func:`filter_node`): a bound claim's volume must reach the node (its
  ``nodeAffinity``: ``node(s) had volume node affinity conflict``); an unbound claim of a
  WaitForFirstConsumer class needs a provisioner, or an Available volume the node reaches
  (``node(s) didn't find available persistent volumes to bind``);
* the claims to annotate with the chosen node (``PodClaims.delayed``): upstream's PreBind
  writes ``volume.kubernetes.io/selected-node`` on each and waits for the provisioner and
  binder. netlab's scheduler writes the annotation and binds the pod at once; the kubelet
  then waits for the claim to be Bound (a ``FailedMount``, retried), so no binding slot is
  held while a volume is made, and a scheduler restart has nothing half-done to resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netlab.api import persistentvolumes as pvs
from netlab.api.views import meta_of, namespace_of

Obj = Mapping[str, Any]

ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


@dataclass
class PodClaims:
    """What the pod's claims ask of a node. ``error``: why no node can do (PreFilter)."""

    bound: list[Obj] = field(default_factory=list)  # the volumes of bound claims
    delayed: list[Obj] = field(default_factory=list)  # unbound WaitForFirstConsumer claims
    error: str = ""

    @property
    def empty(self) -> bool:
        return not self.bound and not self.delayed and not self.error


def claim_names(pod: Obj) -> list[str]:
    """The claims the pod's volumes name, in order, each once."""
    return list(dict.fromkeys(claim for _, claim in pvs.pod_claim_volumes(pod)))


def pod_claims(pod: Obj, claims: Mapping[str, Obj], volumes: Mapping[str, Obj],
               classes: Mapping[str, Obj]) -> PodClaims:
    """The PreFilter: the pod's claims (``claims`` by ``ns/name``, ``volumes`` and
    ``classes`` by name) sorted into bound ones and delayed ones, or the reason none
    of the nodes can take the pod."""
    out = PodClaims()
    namespace = namespace_of(pod) or "default"
    for name in claim_names(pod):
        claim = claims.get(f"{namespace}/{name}")
        if claim is None:
            return PodClaims(error=f'persistentvolumeclaim "{name}" not found')
        if meta_of(claim).get("deletionTimestamp"):
            return PodClaims(error=f'persistentvolumeclaim "{name}" is being deleted')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            pv = volumes.get(str(volume_name))
            if pv is None:
                return PodClaims(error=f'persistentvolume "{volume_name}" not found')
            out.bound.append(pv)
        elif pvs.is_delayed_binding(claim, classes):
            out.delayed.append(claim)
        else:
            return PodClaims(error=ERR_UNBOUND_IMMEDIATE)
    return out


def prefilter_error(num_nodes: int, message: str) -> str:
    """FitError's message when a PreFilter plugin said no for every node."""
    return f"0/{num_nodes} nodes are available: {message}."


def filter_node(claims: PodClaims, node_name: str, node_labels: Mapping[str, str],
                volumes: Iterable[Obj], classes: Mapping[str, Obj]) -> list[str]:
    """The Filter: why the pod's claims keep it off this node (empty: they do not)."""
    for pv in claims.bound:
        if not pvs.node_affinity_matches(pv, node_name, node_labels):
            return [ERR_NODE_CONFLICT]
    reachable = None
    for claim in claims.delayed:
        sc = classes.get(pvs.storage_class_name(claim)) or {}
        if reachable is None:
            reachable = [v for v in volumes
                         if pvs.node_affinity_matches(v, node_name, node_labels)]
        if pvs.find_best_match(claim, reachable) is not None:
            continue
        if sc.get("provisioner") in (None, "", NO_PROVISIONER):
            return [ERR_BIND_CONFLICT]
    return []
