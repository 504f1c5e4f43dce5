"""The cluster CA and the manager's server certificate, made at first start and kept in the data dir.

The CA is an ECDSA P-256 key and a self-signed certificate valid 10 years;
it signs the manager's server certificate (SANs: the names and addresses the
manager is reached at) and every node certificate. Files, in the data dir:
`ca.pem` (public: agents and the CLI pin it), `ca-key.pem` and
`server-key.pem` (mode 0600), `server.pem`. An existing data dir is reused:
what is there is loaded, never replaced.
"""

import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.pki.errors import KeyMaterialError
from corral.pki.files import CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, write_private, write_public


CA_LIFETIME = 10 * 365 * 86400.0
SERVER_CERT_LIFETIME = 2 * 365 * 86400.0
# Certificates start a little in the past, so a peer whose clock is slightly behind accepts them at once.
BACKDATE = 300.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ClusterCA:
    """The CA's certificate and private key (the key never leaves the manager's data dir)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def moment(now: float) -> datetime.datetime:
    """Epoch seconds as the aware UTC datetime x509 wants."""
    return datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def ca_fingerprint(certificate: x509.Certificate) -> str:
    """sha256 of the certificate's DER encoding, lowercase hex: what a join token and a CLI profile pin."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def create_ca(now: float, common_name: str = "corral cluster CA") -> ClusterCA:
    key = new_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment(now - BACKDATE))
        .not_valid_after(moment(now + CA_LIFETIME))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(authority=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return ClusterCA(certificate=certificate, key=key)


def leaf_builder(
    ca: ClusterCA, subject: x509.Name, public: ec.EllipticCurvePublicKey, now: float, lifetime: float
) -> x509.CertificateBuilder:
    """What every certificate the CA issues has in common: issuer, validity, a leaf's key usage."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment(now - BACKDATE))
        .not_valid_after(moment(min(now + lifetime, ca.certificate.not_valid_after_utc.timestamp())))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(authority=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )


def _key_usage(authority: bool) -> x509.KeyUsage:
    """A CA signs certificates (and revocation lists); a leaf signs handshakes and agrees keys (ECDHE)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not authority,
        key_cert_sign=authority,
        crl_sign=authority,
        encipher_only=False,
        decipher_only=False,
    )


def issue_server_certificate(
    ca: ClusterCA,
    key: ec.EllipticCurvePrivateKey,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    now: float,
    lifetime: float = SERVER_CERT_LIFETIME,
) -> x509.Certificate:
    """A certificate for the manager's listeners, valid for each DNS name and IP address given (its SANs)."""
    if not dns_names and not ip_addresses:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    common_name = dns_names[0] if dns_names else ip_addresses[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        leaf_builder(ca, subject, key.public_key(), now, lifetime)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def load_or_create_ca(data_dir: Path, now: float) -> ClusterCA:
    """The CA of the cluster whose data dir this is: loaded when its files exist, else made and written."""
    cert_path, key_path = data_dir / CA_CERT_FILE, data_dir / CA_KEY_FILE
    if cert_path.exists() or key_path.exists():
        certificate, key = _load_pair(cert_path, key_path)
        return ClusterCA(certificate=certificate, key=key)
    ca = create_ca(now)
    write_private(key_path, private_key_pem(ca.key))  # the key first: a certificate without its key is no CA
    write_public(cert_path, ca.certificate_pem)
    return ca


def load_or_create_server_certificate(
    data_dir: Path, ca: ClusterCA, dns_names: Sequence[str], ip_addresses: Sequence[str], now: float
) -> tuple[Path, Path]:
    """The paths of the server certificate and key (as uvicorn takes them), made when missing.

    A certificate that no longer covers every name asked for, or has expired, is reissued
    (same key): the manager may have been given a new `--listen` address.
    """
    cert_path, key_path = data_dir / SERVER_CERT_FILE, data_dir / SERVER_KEY_FILE
    if cert_path.exists() and key_path.exists():
        certificate, key = _load_pair(cert_path, key_path)
        if _covers(certificate, dns_names, ip_addresses) and certificate.not_valid_after_utc.timestamp() > now:
            return cert_path, key_path
    else:
        key = new_private_key()
        write_private(key_path, private_key_pem(key))
    certificate = issue_server_certificate(ca, key, dns_names, ip_addresses, now)
    write_public(cert_path, certificate_pem(certificate))
    return cert_path, key_path


def _covers(certificate: x509.Certificate, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> bool:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = set(sans.get_values_for_type(x509.DNSName))
    have_ips = set(sans.get_values_for_type(x509.IPAddress))
    return set(dns_names) <= have_dns and {ipaddress.ip_address(a) for a in ip_addresses} <= have_ips


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise KeyMaterialError(
            f"cannot load {cert_path.name} and {key_path.name} from {cert_path.parent}: {error}; "
            "restore them from a backup, or start from an empty data dir"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(f"{key_path} is not an ECDSA key")
    if certificate.public_key() != key.public_key():
        raise KeyMaterialError(f"{cert_path} and {key_path} do not belong together")
    return certificate, key
