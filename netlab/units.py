"""Kubernetes units: resource quantities ("500m", "1.5Gi") and durations ("1m30s").

One parser of each, for every layer: the topology file gives nodes a ``cpu``
and ``memory`` in the notation a pod spec uses and the scheduler and kubelet
compare the two; the API validates and defaults quantities; component flags,
the topology's timings, CronJob ``@every`` schedules and the built-in images'
flags all take Go durations. Standard library only, no I/O: every package,
``topology`` included, may import it.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal

# --- quantities ---------------------------------------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


# Kubernetes keeps quantities in an int64; anything larger is a typo, not a machine.
_MAX_INT64 = 2**63 - 1


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the quantity's value in base units (cores for cpu, bytes for memory)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, (int, float)):
        result = Decimal(str(value))
    else:
        match = _QUANTITY.match(str(value).strip())
        if not match:
            raise QuantityError(f"{value!r} is not a quantity (examples: 500m, 2, 1Gi, 512Mi)")
        number, exponent, suffix = match.groups()
        try:
            base = Decimal(number)
            if exponent:
                result = base * (Decimal(10) ** int(exponent[1:]))
            else:
                suffix = suffix or ""
                result = base * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])
        except ArithmeticError as exc:  # InvalidOperation ("1.2.3"), Overflow ("1e999999999")
            raise QuantityError(f"{value!r} is not a quantity") from exc
    if not result.is_finite():  # .inf and .nan in YAML
        raise QuantityError(f"{value!r} is not a finite quantity")
    return result


def _to_int(value: Decimal, original: str | int | float) -> int:
    result = int(value.to_integral_value(rounding=ROUND_CEILING))
    if abs(result) > _MAX_INT64:
        raise QuantityError(f"{original!r} is too large")
    return result


def cpu_millis(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up as Kubernetes does."""
    return _to_int(parse_quantity(value) * 1000, value)


def memory_bytes(value: str | int | float) -> int:
    """Memory quantity in bytes, rounded up."""
    return _to_int(parse_quantity(value), value)


def format_cpu(millis: int = 0, *, nanocores: int | None = None) -> str:
    """The canonical form Kubernetes prints: the largest of whole cores, ``m``, ``u`` and
    ``n`` that holds it exactly (``millis``, or ``nanocores`` as metrics-server's
    ``NewScaledQuantity(n, -9)`` has them)."""
    value = millis * 10**6 if nanocores is None else nanocores
    for suffix, factor in (("", 10**9), ("m", 10**6), ("u", 10**3)):
        if value % factor == 0:
            return f"{value // factor}{suffix}"
    return f"{value}n"


def format_memory(num_bytes: int) -> str:
    """The canonical binary form (``2Gi``) when exact, else plain bytes."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if num_bytes and num_bytes % unit == 0:
            return f"{num_bytes // unit}{suffix}"
    return str(num_bytes)


# --- durations ----------------------------------------------------------------------------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
# A bare number, in the lenient form: decimals and an exponent ("30", "1.5", "1e3").
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_SECONDS = 2**63 / 1e9  # Go durations are int64 nanoseconds


class DurationError(ValueError):
    """A string that is not a duration, with Go's message (``time: invalid duration "x"``)."""


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` (what Kubernetes prints and ``metav1.Duration``
    serialises): ``10s``, ``10.5s``, ``1m0s``, ``1h2m5s``, ``500ms``, ``0s``. Callers
    truncate or round first where Kubernetes does (``in 1.204s``, ``back-off 1m20s``)."""
    ns = round(seconds * 1e9)
    if ns <= 0:
        return "0s"
    if ns < 10**9:
        for unit, factor in (("ms", 10**6), ("µs", 10**3)):
            if ns >= factor:
                return f"{_fraction(ns, factor)}{unit}"
        return f"{ns}ns"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{_fraction(rest, 10**9)}s"


def _fraction(value: int, factor: int) -> str:
    whole, part = divmod(value, factor)
    digits = str(part).rjust(len(str(factor)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def parse_duration(text: str | int | float, *, strict: bool = False,
                   signed: bool = False) -> float:
    """Go's ``time.ParseDuration`` ("1m30s", "500ms", "1.5h", "0"), in seconds.

    ``strict``: exactly Go's syntax, for what Kubernetes parses with it (a CronJob's
    ``@every``). Otherwise, for netlab's flags and files, surrounding blanks are
    ignored and a bare number means seconds ("30"), so no one has to spell the unit.
    ``signed``: a leading "-" is allowed, as in Go; off, a duration is zero or more.
    Raises DurationError (a ValueError).
    """
    original = str(text)
    body = original if strict else original.strip()
    negative = body.startswith("-")
    if body[:1] in ("+", "-"):
        body = body[1:]
    invalid = DurationError(f'time: invalid duration "{original}"')
    if body == "0":
        total = 0.0
    elif not strict and _NUMBER.fullmatch(body):
        total = float(body)
    else:
        total, pos = 0.0, 0
        while pos < len(body):
            match = _DURATION_PART.match(body, pos)
            if not match or match.group(1) in ("", "."):
                raise invalid
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if not body:
            raise invalid
    if total >= _MAX_SECONDS:
        raise invalid
    if negative and total and not signed:
        raise DurationError(f'time: invalid duration "{original}": must be zero or more')
    return -total if negative and total else total
