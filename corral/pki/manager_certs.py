"""The manager's client certificate: how it proves itself to the agents' node listeners.

The manager reaches an agent (logs, exec) by connecting to the agent's node
listener over mutual TLS. The agent presents its node certificate (server
use, SAN = its node name) and requires a client certificate of the cluster
CA whose subject is exactly `MANAGER_CLIENT_NAME`. No node can get such a
certificate: a node certificate's common name is its node name, and node
names cannot contain a space (`Node.name`'s pattern), which this name does.
Files, in the data dir: `manager-client.pem` and `manager-client-key.pem`
(0600), reissued when missing or expired.
"""

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.pki.authority import ClusterCA, certificate_pem, leaf_builder, new_private_key, private_key_pem
from corral.pki.files import write_private
from corral.pki.peers import MANAGER_CLIENT_NAME

CLIENT_CERT_FILE = "manager-client.pem"
CLIENT_KEY_FILE = "manager-client-key.pem"
CLIENT_CERT_LIFETIME = 365 * 86400.0


def issue_manager_client_certificate(ca: ClusterCA, data_dir: Path, now: float) -> tuple[Path, Path]:
    """The paths of the manager's client certificate and key, made (or remade, when expired) as needed."""
    cert_path, key_path = data_dir / CLIENT_CERT_FILE, data_dir / CLIENT_KEY_FILE
    if cert_path.exists() and key_path.exists():
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if certificate.not_valid_after_utc.timestamp() > now + 86400 and certificate.issuer == ca.certificate.subject:
            return cert_path, key_path
    key = new_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MANAGER_CLIENT_NAME)])
    certificate = (
        leaf_builder(ca, subject, key.public_key(), now, CLIENT_CERT_LIFETIME)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    write_private(key_path, private_key_pem(key))
    write_private(cert_path, certificate_pem(certificate))
    return cert_path, key_path
