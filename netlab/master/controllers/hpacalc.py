"""HorizontalPodAutoscaler math: replica counts from usage, stabilization, scaling policies.

Pure functions transcribed from Kubernetes' ``pkg/controller/podautoscaler``
(``replica_calculator.go`` and ``horizontal.go``), so that an HPA here scales
when, and as far as, it would on a real cluster:

* the replica proposal for a Resource metric: ``ceil(ratio * readyPods)``
  where ratio is measured usage over target (utilization is usage over the
  pods' requests), nothing when within the 10 % tolerance; pods that are not
  ready, still starting or have no sample yet are handled exactly as
  ``groupPods`` does (a missing sample never pushes the decision further in
  the direction the others point);
* the stabilization window: scale down only to the highest recommendation
  of the window (``spec.behavior.scaleDown.stabilizationWindowSeconds``),
  scale up only to the lowest of the scale-up window;
* scaling policies (``Pods`` / ``Percent`` per ``periodSeconds``, selected by
  ``Max`` / ``Min`` / ``Disabled``) over the recent scale events, then
  ``minReplicas`` and ``maxReplicas``.

Times are plain seconds (monotonic or epoch, as long as one clock is used).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

TOLERANCE = 0.1
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)


class MetricError(Exception):
    """No replica count could be computed from a metric; the message is for the user."""


@dataclass(frozen=True)
class PodView:
    """What the calculation needs of one pod targeted by the HPA."""

    name: str
    phase: str = "Running"
    deleting: bool = False
    ready: Optional[bool] = True  # None: no Ready condition at all
    ready_changed: float = 0.0  # when the Ready condition last changed
    started: Optional[float] = 0.0  # status.startTime; None when not started
    request: Optional[int] = None  # the pods' summed request of the resource


@dataclass(frozen=True)
class Sample:
    """One pod's measured usage: ``value`` (millicores or bytes) over ``window`` ending
    at ``timestamp``."""

    value: int
    timestamp: float
    window: float


def group_pods(pods: list[PodView], samples: Mapping[str, Sample], now: float, cpu: bool,
               cpu_initialization_period: float, initial_readiness_delay: float
               ) -> tuple[int, set[str], set[str], set[str]]:
    """``groupPods``: (ready count, unready, missing, ignored) pod names."""
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        sample = samples.get(pod.name)
        if sample is None:
            missing.add(pod.name)
            continue
        if cpu:
            if pod.ready is None or pod.started is None:
                not_ready = True
            elif pod.started + cpu_initialization_period > now:
                # Still starting: count only a sample taken wholly after it became ready.
                not_ready = pod.ready is False or \
                    sample.timestamp < pod.ready_changed + sample.window
            else:
                # Long running: ignore only a pod that has never been ready.
                not_ready = pod.ready is False and \
                    pod.started + initial_readiness_delay > pod.ready_changed
            if not_ready:
                unready.add(pod.name)
                continue
        ready_count += 1
    return ready_count, unready, missing, ignored


def utilization_ratio(values: Mapping[str, int], requests: Mapping[str, int],
                      target: int) -> tuple[float, int, int]:
    """``GetResourceUtilizationRatio``: (usage ratio, utilization %, raw average)."""
    total_usage = total_request = entries = 0
    for name, value in values.items():
        if name not in requests:
            continue
        total_usage += value
        total_request += requests[name]
        entries += 1
    if total_request == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = (total_usage * 100) // total_request
    return utilization / target, utilization, total_usage // entries


def _settle(ratio: float, new_ratio: float, current: int, count: int,
            tolerance: float) -> int:
    """The shared tail of both calculations, once unknown pods were filled in."""
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or \
            (ratio > 1.0 > new_ratio):
        return current
    proposal = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current
    return proposal


def _usable_samples(pods: list[PodView], samples: Mapping[str, Sample], now: float, cpu: bool,
                    cpu_initialization_period: float, initial_readiness_delay: float
                    ) -> tuple[int, set[str], set[str], dict[str, int]]:
    """:func:`group_pods` of a non-empty ``pods``, and the samples of the pods that count
    (neither unready nor ignored): (ready count, unready, missing, values by pod name)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready_count, unready, missing, ignored = group_pods(
        pods, samples, now, cpu, cpu_initialization_period, initial_readiness_delay)
    values = {n: s.value for n, s in samples.items()
              if n not in unready and n not in ignored and any(p.name == n for p in pods)}
    return ready_count, unready, missing, values


def utilization_replicas(current: int, target: int, pods: list[PodView],
                         samples: Mapping[str, Sample], now: float, *, cpu: bool = True,
                         tolerance: float = TOLERANCE,
                         cpu_initialization_period: float = 300.0,
                         initial_readiness_delay: float = 30.0) -> tuple[int, int, int]:
    """``GetResourceReplicas``: (replicas, utilization %, raw average usage)."""
    ready_count, unready, missing, values = _usable_samples(
        pods, samples, now, cpu, cpu_initialization_period, initial_readiness_delay)
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    requests = {}
    for pod in pods:
        if pod.request is None:
            raise MetricError(f"missing request for {'cpu' if cpu else 'memory'} in "
                              f"pod {pod.name}")
        requests[pod.name] = pod.request
    ratio, utilization, raw = utilization_ratio(values, requests, target)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, utilization, raw
        return math.ceil(ratio * ready_count), utilization, raw
    if missing:
        if ratio < 1.0:  # scaling down: assume the silent pods use all they asked for
            fallback = max(100, target)
            for name in missing:
                values[name] = requests[name] * fallback // 100
        elif ratio > 1.0:  # scaling up: assume they use nothing
            for name in missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in unready:
            values[name] = 0
    new_ratio, _, _ = utilization_ratio(values, requests, target)
    return _settle(ratio, new_ratio, current, len(values), tolerance), utilization, raw


def average_value_replicas(current: int, target: int, pods: list[PodView],
                           samples: Mapping[str, Sample], now: float, *, cpu: bool = True,
                           tolerance: float = TOLERANCE,
                           cpu_initialization_period: float = 300.0,
                           initial_readiness_delay: float = 30.0) -> tuple[int, int]:
    """``GetRawResourceReplicas``: (replicas, average usage) for an AverageValue target."""
    ready_count, unready, missing, values = _usable_samples(
        pods, samples, now, cpu, cpu_initialization_period, initial_readiness_delay)
    if not values:
        raise MetricError("did not receive metrics for any ready pods")
    if target <= 0:
        raise MetricError("the target average value must be positive")
    average = sum(values.values()) // len(values)
    ratio = sum(values.values()) / (target * len(values))
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, average
        return math.ceil(ratio * ready_count), average
    if missing:
        for name in missing:
            values[name] = target if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in unready:
            values[name] = 0
    new_ratio = sum(values.values()) / (target * len(values))
    return _settle(ratio, new_ratio, current, len(values), tolerance), average


# --- behavior -------------------------------------------------------------------------------------


def default_rules(scale_up: bool, down_window: float) -> dict[str, Any]:
    """Kubernetes' default behavior (the lab's own default scale-down window)."""
    if scale_up:
        return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    return {"stabilizationWindowSeconds": down_window, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def rules_of(behavior: Optional[Mapping[str, Any]], scale_up: bool,
             down_window: float) -> dict[str, Any]:
    """The effective rules of one direction: the HPA's, filled in from the defaults."""
    rules = dict(default_rules(scale_up, down_window))
    given = (behavior or {}).get("scaleUp" if scale_up else "scaleDown") or {}
    for key in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
        if given.get(key) is not None:
            rules[key] = given[key]
    return rules


def stabilize(history: list[tuple[float, int]], desired: int, current: int, now: float,
              up_window: float, down_window: float) -> tuple[int, list[tuple[float, int]]]:
    """``stabilizeRecommendationWithBehaviors``: the stabilized recommendation and the
    recommendation history with ``desired`` recorded (samples older than both windows
    are dropped)."""
    up, down = desired, desired
    up_cutoff, down_cutoff = now - up_window, now - down_window
    for when, value in history:
        if when > up_cutoff:
            up = min(up, value)
        if when > down_cutoff:
            down = max(down, value)
    recommendation = current
    recommendation = max(recommendation, up)
    recommendation = min(recommendation, down)
    horizon = min(up_cutoff, down_cutoff)
    kept = [(when, value) for when, value in history if when > horizon]
    kept.append((now, desired))
    return recommendation, kept


def _changes(events: list[tuple[float, int]], period: float, now: float) -> int:
    """Replicas added (or removed) by the events of the last ``period`` seconds."""
    return sum(change for when, change in events if when > now - period)


def _rate_limit(current: int, up_events: list[tuple[float, int]],
                down_events: list[tuple[float, int]], rules: Mapping[str, Any], now: float,
                up: bool) -> int:
    """The replica bound the rules' policies allow from ``current``, upwards or down:
    each policy's change (pods or percent) from where its period started; ``Max`` takes
    the policy allowing the most change, ``Min`` the least."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    most_change = (select == "Max") == up  # up: the highest bound; down: the lowest
    best = INT32_MIN if most_change else INT32_MAX
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - _changes(up_events, period, now) + _changes(down_events, period, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposed = start + value if up else start - value
        elif up:
            proposed = math.ceil(start * (1 + value / 100))
        else:
            proposed = int(start * (1 - value / 100))
        best = max(best, proposed) if most_change else min(best, proposed)
    return best


def scale_up_limit(current: int, up_events: list[tuple[float, int]],
                   down_events: list[tuple[float, int]], rules: Mapping[str, Any],
                   now: float) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    return _rate_limit(current, up_events, down_events, rules, now, up=True)


def scale_down_limit(current: int, up_events: list[tuple[float, int]],
                     down_events: list[tuple[float, int]], rules: Mapping[str, Any],
                     now: float) -> int:
    """``calculateScaleDownLimitWithBehaviors``."""
    return _rate_limit(current, up_events, down_events, rules, now, up=False)


def limit(desired: int, current: int, min_replicas: int, max_replicas: int,
          up_rules: Mapping[str, Any], down_rules: Mapping[str, Any],
          up_events: list[tuple[float, int]], down_events: list[tuple[float, int]],
          now: float) -> tuple[int, str, str]:
    """``convertDesiredReplicasWithBehaviorRate``: (replicas, reason, message) for the
    ScalingLimited condition."""
    if desired > current:
        up_limit = max(scale_up_limit(current, up_events, down_events, up_rules, now), current)
        if max_replicas > up_limit:
            ceiling, reason, message = up_limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            ceiling, reason, message = max_replicas, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        if desired > ceiling:
            return ceiling, reason, message
    elif desired < current:
        down_limit = min(scale_down_limit(current, up_events, down_events, down_rules, now),
                         current)
        if min_replicas < down_limit:
            floor, reason, message = down_limit, "ScaleDownLimit", \
                "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            floor, reason, message = min_replicas, "TooFewReplicas", \
                "the desired replica count is less than the minimum replica count"
        if desired < floor:
            return floor, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def record_event(events: list[tuple[float, int]], change: int, now: float,
                 rules: Mapping[str, Any]) -> list[tuple[float, int]]:
    """Keep the scale events the longest policy period still looks at, plus this one."""
    longest = max((float(p.get("periodSeconds") or 0) for p in rules.get("policies") or []),
                  default=0.0)
    kept = [(when, c) for when, c in events if when > now - longest]
    kept.append((now, change))
    return kept
