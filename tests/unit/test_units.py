"""Kubernetes units: quantities and durations, one parser of each (``netlab.units``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from netlab.units import (
    DurationError,
    QuantityError,
    cpu_millis,
    format_cpu,
    format_memory,
    memory_bytes,
    parse_duration,
    parse_quantity,
)

GiB = 2**30


# --- quantities -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), (2, Decimal(2)), (0.5, Decimal("0.5")),
    ("1.5Gi", Decimal(1610612736)), ("128M", Decimal(128_000_000)), ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)), ("64Ki", Decimal(65536)), ("1k", Decimal(1000)),
    (" 3 ", Decimal(3)), ("-1", Decimal(-1)),
])
def test_parse_quantity(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", [
    "two", "1K", "4GB", "1.2.3", ".", "", "1e", "0x10", True, float("inf"), float("nan"),
    "1e999999999",
])
def test_bad_quantities_raise_quantity_error(text: str | float | bool) -> None:
    with pytest.raises(QuantityError):
        cpu_millis(text)
    with pytest.raises(QuantityError):
        memory_bytes(text)


def test_quantities_round_up_and_are_capped_to_int64() -> None:
    assert cpu_millis("0.0001") == 1  # Kubernetes rounds requests up to 1m
    assert cpu_millis("1.5") == 1500
    assert memory_bytes("0.5") == 1
    assert memory_bytes("7Ei") == 7 * 2**60
    assert memory_bytes(str(2**63 - 1)) == 2**63 - 1
    for too_large in ("8Ei", "1e400"):
        with pytest.raises(QuantityError, match="too large"):
            memory_bytes(too_large)


def test_format_quantities_canonically() -> None:
    assert [format_cpu(m) for m in (2000, 1500, 250)] == ["2", "1500m", "250m"]
    assert [format_memory(b) for b in (2 * GiB, 1536 * 2**20, 1000, 0)] == [
        "2Gi", "1536Mi", "1000", "0"]


# --- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("1.5s", 1.5), ("20", 20.0),
    ("0", 0.0), ("1h2m3s4ms5us6ns", 3723.004005006), ("3µs", 3e-6), ("3μs", 3e-6),
    (".5h", 1800.0), ("1.s", 1.0), (" 10s ", 10.0), ("1e3", 1000.0), ("+5s", 5.0), (20, 20.0),
])
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten", "10 s", "10x", "-5s", "-5", "inf", "nan", ".",
                                  "s", "-", "--5s", "1_000", "1m 30s", "9999999999h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_a_signed_duration_may_be_negative() -> None:
    assert parse_duration("-1m30s", signed=True) == -90.0
    assert parse_duration("-5", signed=True) == -5.0
    assert parse_duration("-0") == 0.0  # zero is zero, signed or not


def test_strict_durations_are_exactly_gos() -> None:
    assert parse_duration("1h30m", strict=True) == 5400.0
    assert parse_duration("0", strict=True) == 0.0
    for text in ("5", "1.5", " 10s", "1e3"):  # Go wants a unit on every number but 0
        with pytest.raises(DurationError, match=f'time: invalid duration "{text}"'):
            parse_duration(text, strict=True)


def test_a_duration_error_is_a_value_error() -> None:
    # argparse (component flags) and the images' flag parsers catch ValueError.
    with pytest.raises(ValueError, match='time: invalid duration "soon"'):
        parse_duration("soon")


def test_format_cpu_of_nanocores_is_metrics_servers_canonical_form():
    assert [format_cpu(nanocores=n) for n in (0, 120_000_000, 2_000_000_000, 1_500, 12_000)] \
        == ["0", "120m", "2", "1500n", "12u"]
    assert format_cpu(1500) == format_cpu(nanocores=1_500_000_000) == "1500m"
