"""Validation of scheduling.k8s.io/v1 PriorityClasses, with upstream's field paths and messages.

Restates pkg/apis/scheduling/validation: a ``system-`` name is reserved for the built-in
classes, with exactly their values; any other class's ``value`` is at most
1000000000 (HighestUserDefinablePriority); ``preemptionPolicy`` is ``PreemptLowerPriority``
or ``Never``; ``value`` and ``preemptionPolicy`` are immutable. The name's format and the
cluster scope are the shared metadata rules'. That only one class is the ``globalDefault``
is not a validation rule upstream but the Priority admission plugin's
(:mod:`netlab.api.priority_admission`). :mod:`netlab.api.validation` registers these
functions. Objects arrive defaulted. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.errors import forbidden_field, invalid, not_supported, required
from netlab.api.priority_admission import (
    HIGHEST_USER_DEFINABLE_PRIORITY,
    PREEMPTION_POLICIES,
    SYSTEM_PREFIX,
    known_system_class,
)
from netlab.api.validation_base import _V


def validate_preemption_policy(v: _V, holder: dict[str, Any], path: str) -> None:
    """``ValidatePreemptionPolicy``, for a PriorityClass and a pod spec alike."""
    if holder.get("preemptionPolicy") is None:
        return
    policy = v.string(holder, "preemptionPolicy", path)
    if policy == "" and holder.get("preemptionPolicy") == "":
        v.add(required(path))
    elif policy and policy not in PREEMPTION_POLICIES:
        v.add(not_supported(path, policy, PREEMPTION_POLICIES))


def validate_priority_class(v: _V, obj: dict[str, Any]) -> None:
    value = v.integer(obj, "value", "value")
    global_default = obj.get("globalDefault")
    if global_default is not None and not isinstance(global_default, bool):
        v.add(invalid("globalDefault", global_default, "must be a boolean"))
    v.string(obj, "description", "description")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and name.startswith(SYSTEM_PREFIX):
        problem = known_system_class(name, value, global_default)
        if problem is not None:
            v.add(forbidden_field("metadata.name", f"priority class names with "
                                  f"'{SYSTEM_PREFIX}' prefix are reserved for system use "
                                  f"only. error: {problem}"))
    elif value is not None and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        v.add(forbidden_field("value", f"maximum allowed value of a user defined priority "
                                       f"is {HIGHEST_USER_DEFINABLE_PRIORITY}"))
    validate_preemption_policy(v, obj, "preemptionPolicy")


def validate_priority_class_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    if new.get("value") != old.get("value"):
        v.add(forbidden_field("value", "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        v.add(invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
