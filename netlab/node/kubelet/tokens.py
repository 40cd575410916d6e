"""The kubelet's service-account token manager: the tokens of projected volumes.

A projected volume's ``serviceAccountToken`` source (which ServiceAccount admission
adds to every pod, see ``netlab.api.serviceaccount_admission``) asks the kubelet for
a token of the pod's ServiceAccount, bound to the pod. The kubelet gets it from the
API server's TokenRequest (``POST .../serviceaccounts/NAME/token`` with the pod as
``boundObjectRef``), keeps it, and hands the same token to every volume sync until
it needs a new one. Refresh follows upstream's token manager
(pkg/kubelet/token/token_manager.go): when 80 % of the token's life has passed, or
it is older than 24 hours, each less a random jitter of up to 10 s, so the tokens
of many pods do not all renew at the same instant. Until then a volume sync costs
no API request.

The volume manager calls :meth:`TokenManager.token` while it builds a projected
volume's files; a failed request (the ServiceAccount not made yet, the API server
away) raises :class:`TokenError`, which the volume manager turns into the pod's
FailedMount event and retries at its next sync, as the kubelet does.
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_EXPIRATION_SECONDS = 3600  # the projected source's default
MAX_TTL_SECONDS = 24 * 3600
MAX_JITTER_SECONDS = 10.0

# (namespace, account, body) -> the TokenRequest the API server answered
RequestToken = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]


class TokenError(Exception):
    """No token: the message says why, for the pod's event."""


@dataclass(frozen=True)
class TokenKey:
    namespace: str
    account: str
    pod_uid: str
    audience: str
    expiration_seconds: int


@dataclass
class _Held:
    token: str
    expires: float  # epoch seconds
    expiration_seconds: int


class TokenManager:
    def __init__(self, request: RequestToken, clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] = random.random) -> None:
        self._request = request
        self._clock = clock
        self._jitter = jitter
        self._held: dict[TokenKey, _Held] = {}

    async def token(self, namespace: str, account: str, pod_name: str, pod_uid: str,
                    audience: str = "", expiration_seconds: int | None = None) -> str:
        """The pod's token for ``audience`` (empty: the API server's own), requesting a
        new one only when the one held needs a refresh."""
        seconds = expiration_seconds or DEFAULT_EXPIRATION_SECONDS
        key = TokenKey(namespace, account, pod_uid, audience, seconds)
        held = self._held.get(key)
        if held is not None and not self._needs_refresh(held):
            return held.token
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [],
                         "expirationSeconds": seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": pod_name, "uid": pod_uid}}}
        try:
            answer = await self._request(namespace, account, body)
        except Exception as exc:  # any failure is the volume's, retried at the next sync
            if held is not None and held.expires > self._clock():
                return held.token  # upstream keeps serving a still-valid token
            raise TokenError(f"failed to fetch token: {str(exc) or type(exc).__name__}") \
                from None
        status = answer.get("status") or {}
        token = status.get("token")
        if not isinstance(token, str) or not token:
            raise TokenError("failed to fetch token: the TokenRequest answer has no token")
        self._held[key] = _Held(token, _expiry(status.get("expirationTimestamp"),
                                               self._clock() + seconds), seconds)
        return token

    def forget(self, pod_uid: str) -> None:
        """Drop the tokens of a pod that is gone."""
        for key in [k for k in self._held if k.pod_uid == pod_uid]:
            del self._held[key]

    def _needs_refresh(self, held: _Held) -> bool:
        now = self._clock()
        jitter = self._jitter() * MAX_JITTER_SECONDS
        issued = held.expires - held.expiration_seconds
        if now > issued + MAX_TTL_SECONDS - jitter:
            return True
        return now > held.expires - held.expiration_seconds * 0.2 - jitter


def _expiry(stamp: Any, fallback: float) -> float:
    if isinstance(stamp, str):
        try:
            return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return fallback

