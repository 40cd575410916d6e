"""The HorizontalPodAutoscaler controller (autoscaling/v2): replicas follow measured usage.

Every ``--hpa-sync-period`` each HPA is evaluated, as Kubernetes' horizontal
controller does: read the target's ``/scale`` (its replicas and pod
selector), take the targeted pods' usage from the kubelets' published samples
(``metrics.py``), and compute a replica count per metric with
``hpacalc`` — the Kubernetes formula, tolerance, and handling of unready or
silent pods. The highest proposal wins; it is then stabilized (a scale-down
waits out ``spec.behavior.scaleDown.stabilizationWindowSeconds``, by default
the lab's ``--hpa-downscale-stabilization``), limited by the scaling
policies and clamped to ``minReplicas``/``maxReplicas``, and written to
``/scale``. The status carries what ``kubectl get hpa`` shows (TARGETS is
``status.currentMetrics``) and the AbleToScale / ScalingActive /
ScalingLimited conditions ``kubectl describe hpa`` explains.

Supported metrics: ``Resource`` cpu and memory, as ``Utilization`` (of the
pods' requests) or ``AverageValue``. Other metric types are reported as
unsupported in the ScalingActive condition.

Recommendation history and scale events live in memory, as in Kubernetes: a
restarted controller manager starts a fresh stabilization window.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from netlab.api.objects import deep_copy, now
from netlab.api.selectors import SelectorError, parse_label_selector
from netlab.api.timefmt import format_time, parse_time
from netlab.api.views import labels_of, meta_of, pod_spec, pod_status, spec_of, status_of
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import hpacalc, podutil
from netlab.master.controllers.base import Context, Controller, update_status
from netlab.master.controllers.metrics import UsageIndex
from netlab.units import QuantityError, cpu_millis, memory_bytes

RESOURCE = "horizontalpodautoscalers"
SCALABLE = {"Deployment": "deployments", "ReplicaSet": "replicasets",
            "ReplicationController": "replicationcontrollers"}


def _condition(status: dict[str, Any], ctype: str, value: str, reason: str, message: str,
               stamp: str) -> None:
    conds = status.setdefault("conditions", [])
    for cond in conds:
        if cond.get("type") == ctype:
            if cond.get("status") != value:
                cond["lastTransitionTime"] = stamp
            cond.update(status=value, reason=reason, message=message)
            return
    conds.append({"type": ctype, "status": value, "lastTransitionTime": stamp,
                  "reason": reason, "message": message})


class HPAController(Controller):
    name = "hpa"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.usage = UsageIndex(ctx.informer("nodes"))
        self.options = ctx.options
        self.recommendations: dict[str, list[tuple[float, int]]] = {}
        self.up_events: dict[str, list[tuple[float, int]]] = {}
        self.down_events: dict[str, list[tuple[float, int]]] = {}
        self.events = ctx.recorder("horizontal-pod-autoscaler")
        self.hpas = self.watch(RESOURCE, self._on_hpa)

    def _on_hpa(self, kind: str, hpa: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = object_key(hpa)
        if kind == "DELETED":
            for memory in (self.recommendations, self.up_events, self.down_events):
                memory.pop(key, None)
            return
        # Our own status writes must not re-trigger an evaluation: only new specs do.
        if kind == "ADDED" or old is None or old.get("spec") != hpa.get("spec"):
            self.enqueue(key)

    async def reconcile(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None:
            return
        try:
            await self._evaluate(key, deep_copy(hpa))
        finally:
            self.enqueue_after(key, self.options.hpa_sync_period)

    async def _evaluate(self, key: str, hpa: dict[str, Any]) -> None:
        meta, spec = meta_of(hpa), spec_of(hpa)
        namespace = meta.get("namespace") or ""
        status = deep_copy(status_of(hpa))
        stamp = format_time(now())
        ref = spec.get("scaleTargetRef") or {}
        resource = SCALABLE.get(ref.get("kind", ""))
        status["observedGeneration"] = meta.get("generation")
        try:
            if resource is None:
                raise APIError(404, {"message": f'no matches for kind "{ref.get("kind")}"'})
            scale = await self.client.get(resource, ref.get("name", ""), namespace,
                                          subresource="scale")
        except APIError as err:
            _condition(status, "AbleToScale", "False", "FailedGetScale",
                       f"the HPA controller was unable to get the target's current scale: {err}",
                       stamp)
            self.events.warning(hpa, "FailedGetScale", str(err))
            await self._write(hpa, status)
            return
        current = int(spec_of(scale).get("replicas") or 0)
        min_replicas = int(spec.get("minReplicas") or 1)
        max_replicas = int(spec.get("maxReplicas") or min_replicas)
        status["currentReplicas"] = current  # Kubernetes reports the target's spec here
        _condition(status, "AbleToScale", "True", "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale", stamp)
        reason = ""
        if current == 0 and min_replicas != 0:
            desired = 0
            _condition(status, "ScalingActive", "False", "ScalingDisabled",
                       "scaling is disabled since the replica count of the target is zero",
                       stamp)
        elif current > max_replicas:
            desired, reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal, metric_name, statuses, error = self._metrics(
                hpa, scale, current, namespace)
            status["currentMetrics"] = statuses
            if proposal is None:
                _condition(status, "ScalingActive", "False", "FailedGetResourceMetric",
                           f"the HPA was unable to compute the replica count: {error}", stamp)
                self.events.warning(hpa, "FailedGetResourceMetric", str(error))
                if not statuses:
                    status.pop("currentMetrics")
                await self._write(hpa, status)
                return
            _condition(status, "ScalingActive", "True", "ValidMetricFound",
                       f"the HPA was able to successfully calculate a replica count from "
                       f"{metric_name}", stamp)
            desired = self._normalize(key, spec, status, proposal, current, min_replicas,
                                      max_replicas, stamp)
            if desired > current:
                reason = f"{metric_name} above target"
            elif desired < current:
                reason = "All metrics below target"
        if desired != current and not (current == 0 and min_replicas != 0):
            await self.client.patch(SCALABLE[ref["kind"]], ref.get("name", ""),
                                    {"spec": {"replicas": desired}}, namespace,
                                    subresource="scale")
            self._remember_scale(key, spec, current, desired)
            status["lastScaleTime"] = stamp
            _condition(status, "AbleToScale", "True", "SucceededRescale",
                       f"the HPA controller was able to update the target scale to {desired}",
                       stamp)
            self.log.info("%s: scaled %s/%s from %d to %d: %s", key, ref.get("kind"),
                          ref.get("name"), current, desired, reason)
            self.events.normal(hpa, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        status["desiredReplicas"] = desired
        if not status.get("currentMetrics"):
            status.pop("currentMetrics", None)
        await self._write(hpa, status)

    # --- metrics ------------------------------------------------------------------------------

    def _metrics(self, hpa: dict[str, Any], scale: dict[str, Any], current: int,
                 namespace: str) -> tuple[Optional[int], str, list[dict[str, Any]], str]:
        """(highest proposal or None, its metric's name, currentMetrics, last error)."""
        spec = spec_of(hpa)
        try:
            selector = parse_label_selector(status_of(scale).get("selector") or "")
        except SelectorError as err:
            return None, "", [], f"invalid selector: {err}"
        if selector.empty:
            return None, "", [], "the target's selector selects nothing"
        pods = [p for p in self.pods_by_ns.get(namespace)
                if selector.matches(labels_of(p))]
        best: Optional[int] = None
        best_name, error = "", ""
        statuses: list[dict[str, Any]] = []
        for metric in spec.get("metrics") or []:
            try:
                proposal, name, current_status = self._one_metric(metric, pods, current)
            except hpacalc.MetricError as err:
                error = str(err)
                statuses.append({"type": metric.get("type", ""),
                                 "resource": {"name": (metric.get("resource") or {}).get(
                                     "name", ""), "current": {}}}
                                if metric.get("type") == "Resource" else {"type": ""})
                continue
            statuses.append(current_status)
            if best is None or proposal > best:
                best, best_name = proposal, name
        return best, best_name, [s for s in statuses if s.get("type")], error

    def _one_metric(self, metric: dict[str, Any], pods: list[dict[str, Any]],
                    current: int) -> tuple[int, str, dict[str, Any]]:
        if metric.get("type") != "Resource":
            raise hpacalc.MetricError(f"metric type {metric.get('type')!r} is not supported "
                                      f"by netlab's HPA (Resource cpu and memory are)")
        source = metric.get("resource") or {}
        resource = source.get("name")
        if resource not in ("cpu", "memory"):
            raise hpacalc.MetricError(f"resource {resource!r} has no usage samples")
        cpu = resource == "cpu"
        target = source.get("target") or {}
        views, samples = self._pod_views(pods, resource)
        wall = time.time()
        opts = self.options
        knobs = dict(cpu=cpu, tolerance=opts.hpa_tolerance,
                     cpu_initialization_period=opts.hpa_cpu_initialization_period,
                     initial_readiness_delay=opts.hpa_initial_readiness_delay)
        if target.get("type") == "AverageValue" or (target.get("averageValue") is not None
                                                    and target.get("type") != "Utilization"):
            try:
                goal = cpu_millis(target["averageValue"]) if cpu else memory_bytes(
                    target["averageValue"])
            except (QuantityError, KeyError, TypeError, ValueError) as err:
                raise hpacalc.MetricError(f"invalid averageValue: {err}") from err
            replicas, average = hpacalc.average_value_replicas(current, goal, views, samples,
                                                               wall, **knobs)
            return replicas, f"{resource} resource", {"type": "Resource", "resource": {
                "name": resource, "current": {"averageValue": _quantity(average, cpu)}}}
        goal = int(target.get("averageUtilization") or 80)
        replicas, utilization, raw = hpacalc.utilization_replicas(current, goal, views, samples,
                                                                  wall, **knobs)
        return replicas, f"{resource} resource utilization (percentage of request)", {
            "type": "Resource", "resource": {"name": resource, "current": {
                "averageUtilization": utilization, "averageValue": _quantity(raw, cpu)}}}

    def _pod_views(self, pods: list[dict[str, Any]], resource: str
                   ) -> tuple[list[hpacalc.PodView], dict[str, hpacalc.Sample]]:
        views, samples = [], {}
        max_age = self.options.hpa_metrics_max_age
        wall = time.time()
        for pod in pods:
            meta, status = meta_of(pod), pod_status(pod)
            name = meta.get("name", "")
            cond = podutil.condition(pod, "Ready")
            changed = parse_time((cond or {}).get("lastTransitionTime"))
            started = parse_time(status.get("startTime"))
            views.append(hpacalc.PodView(
                name=name, phase=podutil.phase(pod) or "Pending",
                deleting=podutil.is_terminating(pod),
                ready=None if cond is None else cond.get("status") == "True",
                ready_changed=changed.timestamp() if changed else 0.0,
                started=started.timestamp() if started else None,
                request=podutil.container_requests(pod_spec(pod), resource)))
            usage = self.usage.pod(meta.get("namespace", ""), name, meta.get("uid", ""))
            if usage is not None and wall - usage.timestamp <= max_age:
                value = usage.cpu_millis if resource == "cpu" else usage.memory_bytes
                samples[name] = hpacalc.Sample(value, usage.timestamp, usage.window)
        return views, samples

    # --- behavior -----------------------------------------------------------------------------

    def _rules(self, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        behavior = spec.get("behavior")
        window = self.options.hpa_downscale_stabilization
        return hpacalc.rules_of(behavior, True, window), hpacalc.rules_of(behavior, False, window)

    def _normalize(self, key: str, spec: dict[str, Any], status: dict[str, Any], proposal: int,
                   current: int, min_replicas: int, max_replicas: int, stamp: str) -> int:
        up, down = self._rules(spec)
        clock = time.monotonic()
        stabilized, self.recommendations[key] = hpacalc.stabilize(
            self.recommendations.get(key, []), proposal, current, clock,
            float(up["stabilizationWindowSeconds"]), float(down["stabilizationWindowSeconds"]))
        if stabilized != proposal:
            _condition(status, "AbleToScale", "True", "ScaleDownStabilized",
                       "recent recommendations were higher than current one, applying the "
                       "highest recent recommendation", stamp)
        else:
            _condition(status, "AbleToScale", "True", "ReadyForNewScale",
                       "recommended size matches current size", stamp)
        desired, reason, message = hpacalc.limit(
            stabilized, current, min_replicas, max_replicas, up, down,
            self.up_events.get(key, []), self.down_events.get(key, []), clock)
        limited = "True" if reason != "DesiredWithinRange" else "False"
        _condition(status, "ScalingLimited", limited, reason, message, stamp)
        return desired

    def _remember_scale(self, key: str, spec: dict[str, Any], before: int, after: int) -> None:
        up, down = self._rules(spec)
        clock = time.monotonic()
        if after > before:
            self.up_events[key] = hpacalc.record_event(self.up_events.get(key, []),
                                                       after - before, clock, up)
        else:
            self.down_events[key] = hpacalc.record_event(self.down_events.get(key, []),
                                                         before - after, clock, down)

    async def _write(self, hpa: dict[str, Any], status: dict[str, Any]) -> None:
        if status != status_of(hpa):
            await update_status(self.client, hpa, status, RESOURCE)


def _quantity(value: int, cpu: bool) -> str:
    return f"{value}m" if cpu else str(value)
