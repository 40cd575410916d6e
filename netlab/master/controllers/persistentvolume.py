"""The PersistentVolume controller: binds claims to volumes, and provisions and deletes
the local-path provisioner's volumes.

kube-controller-manager's ``persistentvolume-binder`` and kind's local-path-provisioner
in one controller, as the lab has no other place to run a provisioner. Decisions are
``pvplan``'s; this module carries them out:

* bind (upstream's ``bind``): the volume's ``claimRef`` (with the claim's uid), the
  volume's phase Bound, the claim's ``volumeName`` with ``pv.kubernetes.io/bind-completed``
  and ``bound-by-controller``, then the claim's status (Bound, the volume's access modes
  and capacity), each write its own, so an interrupted bind is finished by the next sync;
* provision: for a claim of a ``rancher.io/local-path`` class with a node chosen by the
  scheduler, the directory ``<root>/pvc-<uid>_<ns>_<claim>`` (``localpath.make_dir``),
  then the volume (``persistentvolumes.provisioned_volume``); the claim is bound when the
  volume's event comes back. ``Provisioning``/``ProvisioningSucceeded`` events, as the
  external provisioner reports them;
* reclaim: a volume whose claim is gone is Released, and with policy Delete its directory
  (only one the provisioner made, under its root) and then the volume are deleted.

Keys on the queue are ``("claim", "ns/name")`` and ``("volume", name)``; every event of a
claim, a volume or a StorageClass enqueues the keys it may change.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from netlab.api import persistentvolumes as pvs
from netlab.api.views import annotations_of, meta_of, name_of, namespace_of, uid_of
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import localpath
from netlab.master.controllers import pvplan as plan
from netlab.master.controllers.base import Context, Controller, delete_object, update_status

CLAIMS, VOLUMES, CLASSES = "persistentvolumeclaims", "persistentvolumes", "storageclasses"


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.root = ctx.options.local_path_root
        self.events = ctx.recorder("persistentvolume-controller")
        self.provisioner_events = ctx.recorder(pvs.LOCAL_PATH_PROVISIONER)
        self.claims = self.watch(CLAIMS, self._on_claim)
        self.volumes = self.watch(VOLUMES, self._on_volume)
        self.classes = self.watch(CLASSES, self._on_class)
        # Claims whose provisioning is under way here: one volume per claim, even when
        # its events come in while the volume's create is in flight.
        self._provisioning: set[str] = set()

    # --- events ----------------------------------------------------------------------------

    def _on_claim(self, kind: str, claim: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        self.enqueue(("claim", object_key(claim)))
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            self.enqueue(("volume", str(volume)))
        if kind == "DELETED":
            for pv in self.volumes.items():
                if plan.claim_key_of_volume(pv) == object_key(claim):
                    self.enqueue(("volume", name_of(pv)))

    def _on_volume(self, kind: str, pv: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        self.enqueue(("volume", name_of(pv)))
        key = plan.claim_key_of_volume(pv)
        if key is not None:
            self.enqueue(("claim", key))
        elif kind != "DELETED" and (pv.get("status") or {}).get("phase") == plan.AVAILABLE \
                and ((old or {}).get("status") or {}).get("phase") != plan.AVAILABLE:
            # Only Available volumes bind (upstream skips the others to spare conflicts,
            # and finds them on its 15 s resync): a newly Available one may serve a claim.
            self._enqueue_unbound_claims()

    def _on_class(self, kind: str, sc: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        self._enqueue_unbound_claims()  # a class appeared or changed: claims may go on

    def _enqueue_unbound_claims(self) -> None:
        for claim in self.claims.items():
            if not (claim.get("spec") or {}).get("volumeName"):
                self.enqueue(("claim", object_key(claim)))

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: Any) -> None:
        what, name = key
        if what == "claim":
            await self._sync_claim(name)
        else:
            await self._sync_volume(name)

    def _class_map(self) -> dict[str, dict[str, Any]]:
        return {name_of(c): c for c in self.classes.items()}

    async def _sync_claim(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None:
            return
        step = plan.claim_step(claim, self.volumes.items(), self._class_map(),
                               can_provision=bool(self.root))
        if step.reason:
            (self.events.warning if step.warning else self.events.normal)(
                claim, step.reason, step.message)
        if step.action == plan.BIND and step.volume is not None:
            await self._bind(dict(step.volume), claim)
        elif step.action == plan.PROVISION and step.storage_class is not None:
            await self._provision(claim, dict(step.storage_class), step.node)
        elif step.action == plan.LOST:
            await update_status(self.client, claim, {**(claim.get("status") or {}),
                                                     "phase": "Lost"}, CLAIMS)

    async def _sync_volume(self, name: str) -> None:
        pv = self.volumes.get(name)
        if pv is None:
            return
        claim = await self._claim_of(pv)
        step = plan.volume_step(pv, claim, can_delete=self._provisioned_here(pv))
        for key in step.claims:
            self.enqueue(("claim", key))
        if step.phase:
            status = {**(pv.get("status") or {}), "phase": step.phase}
            if step.message:
                status["message"] = step.message
                self.events.warning(pv, "VolumeFailedDelete", step.message)
            pv = await update_status(self.client, pv, status, VOLUMES) or pv
        if step.delete:
            await self._delete(pv)

    async def _claim_of(self, pv: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The claim ``pv``'s claimRef names: from the cache, else (a volume made by a
        provisioner may come before its claim reaches this cache) from the API server,
        so a volume is never released for a claim this process has not seen yet."""
        key = plan.claim_key_of_volume(pv)
        if key is None:
            return None
        claim = self.claims.get(key)
        if claim is not None:
            return claim
        namespace, _, name = key.partition("/")
        try:
            return await self.client.get(CLAIMS, name, namespace)
        except APIError as err:
            if err.not_found:
                return None
            raise

    def _provisioned_here(self, pv: dict[str, Any]) -> bool:
        return bool(self.root) and annotations_of(pv).get(
            pvs.PROVISIONED_BY_ANNOTATION) == pvs.LOCAL_PATH_PROVISIONER and \
            pvs.is_local_path_of(pvs.volume_path(pv), self.root)

    # --- binding ---------------------------------------------------------------------------

    async def _bind(self, pv: dict[str, Any], claim: dict[str, Any]) -> None:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if not ref.get("uid"):
            pv = await self.client.patch(VOLUMES, name_of(pv), {
                "metadata": {"annotations": {pvs.BOUND_BY_CONTROLLER_ANNOTATION: "yes"},
                             "resourceVersion": meta_of(pv).get("resourceVersion")},
                "spec": {"claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                      "namespace": namespace_of(claim), "name": name_of(claim),
                                      "uid": uid_of(claim),
                                      "resourceVersion": meta_of(claim).get(
                                          "resourceVersion") or ""}}})
        if (pv.get("status") or {}).get("phase") != plan.BOUND:
            pv = await update_status(self.client, pv, {**(pv.get("status") or {}),
                                                       "phase": plan.BOUND}, VOLUMES) or pv
        annotations = {pvs.BIND_COMPLETED_ANNOTATION: "yes"}
        if not (claim.get("spec") or {}).get("volumeName"):
            annotations[pvs.BOUND_BY_CONTROLLER_ANNOTATION] = "yes"
        if (claim.get("spec") or {}).get("volumeName") != name_of(pv) or any(
                annotations_of(claim).get(k) != v for k, v in annotations.items()):
            claim = await self.client.patch(CLAIMS, name_of(claim), {
                "metadata": {"annotations": annotations,
                             "resourceVersion": meta_of(claim).get("resourceVersion")},
                "spec": {"volumeName": name_of(pv)}}, namespace_of(claim))
        spec = pv.get("spec") or {}
        status = {**(claim.get("status") or {}), "phase": plan.BOUND,
                  "accessModes": list(spec.get("accessModes") or []),
                  "capacity": dict(spec.get("capacity") or {})}
        if status != claim.get("status"):
            await update_status(self.client, claim, status, CLAIMS)
        self.log.info("bound claim %s to volume %s", object_key(claim), name_of(pv))

    # --- provisioning ----------------------------------------------------------------------

    async def _provision(self, claim: dict[str, Any], sc: dict[str, Any], node: str) -> None:
        key = object_key(claim)
        name = pvs.provisioned_volume_name(claim)
        if key in self._provisioning or self.volumes.get(name) is not None:
            return  # made already (or being made): its event binds the claim
        self._provisioning.add(key)
        try:
            provisioner = str(sc.get("provisioner") or "")
            wanted = {pvs.STORAGE_PROVISIONER_ANNOTATION: provisioner,
                      pvs.BETA_STORAGE_PROVISIONER_ANNOTATION: provisioner}
            if any(annotations_of(claim).get(k) != v for k, v in wanted.items()):
                # The binder's part (provisionClaim): it names the provisioner on the claim
                # and says it is waiting for it, as it does for any external provisioner.
                claim = await self.client.patch(CLAIMS, name_of(claim), {
                    "metadata": {"annotations": wanted}}, namespace_of(claim))
                self.events.normal(claim, "ExternalProvisioning",
                                   plan.external_provisioning_msg(provisioner))
            self.provisioner_events.normal(
                claim, "Provisioning",
                f'External provisioner is provisioning volume for claim "{key}"')
            pv = pvs.provisioned_volume(claim, sc, node, self.root)
            path = pvs.volume_path(pv)
            await asyncio.to_thread(localpath.make_dir, self.root, path)
            try:
                await self.client.create(pv)
            except APIError as err:
                if err.code != 409:
                    self.provisioner_events.warning(
                        claim, "ProvisioningFailed",
                        f'failed to provision volume with StorageClass "{name_of(sc)}": {err}')
                    raise
                return  # made by an earlier attempt of ours
            self.provisioner_events.normal(claim, "ProvisioningSucceeded",
                                           f'Successfully provisioned volume {name}')
            self.log.info("provisioned %s for claim %s on %s at %s", name, key, node, path)
        finally:
            self._provisioning.discard(key)

    # --- reclaiming ------------------------------------------------------------------------

    async def _delete(self, pv: dict[str, Any]) -> None:
        """Reclaim policy Delete: the provisioner's directory first, then the volume, as
        the external provisioner deletes the storage before the PV object."""
        path = pvs.volume_path(pv)
        try:
            await asyncio.to_thread(localpath.remove_dir, self.root, path)
        except (OSError, localpath.LocalPathError) as err:
            self.events.warning(pv, "VolumeFailedDelete", f"failed to delete {path}: {err}")
            raise
        if await delete_object(self.client, VOLUMES, pv):
            self.log.info("deleted volume %s and its directory %s", name_of(pv), path)
