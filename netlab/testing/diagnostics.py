"""What a failing test's report shows about its lab: recent events, the logs of pods
that are not healthy, and the tail of every component's log.

Each part is collected on its own and a part that cannot be read says why, so
a lab whose API server died still gets its component logs into the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netlab.api.views import (
    ContainerStatus,
    creation_timestamp_of,
    meta_of,
    pod_spec,
    pod_status,
)

EVENTS = 25
POD_LOG_LINES = 20
COMPONENT_LOG_LINES = 12


def _stamp(event: dict[str, Any]) -> str:
    return (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
            or creation_timestamp_of(event))


def events_text(api: Any) -> str:
    try:
        items = api.list("events").get("items") or []
    except Exception as exc:  # the report must not fail because the lab is broken
        return f"(events unavailable: {exc})"
    items.sort(key=_stamp)
    lines = []
    for e in items[-EVENTS:]:
        obj = e.get("involvedObject") or {}
        lines.append(f"{_stamp(e)}  {e.get('type', ''):7} {e.get('reason', ''):18} "
                     f"{obj.get('kind', '')}/{obj.get('name', '')}: "
                     f"{(e.get('message') or '').strip()}")
    return "\n".join(lines) or "(no events)"


def _state(c: ContainerStatus) -> str:
    """A container's state and its reason: ``waiting CrashLoopBackOff`` (``?`` if none)."""
    state: dict[str, Any] = c.get("state") or {"?": {}}
    detail: dict[str, Any] = next(iter(state.values()), {}) or {}
    return f"{next(iter(state))} {detail.get('reason', '')}"


def _unhealthy(pod: dict[str, Any]) -> bool:
    status = pod_status(pod)
    if status.get("phase") in ("Succeeded",):
        return False
    ready = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    return status.get("phase") != "Running" or ready.get("Ready") != "True" or restarts > 0


def failing_pods_text(api: Any, lab: str) -> str:
    try:
        pods = api.list("pods").get("items") or []
    except Exception as exc:
        return f"(pods unavailable: {exc})"
    parts = []
    for pod in pods:
        if not _unhealthy(pod):
            continue
        meta, status = meta_of(pod), pod_status(pod)
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        head = (f"--- pod {ref} on {pod_spec(pod).get('nodeName') or '(unscheduled)'}"
                f": phase {status.get('phase')}")
        reasons = [f"{c.get('name')}: {_state(c)} restarts={c.get('restartCount', 0)}"
                   for c in status.get("containerStatuses") or []]
        parts.append("\n".join([head, *reasons]))
        for c in pod_spec(pod).get("containers") or []:
            try:
                log = api.request("GET", f"/api/v1/namespaces/{meta.get('namespace')}/pods/"
                                  f"{meta.get('name')}/log",
                                  params={"container": c.get("name"),
                                          "tailLines": POD_LOG_LINES},
                                  accept="*/*", raw=True).decode(errors="replace")
            except Exception as exc:
                log = f"(no log: {exc})"
            parts.append(f"[{c.get('name')} log]\n{log.rstrip() or '(empty)'}")
    return "\n".join(parts) or "(every pod is Running and Ready)"


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace").splitlines()
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"
    return "\n".join(data[-lines:])


def component_logs_text(lab: str) -> str:
    from netlab.lab.state import log_dir

    files = sorted(log_dir(lab).glob("*.log"))
    if not files:
        return f"(no component logs in {log_dir(lab)})"
    return "\n".join(f"--- {path.name} (last {COMPONENT_LOG_LINES} lines)\n"
                     f"{_tail(path, COMPONENT_LOG_LINES)}" for path in files)


def sections(lab: Any) -> list[tuple[str, str]]:
    """The report sections for one lab (a ``TestLab``)."""
    name = lab.name
    out = [(f"netlab {name}: recent events", events_text(lab.api)),
           (f"netlab {name}: pods not Running and Ready", failing_pods_text(lab.api, name)),
           (f"netlab {name}: component logs", component_logs_text(name))]
    return out
