"""Expectations: what a controller is waiting to see in its caches before acting again.

A controller acts on its informer caches, and its own writes reach those
caches a little later, through the watch. Without care, a ReplicaSet that
just asked for 10 pods would reconcile again (on any event) before the watch
delivered them, see 0 pods, and ask for 10 more. Kubernetes prevents that
with ``ControllerExpectations``: before creating N pods the controller
records "expect N creations" for its key; each pod ADDED event it observes
lowers the count; it does not manage replicas for that key again until the
count is back to zero (or the expectation has expired, in case an event was
lost). Deletions are tracked by pod key, as ``UIDTrackingControllerExpectations``
does, so that a pod deleted by someone else is not mistaken for ours.

Expectations live only in memory. That is safe across a restart (``kill -9``):
the new process waits for its informers' first list, which holds every pod
that was ever acknowledged, so it starts from the truth with nothing pending.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Callable

# After this long an unmet expectation is dropped: a lost event must not wedge a
# controller forever (Kubernetes' ExpectationsTimeout is 5 minutes).
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    timestamp: float = field(default_factory=time.monotonic)


class Expectations:
    """Per controller key: pending creations (a count) and deletions (pod keys)."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[Hashable, _Expectation] = {}
        self._timeout = timeout
        self._clock = clock

    def satisfied(self, key: Hashable) -> bool:
        """True when nothing is pending for ``key`` (or what was pending expired)."""
        exp = self._items.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and not exp.deletes:
            return True
        return self._clock() - exp.timestamp > self._timeout

    def expect_creations(self, key: Hashable, count: int) -> None:
        exp = self._fresh(key)
        exp.adds = count

    def expect_deletions(self, key: Hashable, pod_keys: Iterable[str]) -> None:
        exp = self._fresh(key)
        exp.deletes = set(pod_keys)

    def _fresh(self, key: Hashable) -> _Expectation:
        exp = self._items.get(key)
        if exp is None or self.satisfied(key):
            exp = self._items[key] = _Expectation(timestamp=self._clock())
        exp.timestamp = self._clock()
        return exp

    def creation_observed(self, key: Hashable, count: int = 1) -> None:
        """A creation was seen in the cache, or will never happen (the create failed)."""
        exp = self._items.get(key)
        if exp is not None:
            exp.adds -= count

    def deletion_observed(self, key: Hashable, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def pending(self, key: Hashable) -> tuple[int, int]:
        """(creations, deletions) still expected for ``key``, for logs and tests."""
        exp = self._items.get(key)
        if exp is None:
            return 0, 0
        return max(exp.adds, 0), len(exp.deletes)

    def forget(self, key: Hashable) -> None:
        """The controller object is gone: drop whatever it was waiting for."""
        self._items.pop(key, None)
