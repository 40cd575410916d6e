"""``POST pods/<name>/eviction``: delete a pod only if no PodDisruptionBudget forbids it.

This is kube-apiserver's eviction REST (pkg/registry/core/pod/storage/eviction.go), which
``kubectl drain`` drives:

* pods that are finished, still Pending or already being deleted go at once;
* otherwise the one PDB covering the pod decides (more than one is a 500, as upstream);
  a not-Ready pod goes at once under ``unhealthyPodEvictionPolicy: AlwaysAllow``, or under
  the default ``IfHealthyBudget`` while the budget is met;
* a budget with ``disruptionsAllowed`` 0 (or not yet processed for its generation) answers
  429 TooManyRequests with upstream's message and a ``DisruptionBudget`` cause;
* otherwise the PDB's status is decremented and the pod recorded in ``disruptedPods``,
  atomically against the stored version (a compare-and-swap through the registry), and the
  pod is deleted gracefully with the eviction's DeleteOptions.

The disruption controller later recomputes the status from the pods it sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from aiohttp import web

from netlab.api import disruption, errors, objects, resources, views
from netlab.api.views import dict_at, pod_status
from netlab.master.apiserver import fieldvalidation, render
from netlab.master.apiserver.deletion import DeleteOptions
from netlab.master.apiserver.listing import Filter, list_objects
from netlab.master.apiserver.request import RequestInfo, content_type, dry_run

if TYPE_CHECKING:  # handlers imports this module
    from netlab.master.apiserver.handlers import Context

PODS = resources.builtin("Pod")
PDBS = resources.builtin("PodDisruptionBudget")
EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def too_many_requests(cause: str) -> errors.APIError:
    """``NewTooManyRequests`` with a DisruptionBudget cause (no Retry-After: 0 seconds)."""
    return errors.APIError(429, "TooManyRequests", VIOLATION, {
        "causes": [{"reason": "DisruptionBudget", "message": cause}]})


def _delete_options(eviction: dict, query: Any) -> DeleteOptions:
    raw = eviction.get("deleteOptions")
    opts = DeleteOptions(dry_run=dry_run(query, "CreateOptions"))
    if raw is None:
        return opts
    if not isinstance(raw, dict):
        raise errors.bad_request("deleteOptions must be an object")
    opts.merge_body(raw)
    return opts


def _can_ignore_pdb(pod: dict) -> bool:
    phase = pod_status(pod).get("phase") if isinstance(pod.get("status"),
                                                                  dict) else None
    return phase in ("Succeeded", "Failed", "Pending") or \
        bool(objects.meta(pod).get("deletionTimestamp"))


async def _covering_pdbs(ctx: Context, pod: dict) -> list[dict]:
    assert PDBS is not None
    listed = await list_objects(ctx.store, PDBS, views.namespace_of(pod), {},
                                Filter(PDBS, "v1"))
    pdbs = [render.as_dict(kv) for kv in listed.items]
    return [p for p in pdbs if disruption.selects(p, pod)]


def _decrement(pdb_name: str, pod_name: str, dry: bool) -> Callable[[dict], dict]:
    """The CAS mutation of the PDB (``checkAndDecrement``); raises the refusals."""
    def mutate(pdb: dict) -> dict:
        status = dict_at(pdb, "status")
        generation = objects.meta(pdb).get("generation") or 0
        if (status.get("observedGeneration") or 0) < generation:
            raise too_many_requests(f"The disruption budget {pdb_name} is still being "
                                    f"processed by the server.")
        allowed = status.get("disruptionsAllowed") or 0
        if allowed < 0:
            raise errors.forbidden("poddisruptionbudget", pdb_name,
                                   "pdb disruptions allowed is negative", group="policy")
        disrupted = dict_at(status, "disruptedPods")
        if len(disrupted) > disruption.MAX_DISRUPTED_PODS:
            raise errors.forbidden("poddisruptionbudget", pdb_name,
                                   "DisruptedPods map too big - too many evictions not "
                                   "confirmed by PDB controller", group="policy")
        if allowed == 0:
            raise too_many_requests(
                f"The disruption budget {pdb_name} needs {status.get('desiredHealthy') or 0} "
                f"healthy pods and has {status.get('currentHealthy') or 0} currently")
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            disruption.set_allowed_condition(status, objects.now())
        if not dry:
            status["disruptedPods"] = {**disrupted, pod_name: objects.timestamp()}
        pdb["status"] = status
        return pdb
    return mutate


async def evict(request: web.Request, ctx: Context, info: RequestInfo) -> web.Response:
    """Handle one eviction; answers 201 with a Success Status once the pod is deleting."""
    assert PODS is not None and PDBS is not None
    raw = await request.read()
    if len(raw) > ctx.config.max_body:
        raise errors.request_entity_too_large(ctx.config.max_body)
    eviction, _ = fieldvalidation.decode(
        raw, content_type(request.headers.get("Content-Type")), "Eviction", "policy/v1",
        fieldvalidation.mode(request.query))
    api_version = eviction.get("apiVersion")
    if api_version not in (None, "") and api_version not in EVICTION_VERSIONS:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not "
                                 f"match the expected API version (policy/v1)")
    if eviction.get("kind") not in (None, "", "Eviction"):
        raise errors.bad_request(f'the kind in the data ("{eviction.get("kind")}") does not '
                                 f'match the expected kind ("Eviction")')
    name = info.name or ""
    emeta = dict_at(eviction, "metadata")
    if emeta.get("name") not in (None, "", name):
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts = _delete_options(eviction, request.query)
    pod = await ctx.registry.get(PODS, info.namespace, name)
    if not _can_ignore_pdb(pod):
        pdbs = await _covering_pdbs(ctx, pod)
        if len(pdbs) > 1:
            raise errors.internal_error("This pod has more than one PodDisruptionBudget, "
                                        "which the eviction subresource does not support.")
        if pdbs:
            await _check_budget(ctx, pdbs[0], pod, opts.dry_run)
    await ctx.deleter.delete(PODS, info.namespace, name, opts)
    return render.status_response(errors.success_status(code=201))


async def _check_budget(ctx: Context, pdb: dict, pod: dict, dry: bool) -> None:
    spec = dict_at(pdb, "spec")
    status = dict_at(pdb, "status")
    if not disruption.pod_ready(pod):
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return
        desired: Optional[int] = status.get("desiredHealthy")
        if isinstance(desired, int) and desired > 0 and \
                (status.get("currentHealthy") or 0) >= desired:
            return  # IfHealthyBudget: an unhealthy pod may go while the budget holds
    pdb_name = views.name_of(pdb)
    await ctx.registry.update(PDBS, views.namespace_of(pdb), pdb_name,
                              _decrement(pdb_name, views.name_of(pod), dry),
                              subresource="status", dry_run=dry)
