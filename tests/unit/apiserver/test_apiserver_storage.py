"""PersistentVolumes, PersistentVolumeClaims and StorageClasses through the API server:
the built-in ``standard`` class, DefaultStorageClass admission, defaults, upstream's
validation messages, the claim's immutability, and the columns kubectl prints."""

from __future__ import annotations

CLAIMS = "/api/v1/namespaces/default/persistentvolumeclaims"
VOLUMES = "/api/v1/persistentvolumes"
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def claim(name: str, **spec: object) -> dict:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": body}


def volume(name: str, **spec: object) -> dict:
    body = {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/srv/data"}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": body}


def _causes(err: dict) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in err["details"]["causes"]]


def _columns(table: dict) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]


async def test_every_cluster_has_the_default_standard_class(api, memory_store):
    async with api(memory_store) as c:
        sc = await c.ok("GET", f"{CLASSES}/standard")
        assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == (
            "rancher.io/local-path", "Delete", "WaitForFirstConsumer")
        assert sc["metadata"]["annotations"] == {
            "storageclass.kubernetes.io/is-default-class": "true"}
        table = await c.ok("GET", CLASSES, headers={"Accept": TABLE})
        assert _columns(table) == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                   "AllowVolumeExpansion", "Age"]
        assert table["rows"][0]["cells"][:5] == [
            "standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer",
            False]
        status, err = await c.patch(f"{CLASSES}/standard", {"provisioner": "other.io/x"})
        assert status == 422 and _causes(err) == [
            ("provisioner", "Forbidden: updates to provisioner are forbidden.")]


async def test_a_claim_gets_the_default_class_and_starts_pending(api, memory_store):
    async with api(memory_store) as c:
        made = await c.ok("POST", CLAIMS, claim("data"))
        assert made["spec"]["storageClassName"] == "standard"
        assert made["spec"]["volumeMode"] == "Filesystem"
        assert made["status"] == {"phase": "Pending"}
        assert made["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        # "" asks for no class at all: DefaultStorageClass leaves it alone.
        static = await c.ok("POST", CLAIMS, claim("static", storageClassName=""))
        assert static["spec"]["storageClassName"] == ""
        table = await c.ok("GET", CLAIMS, headers={"Accept": TABLE})
        assert _columns(table) == ["Name", "Status", "Volume", "Capacity", "Access Modes",
                                   "StorageClass", "VolumeAttributesClass", "Age"]
        assert [r["cells"][:7] for r in table["rows"]] == [
            ["data", "Pending", "", "", "", "standard", "<unset>"],
            ["static", "Pending", "", "", "", "", "<unset>"]]


async def test_claim_validation_as_upstream(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(CLAIMS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                            "metadata": {"name": "bad"}, "spec": {}})
        assert status == 422
        assert _causes(err) == [
            ("spec.accessModes", "Required value: at least 1 access mode is required"),
            ("spec.resources[storage]", "Required value")]
        status, err = await c.post(CLAIMS, claim("zero", resources={"requests": {
            "storage": "0"}}, accessModes=["ReadWriteMany", "Sometimes"]))
        assert _causes(err) == [
            ("spec.accessModes", 'Unsupported value: "Sometimes": supported values: '
             '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'),
            ("spec.resources[storage]", 'Invalid value: "0": must be greater than zero')]


async def test_claim_spec_is_immutable_but_a_bound_claim_may_grow(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", CLAIMS, claim("data"))
        status, err = await c.patch(f"{CLAIMS}/data", {"spec": {"accessModes": [
            "ReadWriteMany"]}})
        assert status == 422 and _causes(err) == [
            ("spec", "Forbidden: spec is immutable after creation except resources.requests "
                     "and volumeAttributesClassName for bound claims")]
        status, _ = await c.patch(f"{CLAIMS}/data", {"spec": {"resources": {"requests": {
            "storage": "2Gi"}}}})
        assert status == 422  # not bound yet
        await c.ok("PATCH", f"{CLAIMS}/data/status", {"status": {"phase": "Bound"}})
        # The binder sets volumeName once; then a bound claim may ask for more, not less.
        await c.ok("PATCH", f"{CLAIMS}/data", {"spec": {"volumeName": "pv-1"}})
        grown = await c.ok("PATCH", f"{CLAIMS}/data", {"spec": {"resources": {"requests": {
            "storage": "2Gi"}}}})
        assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
        status, err = await c.patch(f"{CLAIMS}/data", {"spec": {"resources": {"requests": {
            "storage": "1Gi"}}}})
        assert ("spec.resources.requests.storage",
                "Forbidden: field can not be less than previous value") in _causes(err)
        status, err = await c.patch(f"{CLAIMS}/data", {"spec": {"volumeName": "pv-2"}})
        assert status == 422


async def test_volume_defaults_validation_and_columns(api, memory_store):
    async with api(memory_store) as c:
        made = await c.ok("POST", VOLUMES, volume("pv-1", claimRef={
            "namespace": "default", "name": "data"}))
        assert (made["spec"]["persistentVolumeReclaimPolicy"], made["spec"]["volumeMode"],
                made["status"]) == ("Retain", "Filesystem", {"phase": "Pending"})
        table = await c.ok("GET", VOLUMES, headers={"Accept": TABLE})
        assert _columns(table) == ["Name", "Capacity", "Access Modes", "Reclaim Policy",
                                   "Status", "Claim", "StorageClass", "VolumeAttributesClass",
                                   "Reason", "Age"]
        assert table["rows"][0]["cells"][:9] == ["pv-1", "5Gi", "RWO", "Retain", "Pending",
                                                 "default/data", "", "<unset>", ""]
        bad = volume("pv-2", capacity=None, accessModes=None, hostPath=None)
        status, err = await c.post(VOLUMES, bad)
        assert status == 422 and _causes(err) == [
            ("spec.capacity", "Required value"),
            ("spec.accessModes", "Required value: at least 1 access mode is required"),
            ("spec", "Required value: must specify a volume type")]
        two = volume("pv-3", nfs={"server": "x", "path": "/"})
        status, err = await c.post(VOLUMES, two)
        assert _causes(err) == [("spec.nfs", "Forbidden: may not specify more than 1 volume "
                                             "type")]
        local = volume("pv-4", hostPath=None, local={"path": "/srv"})
        status, err = await c.post(VOLUMES, local)
        assert _causes(err) == [("metadata.annotations",
                                 "Required value: Local volume requires node affinity")]
        status, err = await c.patch(f"{VOLUMES}/pv-1", {"spec": {"hostPath": {"path": "/x"}}})
        assert status == 422 and _causes(err) == [
            ("spec.persistentvolumesource",
             "Forbidden: spec.persistentvolumesource is immutable after creation")]
