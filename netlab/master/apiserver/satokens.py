"""Service-account tokens: signed JWTs with upstream's claims, issued and checked.

kube-apiserver signs a TokenRequest's token with ``--service-account-signing-key-file``
and checks bearer tokens against the matching public key (pkg/serviceaccount: ``jwt.go``
and ``claims.go``). netlab does the same with one per-lab ECDSA P-256 key (ES256; the lab
writes it beside its admin token and TLS keys, see ``netlab/lab/pki.py``), through PyJWT.

A token's claims are upstream's: ``iss`` (the issuer, by default kubeadm's
``https://kubernetes.default.svc.<dnsDomain>``), ``sub``
(``system:serviceaccount:<ns>:<name>``), ``aud`` (a list), ``exp``, ``iat``, ``nbf``,
``jti``, and the private ``kubernetes.io`` claim naming the namespace, the ServiceAccount
(name and uid) and the object the token is bound to (``pod``, ``secret`` or ``node``,
name and uid; for a pod on a node, also its ``node``, as kube-apiserver 1.30+ adds).

This module is the cryptography and the claims only: :meth:`TokenSigner.verify` checks the
signature, the issuer, the time window and the audiences. Whether the ServiceAccount and the
bound object still exist with the same uid is the store's to say (``authn.py``); the helper
:func:`check_bound_objects` takes what the store returned and applies upstream's rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from netlab.api.timefmt import parse_time
from netlab.api.views import meta_of

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
PRIVATE_CLAIM = "kubernetes.io"
ALGORITHM = "ES256"
# go-jose's jwt.DefaultLeeway, which kube-apiserver's claim validation uses.
LEEWAY_SECONDS = 60
# A bound object being deleted keeps its tokens valid this long past its
# deletionTimestamp, as in pkg/serviceaccount/claims.go (invalidIfDeletedBefore).
DELETION_GRACE_SECONDS = 60

# The messages kube-apiserver's service-account authenticator gives (TokenReview's
# status.error; a request just gets 401 Unauthorized).
EXPIRED = "service account token has expired"
NOT_YET_VALID = "service account token is not valid yet"
INVALIDATED = "service account token has been invalidated"
UNVERIFIABLE = "service account token could not be validated"
BAD_SIGNATURE = "invalid signature"


class TokenInvalid(Exception):
    """A token that is not (or no longer) valid; the message is upstream's reason."""


def default_issuer(dns_domain: str = "cluster.local") -> str:
    """kubeadm's ``--service-account-issuer`` (also the API server's audience)."""
    return f"https://kubernetes.default.svc.{dns_domain}"


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_username(username: str) -> Optional[tuple[str, str]]:
    """(namespace, name) of ``system:serviceaccount:<ns>:<name>``, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """``serviceaccount.MakeGroupNames``: the groups every service account is in."""
    return (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}")


def generate_key_pem() -> bytes:
    """A fresh P-256 private key, PKCS#8 PEM: the API server's own when it is given none,
    and what ``netlab.lab.pki`` writes for it (mode 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class BoundObject:
    """What a token is bound to: a Pod or a Secret of the service account's namespace, or
    a Node (ServiceAccountTokenNodeBinding, on by default since 1.31)."""

    kind: str  # "Pod", "Secret" or "Node"
    name: str
    uid: str
    # A pod's node (name, uid) when it has one: informational, in the "node" claim.
    node: Optional[tuple[str, str]] = None


@dataclass(frozen=True)
class Claims:
    """The verified claims of a token, in the form the authenticator needs."""

    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    jti: str
    expiration: int
    bound: Optional[BoundObject] = None

    @property
    def username(self) -> str:
        return service_account_username(self.namespace, self.name)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenSigner:
    """Issues and verifies the tokens of one API server (one key, one issuer)."""

    def __init__(self, key_pem: bytes, issuer: str, audiences: tuple[str, ...]) -> None:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or \
                not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the service account signing key must be an ECDSA P-256 key")
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        # keyIDFromPublicKey: the unpadded base64url SHA-256 of the PKIX public key.
        self.key_id = _b64(hashlib.sha256(der).digest())
        self.issuer = issuer
        self.audiences = audiences

    def issue(self, namespace: str, name: str, uid: str, audiences: tuple[str, ...],
              expiration_seconds: int, bound: Optional[BoundObject] = None,
              now: Optional[float] = None) -> tuple[str, dict[str, Any]]:
        """(token, claims) for the service account ``namespace/name`` (``uid``)."""
        issued = int(now if now is not None else time.time())
        private: dict[str, Any] = {"namespace": namespace,
                                   "serviceaccount": {"name": name, "uid": uid}}
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
            if bound.node is not None and bound.kind != "Node":
                private["node"] = {"name": bound.node[0], "uid": bound.node[1]}
        claims: dict[str, Any] = {
            "aud": list(audiences), "exp": issued + expiration_seconds, "iat": issued,
            "iss": self.issuer, "jti": str(uuid.uuid4()), PRIVATE_CLAIM: private,
            "nbf": issued, "sub": service_account_username(namespace, name)}
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM,
                           headers={"kid": self.key_id})
        return token, claims

    def verify(self, token: str, audiences: Optional[tuple[str, ...]] = None,
               now: Optional[float] = None) -> Optional[Claims]:
        """The claims of a token this signer issued, for one of ``audiences`` (default:
        the API server's). None when the token is not a JWT of this issuer (another
        authenticator's business: the request is then just unauthenticated); raises
        :class:`TokenInvalid` when it claims to be ours but does not check out."""
        if _unverified_issuer(token) != self.issuer:
            return None
        options = {"require": ["exp", "iat", "nbf", "sub"], "verify_aud": False,
                   "verify_exp": False, "verify_nbf": False, "verify_iat": False}
        try:
            claims = jwt.decode(token, self._public, algorithms=[ALGORITHM],
                                options=options)  # type: ignore[arg-type]
        except jwt.InvalidSignatureError:
            raise TokenInvalid(BAD_SIGNATURE) from None
        except jwt.PyJWTError:
            raise TokenInvalid(UNVERIFIABLE) from None
        current = now if now is not None else time.time()
        try:
            exp, nbf = int(claims["exp"]), int(claims["nbf"])
        except (TypeError, ValueError):
            raise TokenInvalid(UNVERIFIABLE) from None
        if current > exp + LEEWAY_SECONDS:
            raise TokenInvalid(EXPIRED)
        if current < nbf - LEEWAY_SECONDS:
            raise TokenInvalid(NOT_YET_VALID)
        return self._claims(claims, audiences if audiences else self.audiences)

    def _claims(self, claims: dict[str, Any], wanted: tuple[str, ...]) -> Claims:
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        matched = tuple(a for a in wanted if a in token_auds)
        if not matched:
            raise TokenInvalid(f"token audiences {_go_list(token_auds)} is invalid for the "
                               f"target audiences {_go_list(list(wanted))}")
        private = claims.get(PRIVATE_CLAIM)
        if not isinstance(private, dict):
            raise TokenInvalid(UNVERIFIABLE)
        account = private.get("serviceaccount")
        namespace = private.get("namespace")
        if not isinstance(account, dict) or not isinstance(namespace, str):
            raise TokenInvalid(UNVERIFIABLE)
        name, uid = account.get("name"), account.get("uid")
        if not isinstance(name, str) or not isinstance(uid, str) or \
                claims.get("sub") != service_account_username(namespace, name):
            raise TokenInvalid(UNVERIFIABLE)
        bound = None
        for kind in ("Pod", "Secret"):
            ref = private.get(kind.lower())
            if isinstance(ref, dict):
                node = private.get("node")
                bound = BoundObject(kind, str(ref.get("name", "")), str(ref.get("uid", "")),
                                    (str(node.get("name", "")), str(node.get("uid", "")))
                                    if isinstance(node, dict) else None)
        node = private.get("node")
        if bound is None and isinstance(node, dict):
            bound = BoundObject("Node", str(node.get("name", "")), str(node.get("uid", "")))
        return Claims(namespace, name, uid, matched, str(claims.get("jti", "")),
                      int(claims["exp"]), bound)


def _unverified_issuer(token: str) -> Optional[str]:
    """The ``iss`` a token claims, read before any check (as upstream's authenticator
    decides whether a token is its own), or None when it is no JWT at all."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


def _go_list(values: list[Any]) -> str:
    """Go's ``%q`` of a []string: ``["a" "b"]``."""
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def _deleted_too_long(obj: dict[str, Any], now: float) -> bool:
    stamp = meta_of(obj).get("deletionTimestamp")
    if not isinstance(stamp, str) or not stamp:
        return False
    when = parse_time(stamp)
    if when is None:  # not a time: nothing says how long, so too long
        return True
    return when.timestamp() < now - DELETION_GRACE_SECONDS


def check_bound_objects(claims: Claims, account: Optional[dict[str, Any]],
                        bound: Optional[dict[str, Any]], now: Optional[float] = None) -> None:
    """Upstream's ``validator.Validate``: the ServiceAccount (and the bound Pod or Secret,
    when the token names one) must exist with the uid in the token, and not have been
    deleting for longer than :data:`DELETION_GRACE_SECONDS`. Raises TokenInvalid."""
    current = now if now is not None else time.time()
    for obj, uid in ((account, claims.uid),
                     (bound, claims.bound.uid if claims.bound else None)):
        if uid is None:
            continue
        if obj is None or meta_of(obj).get("uid") != uid or _deleted_too_long(obj, current):
            raise TokenInvalid(INVALIDATED)
