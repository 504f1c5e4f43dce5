"""Node certificates: the agent's key and request, the manager's signature, and when to renew.

The agent makes its own key (it never leaves the node) and a certificate
signing request whose subject common name is its node name; the manager,
after checking the join token (or the node's current certificate, on
renewal), signs it for that node name only. A certificate is renewed at
two thirds of its life, so a node that misses a renewal has a third of the
lifetime to retry.
"""

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.pki.authority import ClusterCA, leaf_builder
from corral.pki.errors import CertificateRequestRefused
from corral.pki.lifetimes import DEFAULT_NODE_CERT_LIFETIME, RENEW_AT


def certificate_request(key: ec.EllipticCurvePrivateKey, node: str) -> x509.CertificateSigningRequest:
    """The agent's request: its public key, the node name as subject, signed by its key."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def sign_node_request(
    ca: ClusterCA,
    request: x509.CertificateSigningRequest | bytes,
    node: str,
    now: float,
    lifetime: float = DEFAULT_NODE_CERT_LIFETIME,
) -> x509.Certificate:
    """A certificate for node `node`, valid `lifetime` seconds from `now`, for client and server use.

    Refuses (CertificateRequestRefused) a request that is not valid PEM, whose signature does not
    match its key, that is not for an ECDSA P-256 key, or whose subject is not exactly `node`:
    a node can only ever get a certificate in its own name.
    """
    csr = _load_request(request)
    if not csr.is_signature_valid:
        raise CertificateRequestRefused("the certificate request's signature does not match its key")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        raise CertificateRequestRefused("the certificate request must be for an ECDSA P-256 key")
    names = [attribute.value for attribute in csr.subject]
    if names != [node] or csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []:
        raise CertificateRequestRefused(
            f"the certificate request is for {csr.subject.rfc4514_string()!r}, not for node {node!r}"
        )
    if lifetime <= 0:
        raise ValueError("a certificate lifetime must be positive")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)])
    return (
        leaf_builder(ca, subject, public, now, lifetime)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(node)]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def node_name_of(certificate: x509.Certificate) -> str:
    """The node a certificate was issued to (its subject's common name)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise CertificateRequestRefused("the certificate names no single node")
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def renewal_time(certificate: x509.Certificate) -> float:
    """When (epoch seconds) the holder should ask for a new certificate: two thirds into its validity."""
    start = certificate.not_valid_before_utc.timestamp()
    end = certificate.not_valid_after_utc.timestamp()
    return start + (end - start) * RENEW_AT


def needs_renewal(certificate: x509.Certificate, now: float) -> bool:
    return now >= renewal_time(certificate)


def _load_request(request: x509.CertificateSigningRequest | bytes) -> x509.CertificateSigningRequest:
    if isinstance(request, x509.CertificateSigningRequest):
        return request
    try:
        return x509.load_pem_x509_csr(request)
    except ValueError as error:
        raise CertificateRequestRefused(f"the certificate request is not a PEM CSR: {error}") from None
