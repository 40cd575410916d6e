"""The kubelet's serving certificate: the one in its cert directory, else a
self-signed one made once and kept.

A lab puts a certificate signed by the lab CA in each kubelet's cert directory
before starting it (``netlab/lab/pki.py``), so the API server can verify it, as a
cluster's kubelets get theirs signed through serving-certificate bootstrap. A
kubelet started without one generates a self-signed certificate for its address
and keeps it there, as a kubelet without ``--tls-cert-file`` does. The generation
runs in a short-lived child process
(``python -m netlab.node.kubelet.certs DIR ADDRESS NODE``): ``cryptography``
costs a long-running kubelet about 10 MB of memory it would never use again.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from pathlib import Path


def cert_paths(directory: Path) -> tuple[Path, Path]:
    return directory / "kubelet.crt", directory / "kubelet.key"


def ensure_serving_cert(directory: Path, address: str, node: str) -> tuple[Path, Path]:
    """The (cert, key) files for ``address``, generated on first use."""
    cert, key = cert_paths(directory)
    if not (cert.exists() and key.exists()):
        subprocess.run([sys.executable, "-m", "netlab.node.kubelet.certs", str(directory),
                        address, node], check=True, stdin=subprocess.DEVNULL)
    return cert, key


def make_cert(directory: Path, address: str, node: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert, key = cert_paths(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.timezone.utc)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node}@kubelet")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(private, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    tmp = key.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(private.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    tmp.replace(key)
    tmp = cert.with_suffix(".tmp")
    tmp.write_bytes(certificate.public_bytes(pem))
    tmp.replace(cert)  # last: its presence means both are complete


if __name__ == "__main__":
    make_cert(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
