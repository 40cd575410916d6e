"""Service-account JWTs (netlab/master/apiserver/satokens.py): claims and every way a token
fails verification, without a server."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from netlab.master.apiserver import satokens
from netlab.master.apiserver.satokens import BoundObject, TokenInvalid, TokenSigner

ISSUER = "https://kubernetes.default.svc.cluster.local"
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner(satokens.generate_key_pem(), ISSUER, (ISSUER,))


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_claims_are_upstreams(signer: TokenSigner) -> None:
    token, _ = signer.issue("team", "robot", "sa-uid", (ISSUER,), 3600,
                            BoundObject("Pod", "web-0", "pod-uid"), now=NOW)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == signer.key_id
    claims = _payload(token)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:team:robot"
    assert claims["aud"] == [ISSUER]
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (NOW, NOW, NOW + 3600)
    assert len(claims["jti"]) == 36
    assert claims["kubernetes.io"] == {
        "namespace": "team", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
        "pod": {"name": "web-0", "uid": "pod-uid"}}
    verified = signer.verify(token, now=NOW + 10)
    assert verified is not None
    assert (verified.username, verified.uid, verified.audiences) == (
        "system:serviceaccount:team:robot", "sa-uid", (ISSUER,))
    assert verified.bound == BoundObject("Pod", "web-0", "pod-uid")


def test_secret_bound_and_unbound_tokens(signer: TokenSigner) -> None:
    token, claims = signer.issue("ns", "sa", "u", ("a", "b"), 600,
                                 BoundObject("Secret", "s", "s-uid"), now=NOW)
    assert claims["kubernetes.io"]["secret"] == {"name": "s", "uid": "s-uid"}
    verified = signer.verify(token, ("b", "c"), now=NOW)
    assert verified is not None and verified.audiences == ("b",)
    token, claims = signer.issue("ns", "sa", "u", (ISSUER,), 600, now=NOW)
    assert set(claims["kubernetes.io"]) == {"namespace", "serviceaccount"}


@pytest.mark.parametrize(("offset", "message"), [
    (3600 + 61, satokens.EXPIRED),
    (-61, satokens.NOT_YET_VALID),
])
def test_time_window_with_upstreams_leeway(signer: TokenSigner, offset: int,
                                           message: str) -> None:
    token, _ = signer.issue("ns", "sa", "u", (ISSUER,), 3600, now=NOW)
    with pytest.raises(TokenInvalid, match=message):
        signer.verify(token, now=NOW + offset)
    # Within go-jose's minute of leeway either way, still good.
    assert signer.verify(token, now=NOW + 3600 + 59) is not None
    assert signer.verify(token, now=NOW - 59) is not None


def test_wrong_audience(signer: TokenSigner) -> None:
    token, _ = signer.issue("ns", "sa", "u", ("vault",), 3600, now=NOW)
    with pytest.raises(TokenInvalid) as err:
        signer.verify(token, now=NOW)
    assert str(err.value) == (f'token audiences ["vault"] is invalid for the target audiences '
                              f'["{ISSUER}"]')


def test_tampered_token_and_another_key(signer: TokenSigner) -> None:
    token, claims = signer.issue("ns", "sa", "u", (ISSUER,), 3600, now=NOW)
    header, _, signature = token.split(".")
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid, match=satokens.BAD_SIGNATURE):
        signer.verify(f"{header}.{forged}.{signature}", now=NOW)
    other = TokenSigner(satokens.generate_key_pem(), ISSUER, (ISSUER,))
    foreign, _ = other.issue("ns", "sa", "u", (ISSUER,), 3600, now=NOW)
    with pytest.raises(TokenInvalid, match=satokens.BAD_SIGNATURE):
        signer.verify(foreign, now=NOW)
    # alg "none" is refused whatever it claims.
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(TokenInvalid):
        signer.verify(unsigned, now=NOW)


def test_not_ours_is_not_an_opinion(signer: TokenSigner) -> None:
    """Another issuer's JWT, or no JWT at all: None (the request is just unauthenticated)."""
    other = TokenSigner(satokens.generate_key_pem(), "https://elsewhere", ("x",))
    token, _ = other.issue("ns", "sa", "u", ("x",), 3600, now=NOW)
    assert signer.verify(token, now=NOW) is None
    assert signer.verify("0123456789abcdef", now=NOW) is None


def _account(uid: str, deleting: str | None = None) -> dict:
    meta = {"name": "sa", "namespace": "ns", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = deleting
    return {"metadata": meta}


def test_bound_objects_must_still_be_there(signer: TokenSigner) -> None:
    token, _ = signer.issue("ns", "sa", "sa-uid", (ISSUER,), 3600,
                            BoundObject("Pod", "p", "pod-uid"), now=NOW)
    claims = signer.verify(token, now=NOW)
    assert claims is not None
    pod = {"metadata": {"name": "p", "uid": "pod-uid"}}
    satokens.check_bound_objects(claims, _account("sa-uid"), pod, now=NOW)
    for account, bound in (
            (None, pod),                                   # the ServiceAccount was deleted
            (_account("new-uid"), pod),                    # ... and re-created
            (_account("sa-uid"), None),                    # the pod was deleted
            (_account("sa-uid"), {"metadata": {"uid": "other"}})):  # ... and re-created
        with pytest.raises(TokenInvalid, match=satokens.INVALIDATED):
            satokens.check_bound_objects(claims, account, bound, now=NOW)
    # A pod being deleted keeps its token for upstream's 60 s past its deletionTimestamp.
    going = {"metadata": {"uid": "pod-uid", "deletionTimestamp": "2027-01-15T08:00:00Z"}}
    stamp = NOW  # 2027-01-15T08:00:00Z
    satokens.check_bound_objects(claims, _account("sa-uid"), going, now=stamp + 30)
    with pytest.raises(TokenInvalid, match=satokens.INVALIDATED):
        satokens.check_bound_objects(claims, _account("sa-uid"), going, now=stamp + 61)
    # The same instant with an offset and a fraction; a stamp that is no time is too long.
    offset = {"metadata": {"uid": "pod-uid",
                           "deletionTimestamp": "2027-01-15T09:00:00.5+01:00"}}
    satokens.check_bound_objects(claims, _account("sa-uid"), offset, now=stamp + 60)
    with pytest.raises(TokenInvalid, match=satokens.INVALIDATED):
        satokens.check_bound_objects(claims, _account("sa-uid"), offset, now=stamp + 61)
    garbage = {"metadata": {"uid": "pod-uid", "deletionTimestamp": "soon"}}
    with pytest.raises(TokenInvalid, match=satokens.INVALIDATED):
        satokens.check_bound_objects(claims, _account("sa-uid"), garbage, now=stamp)


def test_usernames() -> None:
    assert satokens.split_username("system:serviceaccount:ns:sa") == ("ns", "sa")
    for name in ("jane", "system:serviceaccount:ns", "system:serviceaccount::sa",
                 "system:serviceaccount:ns:a:b"):
        assert satokens.split_username(name) is None
    assert satokens.service_account_groups("ns") == (
        "system:serviceaccounts", "system:serviceaccounts:ns")
