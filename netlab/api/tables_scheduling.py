"""Server-side Table columns and cells for scheduling.k8s.io/v1 PriorityClass, as
kube-apiserver's printer (pkg/printers/internalversion ``printPriorityClass``) prints them.

``kubectl get priorityclasses``: NAME, VALUE, GLOBAL-DEFAULT, AGE and PREEMPTIONPOLICY. The
last column is not a wide one (priority 0): upstream fills it only when printing wide,
which the server's table convertor always does. :mod:`netlab.api.tables` adds this
module's ``PRINTERS`` to its own. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.printers import _age, _int, _name
from netlab.api.tables_base import _AGE, _NAME, Column, Printer


def priority_class_cells(obj: dict[str, Any], now: datetime) -> list[Any]:
    policy = obj.get("preemptionPolicy")
    return [_name(obj), _int(obj.get("value")), obj.get("globalDefault") is True,
            _age(obj, now), policy if isinstance(policy, str) else ""]


PRINTERS: dict[str, Printer] = {
    "PriorityClass": Printer((
        _NAME,
        Column("Value", type="integer", description=(
            "value represents the integer value of this priority class. This is the actual "
            "priority that pods receive when they have the name of this class in their pod "
            "spec.")),
        Column("Global-Default", type="boolean", description=(
            "globalDefault specifies whether this PriorityClass should be considered as the "
            "default priority for pods that do not have any priority class. Only one "
            "PriorityClass can be marked as `globalDefault`. However, if more than one "
            "PriorityClasses exists with their `globalDefault` field set to true, the smallest "
            "value of such global default PriorityClasses will be used as the default "
            "priority.")),
        _AGE,
        Column("PreemptionPolicy", description=(
            "preemptionPolicy is the Policy for preempting pods with lower priority. One of "
            "Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.")),
    ), priority_class_cells),
}
