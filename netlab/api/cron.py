"""Cron schedules as Kubernetes reads a CronJob's ``spec.schedule``: parsing and next times.

Kubernetes parses schedules with robfig/cron's ``ParseStandard``: five fields (minute,
hour, day of month, month, day of week; names like ``jan``/``mon`` allowed; ``*``/``?``,
ranges, lists and steps), the descriptors ``@yearly`` ``@annually`` ``@monthly``
``@weekly`` ``@daily`` ``@midnight`` ``@hourly`` and ``@every <duration>``, and an optional
``CRON_TZ=``/``TZ=`` prefix. :func:`parse` accepts exactly that language and fails with
robfig's messages, which the API server returns in its 422 for ``spec.schedule``.

Computing the next activation is delegated to ``croniter`` (fed a canonical expression
rebuilt from the parsed fields, so the two never disagree about syntax), evaluated in the
schedule's time zone through ``zoneinfo``. ``@every`` is a constant delay, as in robfig.
Pure: no I/O, no clock; callers pass the times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from netlab.units import parse_duration

__all__ = ["NEVER", "CronError", "Schedule", "load_zone", "parse"]


class CronError(ValueError):
    """A schedule robfig/cron would refuse; the message is robfig's."""


@dataclass(frozen=True)
class _Field:
    low: int
    high: int
    names: Optional[dict[str, int]] = None


_MONTHS = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS = (_Field(0, 59), _Field(0, 23), _Field(1, 31), _Field(1, 12, _MONTHS),
           _Field(0, 6, _DAYS))
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_TZ_CHARS = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def load_zone(name: str) -> tzinfo:
    """An IANA zone as Go's ``time.LoadLocation`` finds it; raises CronError otherwise."""
    if name == "UTC" or name == "":
        return timezone.utc
    if name == "Local":
        return timezone.utc  # the lab's processes all run in UTC
    if any(p in (".", "..") or p.startswith("-") or not _TZ_CHARS.fullmatch(p)
           for p in name.split("/")):
        raise CronError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


def _atoi(text: str, expr: str) -> int:
    # Go's strconv.Atoi: an optional sign and decimal digits, nothing else.
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": '
                        f"invalid syntax")
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": '
                        f"value out of range")
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {text}")
    return number


def _value(text: str, spec: _Field, expr: str) -> int:
    if spec.names is not None and text.lower() in spec.names:
        return spec.names[text.lower()]
    return _atoi(text, expr)


def _range(expr: str, spec: _Field) -> tuple[set[int], bool]:
    """One comma-separated part: its values, and whether it was a bare ``*``."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = spec.low, spec.high, True
    else:
        start = _value(low_high[0], spec, expr)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _value(low_high[1], spec, expr)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1], expr)
        if single:
            end = spec.high
        if step > 1:
            star = False
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < spec.low:
        raise CronError(f"beginning of range ({start}) below minimum ({spec.low}): {expr}")
    if end > spec.high:
        raise CronError(f"end of range ({end}) above maximum ({spec.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _field(text: str, spec: _Field) -> str:
    """A field in canonical form: ``*`` for a bare star, else the sorted values."""
    values: set[int] = set()
    star = False
    for part in text.split(","):
        got, was_star = _range(part, spec)
        values |= got
        star = star or was_star
    if star:
        return "*"
    return ",".join(str(v) for v in sorted(values))


# What robfig/cron's Next returns (its zero time) for a schedule that never fires; here
# the far end of time, so that "the next run" simply never comes.
NEVER = datetime.max.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: a canonical 5-field expression, or a constant ``every`` delay."""

    expression: Optional[str]
    every: Optional[float] = None
    zone: Optional[tzinfo] = None  # from a CRON_TZ=/TZ= prefix; None: the caller's zone

    def next(self, after: datetime, zone: Optional[tzinfo] = None) -> datetime:
        """The first activation strictly after ``after`` (aware), as an aware UTC time;
        :data:`NEVER` for a schedule that cannot fire (``0 0 31 2 *``)."""
        if self.every is not None:
            # robfig: Next(t) = t + delay, truncated to the second.
            nxt = after + timedelta(seconds=self.every)
            return nxt.replace(microsecond=0).astimezone(timezone.utc)
        tz = self.zone or zone or timezone.utc
        start = after.astimezone(tz)
        assert self.expression is not None
        try:
            found: datetime = croniter(self.expression, start).get_next(datetime)
        except CroniterBadDateError:
            return NEVER
        return found.astimezone(timezone.utc)


    def latest(self, at: datetime, start: datetime, zone: Optional[tzinfo] = None) -> datetime:
        """The last activation at or before ``at``, given that one follows ``start``
        (needed for ``@every``, whose activations count from ``start``)."""
        if self.every is not None:
            first = self.next(start, zone)
            steps = int((at - first).total_seconds() // self.every)
            return first + timedelta(seconds=steps * self.every)
        tz = self.zone or zone or timezone.utc
        # Activations fall on whole minutes: the last one before the next second is <= at.
        probe = (at.replace(microsecond=0) + timedelta(seconds=1)).astimezone(tz)
        assert self.expression is not None
        prev: datetime = croniter(self.expression, probe).get_prev(datetime)
        return prev.astimezone(timezone.utc)


def parse(spec: str) -> Schedule:
    """Parse a schedule as ``cron.ParseStandard`` does; raises :class:`CronError`."""
    if not isinstance(spec, str) or not spec.strip():
        raise CronError("empty spec string")
    zone: Optional[tzinfo] = None
    text = spec
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        space = text.find(" ")
        eq = text.find("=")
        name = text[eq + 1:space] if space >= 0 else text[eq + 1:]
        try:
            zone = load_zone(name)
        except CronError as err:
            raise CronError(f"provided bad location {name}: {err}") from None
        text = text[space:].strip() if space >= 0 else ""
        if not text:
            raise CronError("empty spec string")
    if text.startswith("@"):
        if text.startswith("@every "):
            raw = text[len("@every "):]
            try:
                delay = parse_duration(raw, strict=True, signed=True)
            except ValueError as err:
                raise CronError(f"failed to parse duration {text}: {err}") from None
            # robfig rounds the delay to whole seconds, at least one.
            return Schedule(None, every=float(max(1, int(delay))), zone=zone)
        expression = _DESCRIPTORS.get(text)
        if expression is None:
            raise CronError(f"unrecognized descriptor: {text}")
        return Schedule(expression, zone=zone)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: "
                        f"[{' '.join(fields)}]")
    return Schedule(" ".join(_field(f, s) for f, s in zip(fields, _FIELDS)), zone=zone)
