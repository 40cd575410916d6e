"""PriorityClasses and the Priority admission plugin, as kube-apiserver has them.

A pod names a PriorityClass (``spec.priorityClassName``); the Priority admission plugin
(plugin/pkg/admission/priority) turns that name into the pod's ``spec.priority`` and
``spec.preemptionPolicy`` when the pod is created, and the scheduler orders its queue by
that number. This module holds the rules, pure, over the classes the caller hands in:

* the two classes every cluster has, ``system-cluster-critical`` and
  ``system-node-critical`` (pkg/apis/scheduling/v1's ``SystemPriorityClasses``), which the
  API server creates at start (``netlab/master/apiserver/bootstrap.py``) and refuses to
  delete; a ``system-`` name is reserved for them (:func:`known_system_class`);
* :func:`admit_pod`: the class a pod names must exist (403 Forbidden otherwise); a pod
  naming none gets the ``globalDefault`` class, or priority 0 when there is none; a pod
  that sets ``spec.priority`` or ``spec.preemptionPolicy`` itself must agree with its
  class (403 otherwise); :func:`keep_on_update` keeps both on a pod update that left
  them out;
* :func:`admit_class`: at most one class is the ``globalDefault`` (upstream enforces it
  in this plugin's validating half, not in the kind's validation).

The caller (``netlab/master/apiserver/storage.py``) keeps the classes in memory as the
plugin's informer does. Errors are :class:`~netlab.api.errors.APIError` with upstream's
messages. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from netlab.api import errors

GROUP = "scheduling.k8s.io"
SYSTEM_PREFIX = "system-"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"
# pkg/apis/scheduling: user classes stay at or below 1e9, so the system classes are above
# every class a user can make.
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
DEFAULT_PRIORITY = 0  # DefaultPriorityWhenNoDefaultClassExists
PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"
PREEMPTION_POLICIES = (PREEMPT_LOWER_PRIORITY, "Never")

SYSTEM_PRIORITY_CLASSES: tuple[dict[str, Any], ...] = (
    {"apiVersion": f"{GROUP}/v1", "kind": "PriorityClass",
     "metadata": {"name": SYSTEM_NODE_CRITICAL}, "value": SYSTEM_CRITICAL_PRIORITY + 1000,
     "description": "Used for system critical pods that must not be moved from their "
                    "current node."},
    {"apiVersion": f"{GROUP}/v1", "kind": "PriorityClass",
     "metadata": {"name": SYSTEM_CLUSTER_CRITICAL}, "value": SYSTEM_CRITICAL_PRIORITY,
     "description": "Used for system critical pods that must run in the cluster, but can be "
                    "moved to another node if necessary."},
)
SYSTEM_CLASS_NAMES = frozenset(c["metadata"]["name"] for c in SYSTEM_PRIORITY_CLASSES)

Obj = dict[str, Any]


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _value(pc: Mapping[str, Any]) -> int:
    value = pc.get("value")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def known_system_class(name: str, value: Any, global_default: Any) -> Optional[str]:
    """``IsKnownSystemPriorityClass``: None when ``name`` is a system class with exactly its
    value and globalDefault, else upstream's reason."""
    for pc in SYSTEM_PRIORITY_CLASSES:
        if _name(pc) != name:
            continue
        if value != pc["value"]:
            return f"value of {name} PriorityClass must be {pc['value']}"
        if bool(global_default) is not bool(pc.get("globalDefault")):
            return (f"globalDefault of {name} PriorityClass must be "
                    f"{str(bool(pc.get('globalDefault'))).lower()}")
        return None
    return f"{name} is not a known system priority class"


def default_class(classes: Iterable[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The ``globalDefault`` class; should a race have made several, the lowest value wins,
    as upstream's getDefaultPriorityClass picks it."""
    found: Optional[Mapping[str, Any]] = None
    for pc in classes:
        if pc.get("globalDefault") is True and (found is None or _value(pc) < _value(found)):
            found = pc
    return found


def _forbidden(pod: Mapping[str, Any], detail: str) -> errors.APIError:
    return errors.forbidden("pods", _name(pod), detail)


def admit_pod(pod: Obj, classes: Mapping[str, Mapping[str, Any]]) -> None:
    """Priority admission of a new pod (defaulted): resolve its class into ``spec.priority``
    and ``spec.preemptionPolicy``. ``classes`` maps every PriorityClass's name to it."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return  # validation names the problem
    wanted = spec.get("priorityClassName")
    policy: Any
    if not wanted:
        pc = default_class(classes.values())
        if pc is None:
            name, priority, policy = "", DEFAULT_PRIORITY, PREEMPT_LOWER_PRIORITY
        else:
            name, priority, policy = _name(pc), _value(pc), pc.get("preemptionPolicy")
        if name:
            spec["priorityClassName"] = name
    else:
        found = classes.get(wanted) if isinstance(wanted, str) else None
        if found is None:
            raise _forbidden(pod, f"no PriorityClass with name {wanted} was found")
        priority, policy = _value(found), found.get("preemptionPolicy")
    _set_computed(pod, spec, "priority", priority, "integer value of priority")
    if policy is not None:
        _set_computed(pod, spec, "preemptionPolicy", policy, "string value of PreemptionPolicy")


def _set_computed(pod: Obj, spec: Obj, key: str, value: Any, what: str) -> None:
    """Set what the class gives; a pod that gave something else is refused."""
    given = spec.get(key)
    if given is not None and given != value:
        raise _forbidden(pod, f"the {what} ({given}) must not be provided in pod spec; "
                              f"priority admission controller computed {value} from the "
                              f"given PriorityClass name")
    spec[key] = value


def keep_on_update(new: Obj, old: Mapping[str, Any]) -> None:
    """An update that leaves out the priority or preemption policy admission set keeps
    them (the pod's validation refuses any other change of either)."""
    spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return
    for key in ("priority", "preemptionPolicy"):
        if spec.get(key) is None and old_spec.get(key) is not None:
            spec[key] = old_spec[key]


def admit_class(pc: Mapping[str, Any], classes: Mapping[str, Mapping[str, Any]],
                creating: bool) -> None:
    """The validating half of the plugin, on a PriorityClass create or update: a second
    ``globalDefault`` class is refused."""
    if pc.get("globalDefault") is not True:
        return
    current = default_class(classes.values())
    if current is None or (not creating and _name(current) == _name(pc)):
        return
    raise errors.forbidden("priorityclasses", _name(pc),
                           f"PriorityClass {_name(current)} is already marked as default. "
                           f"Only one default can exist", GROUP)


def check_delete(name: str) -> None:
    """The system classes cannot be deleted (their REST storage's Delete refuses them)."""
    if name in SYSTEM_CLASS_NAMES:
        raise errors.forbidden("priorityclasses", name,
                               "this is a system priority class and cannot be deleted", GROUP)
