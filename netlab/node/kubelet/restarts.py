"""Restart policy and the crash-loop back-off: whether and when a container starts again.

``should_restart`` is ``restartPolicy`` (Always, OnFailure, Never) applied to
one exit, for app and init containers. ``Backoff`` is client-go's
``flowcontrol.Backoff`` as the kubelet uses it, keyed by pod uid and
container name and timed from the container's ``finishedAt``:

- the first restart happens at once, and sets the delay to ``base``;
- while ``now - finishedAt`` is under the delay, the container waits in
  ``CrashLoopBackOff``; each restart after that doubles the delay, up to ``cap``;
- a container that ran for more than ``2 * cap`` since the last restart starts
  over at ``base`` (Kubernetes: ran for 10 minutes).

So the delays between restarts run 0, base, 2·base, 4·base … cap, exactly the
Kubernetes sequence scaled by ``base`` (Kubernetes' base is 10 s). Pure: the
clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

ALWAYS, ON_FAILURE, NEVER = "Always", "OnFailure", "Never"


def should_restart(policy: str, exit_code: int | None, init: bool = False) -> bool:
    """Whether a container that exited with ``exit_code`` runs again."""
    failed = exit_code != 0
    if init:
        # Init containers run to success: Always and OnFailure both retry failures.
        return failed and policy != NEVER
    if policy == NEVER:
        return False
    if policy == ON_FAILURE:
        return failed
    return True


@dataclass
class _Entry:
    delay: float
    last_update: float  # the finishedAt of the exit that set ``delay``


class Backoff:
    def __init__(self, base: float = 1.0, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._entries: dict[tuple[str, str], _Entry] = {}

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.cap

    def remaining(self, key: tuple[str, str], finished_at: float, now: float) -> float:
        """Seconds the container must still wait before it may start again (0: now)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, finished_at):
            return 0.0
        return max(0.0, finished_at + entry.delay - now)

    def delay(self, key: tuple[str, str]) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: tuple[str, str], finished_at: float) -> float:
        """Record a restart after the exit at ``finished_at``; return the delay that
        the *next* exit will wait."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, finished_at):
            entry = self._entries[key] = _Entry(self.base, finished_at)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last_update = finished_at
        return entry.delay

    def seed(self, key: tuple[str, str], restart_count: int, finished_at: float) -> None:
        """After a kubelet restart: rebuild the delay a container with ``restart_count``
        restarts would have, so a crash loop stays a crash loop."""
        if restart_count <= 0 or key in self._entries:
            return
        delay = min(self.base * 2 ** (restart_count - 1), self.cap)
        self._entries[key] = _Entry(delay, finished_at)

    def forget_pod(self, uid: str) -> None:
        for key in [k for k in self._entries if k[0] == uid]:
            del self._entries[key]
