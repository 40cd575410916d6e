"""The scheduling queue: pending pods in, one at a time; pods that fit nowhere wait for news.

kube-scheduler keeps three queues: *active* (to schedule now), *backoff* (failed
recently, retried after 1 s doubling to 10 s) and *unschedulable* (no node fit;
parked until the cluster changes in a way that could help: a node added or
changed, a placed pod gone). This is the same in small, on top of
``netlab.client.workqueue.WorkQueue`` (deduplicated keys; ``add_after`` is
the backoff timer):

- ``add`` puts a pending pod's key on the active queue, which hands out the
  highest ``spec.priority`` first and, among equals, the pod queued first
  (kube-scheduler's default QueueSort plugin, PrioritySort); the priority is
  remembered, so a retried or parked pod comes back in its place;
- ``park`` records a pod no node fits; it stays out of the queue, so an
  unschedulable pod costs nothing while nothing changes, instead of a retry
  loop;
- ``move_all`` (a cluster event) sends every parked pod back, each after
  what remains of its backoff, so a storm of events still retries a pod at
  most once per backoff period;
- a pod that failed while an event arrived (the event may have been the
  one it needed) is retried after its backoff rather than parked, as
  kube-scheduler's "move request cycle" does;
- every parked pod is also retried after ``FLUSH_AFTER`` (kube-scheduler's
  podMaxInUnschedulablePodsDuration), a safety net for a change no event
  announced (a usage report, which filters do not read, for instance).
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from netlab.client.workqueue import WorkQueue

BACKOFF_INITIAL, BACKOFF_MAX = 1.0, 10.0
FLUSH_AFTER = 300.0


class SchedulingQueue:
    def __init__(self, backoff_initial: float = BACKOFF_INITIAL,
                 backoff_max: float = BACKOFF_MAX, flush_after: float = FLUSH_AFTER) -> None:
        self.work = WorkQueue(order=self._order)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.flush_after = flush_after
        self.moves = 0  # cluster events seen so far (the "move request cycle")
        self._parked: set[Hashable] = set()
        self._attempts: dict[Hashable, int] = {}
        self._last_attempt: dict[Hashable, float] = {}
        self._priority: dict[Hashable, int] = {}

    def _order(self, key: Hashable) -> int:
        return -self._priority.get(key, 0)  # the work queue hands out the lowest first

    def add(self, key: Hashable, priority: int = 0) -> None:
        """A pending pod (new, or changed in a way that may change its fate) and its
        ``spec.priority``."""
        self._parked.discard(key)
        self._priority[key] = priority
        self.work.add(key)

    def attempted(self, key: Hashable) -> None:
        """Called as a scheduling attempt starts."""
        self._parked.discard(key)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._last_attempt[key] = time.monotonic()

    def backoff(self, key: Hashable) -> float:
        """How long after its last attempt ``key`` may be tried again."""
        attempts = self._attempts.get(key, 1)
        return min(self.backoff_initial * 2 ** max(attempts - 1, 0), self.backoff_max)

    def _remaining(self, key: Hashable) -> float:
        since = time.monotonic() - self._last_attempt.get(key, 0.0)
        return max(0.0, self.backoff(key) - since)

    def park(self, key: Hashable, moves_at_start: int) -> None:
        """No node fits ``key``. ``moves_at_start`` is ``moves`` when its attempt began."""
        if self.moves != moves_at_start:
            self.work.add_after(key, self._remaining(key))
            return
        self._parked.add(key)
        self.work.add_after(key, self.flush_after)

    def retry(self, key: Hashable) -> None:
        """An error (the API, a lost binding race): try again after the backoff."""
        self.work.add_after(key, self._remaining(key))

    def move_all(self) -> None:
        """Something changed that may let parked pods fit."""
        self.moves += 1
        parked, self._parked = self._parked, set()
        for key in parked:
            self.work.add_after(key, self._remaining(key))

    def forget(self, key: Hashable) -> None:
        """The pod is bound or gone."""
        self._parked.discard(key)
        self._attempts.pop(key, None)
        self._last_attempt.pop(key, None)
        self._priority.pop(key, None)

    def parked(self) -> int:
        return len(self._parked)

    def __len__(self) -> int:
        return len(self.work)
