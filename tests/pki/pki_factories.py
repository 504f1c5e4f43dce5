"""A cluster CA, a server certificate and node certificates written to a temporary data dir, for the PKI tests."""

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from corral.pki import (
    ClusterCA,
    certificate_request,
    load_or_create_ca,
    load_or_create_server_certificate,
    new_private_key,
    sign_node_request,
)
from corral.pki.authority import certificate_pem, private_key_pem
from corral.pki.files import write_private, write_public

NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Cluster:
    ca: ClusterCA
    ca_file: Path
    server_cert: Path
    server_key: Path


def make_cluster(data_dir: Path, now: float = NOW) -> Cluster:
    ca = load_or_create_ca(data_dir, now)
    cert, key = load_or_create_server_certificate(data_dir, ca, ["localhost"], ["127.0.0.1"], now)
    return Cluster(ca=ca, ca_file=data_dir / "ca.pem", server_cert=cert, server_key=key)


def node_files(ca: ClusterCA, folder: Path, node: str, now: float = NOW) -> tuple[Path, Path, x509.Certificate]:
    """A node key and certificate signed by `ca`, written as an agent keeps them."""
    key = new_private_key()
    certificate = sign_node_request(ca, certificate_request(key, node), node, now)
    cert_file, key_file = folder / f"{node}.pem", folder / f"{node}-key.pem"
    write_public(cert_file, certificate_pem(certificate))
    write_private(key_file, private_key_pem(key))
    return cert_file, key_file, certificate
