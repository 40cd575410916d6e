"""Table rows of CronJobs and PodDisruptionBudgets, as pkg/printers/internalversion prints them.

:mod:`netlab.api.tables` pairs these cell functions with their columns
(``printCronJob``: NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE, wide adds
CONTAINERS IMAGES SELECTOR; ``printPodDisruptionBudget``: NAME MIN AVAILABLE MAX UNAVAILABLE
ALLOWED DISRUPTIONS AGE).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.printers import _age, _containers, _get, _int, _name, format_label_selector
from netlab.api.timefmt import translate_timestamp_since
from netlab.api.views import dict_at

Obj = dict[str, Any]


def _bool_ptr(value: Any) -> str:
    """``printBoolPtr``: ``<unset>`` for a missing field."""
    if not isinstance(value, bool):
        return "<unset>"
    return "True" if value else "False"


def cronjob_cells(cj: Obj, now: datetime) -> list[Any]:
    spec = dict_at(cj, "spec")
    status = dict_at(cj, "status")
    last = status.get("lastScheduleTime")
    time_zone = spec.get("timeZone")
    active = status.get("active")
    names, images = _containers(_get(spec, "jobTemplate", "spec", "template", "spec"))
    return [_name(cj), spec.get("schedule") or "",
            time_zone if isinstance(time_zone, str) else "<none>",
            _bool_ptr(spec.get("suspend")), len(active) if isinstance(active, list) else 0,
            translate_timestamp_since(last, now) if last else "<none>", _age(cj, now),
            names, images, format_label_selector(_get(spec, "jobTemplate", "spec", "selector"))]


def _int_or_string(value: Any) -> str:
    return "N/A" if value is None else str(value)


def pdb_cells(pdb: Obj, now: datetime) -> list[Any]:
    spec = dict_at(pdb, "spec")
    return [_name(pdb), _int_or_string(spec.get("minAvailable")),
            _int_or_string(spec.get("maxUnavailable")),
            _int(_get(pdb, "status", "disruptionsAllowed")), _age(pdb, now)]
