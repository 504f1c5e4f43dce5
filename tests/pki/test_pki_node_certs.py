import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from corral.pki import (
    DEFAULT_NODE_CERT_LIFETIME,
    CertificateRequestRefused,
    certificate_request,
    create_ca,
    needs_renewal,
    new_private_key,
    node_name_of,
    renewal_time,
    sign_node_request,
)
from pki_factories import NOW

CA = create_ca(NOW)


def test_a_node_certificate_is_for_the_node_and_lasts_90_days_by_default() -> None:
    key = new_private_key()
    cert = sign_node_request(CA, certificate_request(key, "node-1"), "node-1", NOW)
    cert.verify_directly_issued_by(CA.certificate)
    assert node_name_of(cert) == "node-1"
    assert cert.public_key() == key.public_key()
    assert cert.not_valid_after_utc.timestamp() == pytest.approx(NOW + DEFAULT_NODE_CERT_LIFETIME)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_the_expiry_follows_the_injected_clock_and_lifetime() -> None:
    request = certificate_request(new_private_key(), "n")
    cert = sign_node_request(CA, request, "n", NOW + 1000, lifetime=3600)
    assert cert.not_valid_after_utc.timestamp() == NOW + 1000 + 3600


def test_a_pem_request_is_accepted() -> None:
    pem = certificate_request(new_private_key(), "n").public_bytes(serialization.Encoding.PEM)
    assert node_name_of(sign_node_request(CA, pem, "n", NOW)) == "n"


def test_a_request_for_another_node_name_is_refused() -> None:
    with pytest.raises(CertificateRequestRefused, match="not for node 'node-2'"):
        sign_node_request(CA, certificate_request(new_private_key(), "node-1"), "node-2", NOW)


def test_a_request_with_extra_subject_fields_is_refused() -> None:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "node-1"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "admins")]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(new_private_key(), hashes.SHA256())
    with pytest.raises(CertificateRequestRefused):
        sign_node_request(CA, request, "node-1", NOW)


def test_garbage_and_other_key_types_are_refused() -> None:
    with pytest.raises(CertificateRequestRefused, match="not a PEM CSR"):
        sign_node_request(CA, b"-----BEGIN CERTIFICATE REQUEST-----\nxx", "n", NOW)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(rsa_key, hashes.SHA256())
    with pytest.raises(CertificateRequestRefused, match="P-256"):
        sign_node_request(CA, request, "n", NOW)


def test_another_curve_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CertificateRequestRefused, match="P-256"):
        sign_node_request(CA, certificate_request(key, "n"), "n", NOW)


def test_renewal_is_due_at_two_thirds_of_the_life() -> None:
    cert = sign_node_request(CA, certificate_request(new_private_key(), "n"), "n", NOW, lifetime=3000)
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    due = renewal_time(cert)
    assert due == pytest.approx(start + (end - start) * 2 / 3)
    assert not needs_renewal(cert, due - 1)
    assert needs_renewal(cert, due)


@given(lifetime=st.floats(min_value=60, max_value=10 * 365 * 86400), now=st.floats(min_value=NOW - 1e8, max_value=NOW + 1e8))
def test_renewal_is_always_inside_the_validity_and_past_half(lifetime: float, now: float) -> None:
    cert = sign_node_request(CA, certificate_request(new_private_key(), "n"), "n", NOW, lifetime=lifetime)
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    assert start + (end - start) / 2 < renewal_time(cert) < end
    assert needs_renewal(cert, now) == (now >= renewal_time(cert))
