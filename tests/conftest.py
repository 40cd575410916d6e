"""Shared pytest configuration: tiers, root checks and the leftover sweep.

Tiers are markers (``unit``, ``kernel``, ``lab``). A test in ``tests/unit`` is
marked ``unit`` automatically, and likewise for the other two folders, so a
tier cannot be forgotten.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = ("unit", "kernel", "lab")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
        if ("kernel" in parts or "lab" in parts) and os.geteuid() != 0:
            if os.environ.get("CI") == "true":
                # CI runs as root; a skip there would hide the core of the suite.
                raise pytest.UsageError("kernel and lab tests must run as root in CI")
            item.add_marker(pytest.mark.skip(
                reason="needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces"))
