"""Kubernetes timestamps and the human durations kubectl prints.

Objects carry times as RFC 3339 strings (``metav1.Time``, whole seconds) and
micro-times (``metav1.MicroTime``, six fractional digits). This module parses
and formats both, and reproduces apimachinery's ``duration.HumanDuration`` and
the printers' ``translateTimestampSince`` so that AGE, LAST SEEN, DURATION and
"(5m ago)" read exactly as they do against a real cluster.

Everything takes ``now`` explicitly, so callers and tests control the clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)

_US_PER_SECOND = 1_000_000
_MINUTE = 60
_HOUR = 60 * _MINUTE


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp into an aware UTC datetime; None if absent or invalid.

    Written by hand because ``datetime.fromisoformat`` on Python < 3.11 rejects
    both the ``Z`` suffix and fractions that are not 3 or 6 digits long.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    m = _RFC3339.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    if m.group(8):
        tz = timezone.utc
    else:
        sign = -1 if m.group(9) == "-" else 1
        tz = timezone(sign * timedelta(hours=int(m.group(10)), minutes=int(m.group(11))))
    try:
        parsed = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc)


def format_time(when: datetime) -> str:
    """``metav1.Time`` form: UTC, whole seconds, ``Z`` suffix (``2024-05-01T12:00:00Z``)."""
    return as_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: datetime) -> str:
    """``metav1.MicroTime`` form, as in Event.eventTime and Lease renewTime."""
    return as_utc(when).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_utc(when: datetime) -> datetime:
    """``when`` in UTC; a naive datetime is taken to be UTC already."""
    # Naive datetimes are taken as UTC: the whole API speaks UTC.
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _to_microseconds(delta: timedelta) -> int:
    # Integer arithmetic, so boundaries (exactly 2m, 10m, 3h ...) never suffer float error.
    return (delta.days * 86400 + delta.seconds) * _US_PER_SECOND + delta.microseconds


def _trunc_div(a: int, b: int) -> int:
    """Division truncating toward zero, like Go's integer conversion."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(delta: timedelta) -> str:
    """apimachinery's ``HumanDuration``: about 2-3 significant figures.

    ``5s``, ``119s``, ``2m``, ``3m2s``, ``10m``, ``179m``, ``3h``, ``7h59m``, ``8h``,
    ``47h``, ``2d``, ``2d3h``, ``8d``, ``729d``, ``2y``, ``2y10d``, ``8y``. A clock
    skew of under two seconds reads ``0s``; more than that in the future reads
    ``<invalid>``.
    """
    us = _to_microseconds(delta)
    seconds = _trunc_div(us, _US_PER_SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 2 * _MINUTE:
        return f"{seconds}s"
    minutes = seconds // _MINUTE
    if minutes < 10:
        s = seconds % _MINUTE
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = seconds // _HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def translate_timestamp_since(timestamp: object, now: datetime) -> str:
    """The printers' AGE cell: ``human_duration(now - timestamp)``, ``<unknown>`` if unset."""
    when = parse_time(timestamp)
    if when is None:
        return "<unknown>"
    return human_duration(as_utc(now) - when)


def duration_between(start: object, end: object) -> str:
    """``human_duration(end - start)``; empty when either end is missing (a Job's DURATION)."""
    s, e = parse_time(start), parse_time(end)
    if s is None or e is None:
        return ""
    return human_duration(e - s)
