"""The ``world`` fixture: upstream's e2e layout (pods a, b, c in x, y, z) as a pure cluster."""

from __future__ import annotations

import pytest
from netpolkit import World


@pytest.fixture
def world() -> World:
    return World()
