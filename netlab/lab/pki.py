"""The lab's certificates: a CA, a serving certificate for the API server, one for
each kubelet and, for a lab whose store is etcd, the etcd member's and its clients'
certificates.

kubectl, like every client-go program, sends a bearer token only over TLS
(kubernetes/kubectl#744), so the API server's TCP listeners (the loopback
port for kubectl and the underlay address for node agents) speak HTTPS with a
certificate from a per-lab CA. ``netlab kubeconfig`` embeds the CA, as kind's
kubeconfigs do. Keys are ECDSA P-256: generated in about a millisecond, and
accepted by kubectl, client-go and Python's ssl.

The serving certificate names the API server as a pod sees it (kube-apiserver's
default SANs): ``kubernetes``, ``kubernetes.default``, ``kubernetes.default.svc``,
``kubernetes.default.svc.<dnsDomain>`` and the ``kubernetes`` Service's ClusterIP, so an
in-pod client verifying with ``kube-root-ca.crt`` accepts it. The service-account
signing key (``sa.key``, as kubeadm names it) lives beside the other keys, mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class PKIPaths:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    service_account_key: Path


def pki_paths(directory: Path) -> PKIPaths:
    return PKIPaths(directory / "ca.crt", directory / "apiserver.crt",
                    directory / "apiserver.key", directory / "sa.key")


def apiserver_dns_names(dns_domain: str) -> list[str]:
    """The names of the ``kubernetes`` Service the serving certificate carries."""
    return ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
            f"kubernetes.default.svc.{dns_domain}"]


@dataclass(frozen=True)
class EtcdPKIPaths:
    """The etcd member's pair (server and client use: it serves clients and peers)
    and the client pair the API server and ``netlab etcdctl`` present, as
    kubeadm's etcd/server.crt and apiserver-etcd-client.crt."""

    ca_cert: Path
    member_cert: Path
    member_key: Path
    client_cert: Path
    client_key: Path


def etcd_pki_paths(directory: Path) -> EtcdPKIPaths:
    etcd = directory / "etcd"
    return EtcdPKIPaths(directory / "ca.crt", etcd / "member.crt", etcd / "member.key",
                        etcd / "client.crt", etcd / "client.key")


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _issue(ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, common_name: str,
           names: list[x509.GeneralName], usages: list[x509.ObjectIdentifier],
           cert_path: Path, key_path: Path, organization: str | None = None) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        subject.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name(subject))
               .issuer_name(ca_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + VALIDITY)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    pem = serialization.Encoding.PEM
    _write(cert_path, builder.sign(ca_key, hashes.SHA256()).public_bytes(pem), 0o644)
    _write(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)


def kubelet_cert_paths(directory: Path, node: str) -> tuple[Path, Path]:
    """A kubelet's serving pair: what ``netlab.node.kubelet.certs`` reads from the
    ``--cert-dir`` the lab gives it (``<lab dir>/kubelet/<node>``)."""
    base = directory / "kubelet" / node
    return base / "kubelet.crt", base / "kubelet.key"


def create_pki(directory: Path, lab: str, addresses: list[str],
               etcd_addresses: list[str] | None = None, dns_domain: str = "cluster.local",
               service_ip: str | None = None,
               kubelets: dict[str, str] | None = None) -> PKIPaths:
    """A fresh CA, an API server certificate valid for ``addresses``, localhost, the
    ``kubernetes`` Service's names in ``dns_domain`` and its ``service_ip``, and a
    service-account signing key; with ``etcd_addresses``, also etcd's certificates (see
    ``EtcdPKIPaths``); with ``kubelets`` (node name -> underlay address), each kubelet's
    serving certificate (``kubelet_cert_paths``), as a cluster whose kubelets bootstrap
    serving certificates (``serverTLSBootstrap``) has them signed: ``system:node:<node>``
    in ``system:nodes``, the node's name and address as SANs. The API server verifies
    them against the CA (``--kubelet-certificate-authority``)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"netlab-{lab}-ca")])
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.DNSName(n) for n in apiserver_dns_names(dns_domain)]
    ips = ["127.0.0.1", *addresses, *([service_ip] if service_ip else [])]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ips)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = pki_paths(directory)
    pem = serialization.Encoding.PEM
    _write(paths.ca_cert, ca_cert.public_bytes(pem), 0o644)
    _write(paths.server_cert, cert.public_bytes(pem), 0o644)
    _write(paths.server_key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
    # The key the API server signs service-account tokens with (ES256): satokens' own.
    # Imported here: it brings the whole API server package (aiohttp's server, the
    # registry), which every command that reads a lab's paths would pay for.
    from netlab.master.apiserver.satokens import generate_key_pem

    _write(paths.service_account_key, generate_key_pem(), 0o600)
    if etcd_addresses is not None:
        etcd = etcd_pki_paths(directory)
        etcd.member_cert.parent.mkdir(mode=0o700, exist_ok=True)
        member_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        member_names += [x509.IPAddress(ipaddress.ip_address(a))
                         for a in ["127.0.0.1", *etcd_addresses]]
        _issue(ca_key, ca_name, f"netlab-{lab}-etcd", member_names,
               [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
               etcd.member_cert, etcd.member_key)
        _issue(ca_key, ca_name, "kube-apiserver-etcd-client", [],
               [ExtendedKeyUsageOID.CLIENT_AUTH], etcd.client_cert, etcd.client_key)
    for node, address in (kubelets or {}).items():
        cert_path, key_path = kubelet_cert_paths(directory, node)
        cert_path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        _issue(ca_key, ca_name, f"system:node:{node}",
               [x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(address))],
               [ExtendedKeyUsageOID.SERVER_AUTH], cert_path, key_path,
               organization="system:nodes")
    return paths
