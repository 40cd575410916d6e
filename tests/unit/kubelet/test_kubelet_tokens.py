"""The kubelet's token manager: one TokenRequest per pod token, renewed as upstream's."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from netlab.node.kubelet.tokens import TokenError, TokenManager

pytestmark = pytest.mark.unit


class FakeAPI:
    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.bodies: list[tuple[str, str, dict]] = []
        self.fail: Exception | None = None

    async def __call__(self, namespace: str, account: str, body: dict) -> dict:
        if self.fail is not None:
            raise self.fail
        self.bodies.append((namespace, account, body))
        expires = self.clock[0] + body["spec"]["expirationSeconds"]
        stamp = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc)
        return {"status": {"token": f"t{len(self.bodies)}",
                           "expirationTimestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def manager(jitter: float = 0.0) -> tuple[TokenManager, FakeAPI, list[float]]:
    clock = [1_000_000.0]
    api = FakeAPI(clock)
    return TokenManager(api, clock=lambda: clock[0], jitter=lambda: jitter), api, clock


def get(tm: TokenManager, **kw) -> str:
    args = {"namespace": "ns", "account": "default", "pod_name": "p", "pod_uid": "u1",
            "expiration_seconds": 3607} | kw
    return asyncio.run(tm.token(**args))


def test_the_request_binds_the_token_to_the_pod() -> None:
    tm, api, _ = manager()
    assert get(tm, audience="vault") == "t1"
    namespace, account, body = api.bodies[0]
    assert (namespace, account) == ("ns", "default")
    assert body["kind"] == "TokenRequest"
    assert body["spec"] == {"audiences": ["vault"], "expirationSeconds": 3607,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                               "name": "p", "uid": "u1"}}


def test_the_token_is_kept_until_80_percent_of_its_life() -> None:
    tm, api, clock = manager()
    assert get(tm) == "t1"
    clock[0] += 0.79 * 3607
    assert get(tm) == "t1" and len(api.bodies) == 1
    clock[0] += 0.02 * 3607
    assert get(tm) == "t2" and len(api.bodies) == 2


def test_jitter_renews_up_to_ten_seconds_early() -> None:
    tm, _, clock = manager(jitter=1.0)
    get(tm)
    clock[0] += 0.8 * 3607 - 9
    assert get(tm) == "t2"


def test_a_day_old_token_is_renewed_even_if_it_lives_longer() -> None:
    tm, _, clock = manager()
    get(tm, expiration_seconds=7 * 24 * 3600)
    clock[0] += 24 * 3600 + 1
    assert get(tm, expiration_seconds=7 * 24 * 3600) == "t2"


def test_audiences_and_pods_hold_tokens_of_their_own() -> None:
    tm, _, _ = manager()
    assert [get(tm), get(tm, audience="x"), get(tm, pod_uid="u2"), get(tm)] == \
        ["t1", "t2", "t3", "t1"]
    tm.forget("u1")
    assert get(tm) == "t4"


def test_a_failed_request_names_why_and_a_valid_token_outlives_it() -> None:
    tm, api, clock = manager()
    api.fail = RuntimeError('serviceaccounts "default" not found')
    with pytest.raises(TokenError, match='failed to fetch token: serviceaccounts "default" '
                                         "not found"):
        get(tm)
    api.fail = None
    assert get(tm) == "t1"
    clock[0] += 0.9 * 3607
    api.fail = RuntimeError("connection refused")
    assert get(tm) == "t1"  # due for renewal but still valid
    clock[0] += 0.2 * 3607
    with pytest.raises(TokenError):
        get(tm)
