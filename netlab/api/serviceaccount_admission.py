"""The ServiceAccount admission plugin's token mount: what a new pod gets so that a
client inside it finds its credentials, as in Kubernetes.

Unless the pod (or, when the pod does not say, its ServiceAccount) sets
``automountServiceAccountToken: false``, every new pod gets a projected volume
``kube-api-access-<5 chars>`` with three sources, exactly as upstream builds it
(plugin/pkg/admission/serviceaccount):

- ``token``: a service-account token the kubelet requests for the pod
  (TokenRequest, bound to the pod, ``expirationSeconds: 3607``) and refreshes;
- ``ca.crt``: from the namespace's ``kube-root-ca.crt`` ConfigMap (the root CA
  publisher keeps one in every namespace);
- ``namespace``: the pod's namespace, through the downward API;

mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every
container and init container that has no mount there already. That directory is
what ``load_incluster_config`` of the official clients, ``kubectl`` inside a pod and
client-go's ``rest.InClusterConfig`` read.

Pure: the API server's registry calls :func:`mount_token` with the pod and its
ServiceAccount (``None`` while the account does not exist yet: the mount is still
added, and the kubelet's token request waits for the account, where upstream would
refuse the pod until the controller has made it).
"""

from __future__ import annotations

import random
from typing import Any, Optional

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION_SECONDS = 3607  # upstream's: an hour, and 7 s to tell it from a default
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# utilrand.String's alphabet: no vowels (no words), no confusable 0/1/3.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def token_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                                 "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt",
                                                             "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def wants_token(pod: dict[str, Any], account: Optional[dict[str, Any]]) -> bool:
    """The pod's own ``automountServiceAccountToken`` wins; then its account's."""
    spec = pod.get("spec") or {}
    if isinstance(spec.get("automountServiceAccountToken"), bool):
        return bool(spec["automountServiceAccountToken"])
    if account is not None and isinstance(account.get("automountServiceAccountToken"), bool):
        return bool(account["automountServiceAccountToken"])
    return True


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for key in ("initContainers", "containers")
            for c in (spec.get(key) or []) if isinstance(c, dict)]


def mount_token(pod: dict[str, Any], account: Optional[dict[str, Any]],
                rng: Optional[random.Random] = None) -> Optional[str]:
    """Add the token volume and its mounts to ``pod`` (a new pod, defaulted); return
    the volume's name, or None when nothing was added."""
    spec = pod.get("spec")
    if not isinstance(spec, dict) or not wants_token(pod, account):
        return None
    containers = [c for c in _containers(spec)
                  if not any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH
                             for m in (c.get("volumeMounts") or []))]
    if not containers:
        return None
    volumes = spec.get("volumes")
    if volumes is None:
        volumes = spec["volumes"] = []
    if not isinstance(volumes, list):
        return None  # validation names the problem
    taken = {v.get("name") for v in volumes if isinstance(v, dict)}
    pick = rng or random.SystemRandom()
    name = ""
    while not name or name in taken:
        name = VOLUME_PREFIX + "".join(pick.choice(_ALPHABET) for _ in range(5))
    volumes.append(token_volume(name))
    for container in containers:
        mounts = container.get("volumeMounts")
        if not isinstance(mounts, list):
            mounts = container["volumeMounts"] = []
        mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
    return name
