import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from corral.pki import (
    KeyMaterialError,
    ca_fingerprint,
    create_ca,
    load_or_create_ca,
    load_or_create_server_certificate,
)
from pki_factories import NOW, make_cluster


def test_the_ca_is_a_self_signed_p256_ca_valid_ten_years() -> None:
    ca = create_ca(NOW)
    cert = ca.certificate
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    years = (cert.not_valid_after_utc.timestamp() - NOW) / (365 * 86400)
    assert 9.99 < years <= 10.01


def test_the_fingerprint_is_the_sha256_of_the_der_in_hex() -> None:
    import hashlib

    cert = create_ca(NOW).certificate
    der = cert.public_bytes(serialization.Encoding.DER)
    assert ca_fingerprint(cert) == hashlib.sha256(der).hexdigest()
    assert len(ca_fingerprint(cert)) == 64


def test_keys_are_written_0600_and_an_existing_data_dir_is_reused(tmp_path) -> None:
    cluster = make_cluster(tmp_path)
    for name in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = load_or_create_ca(tmp_path, NOW + 86400)
    assert ca_fingerprint(again.certificate) == ca_fingerprint(cluster.ca.certificate)
    before = cluster.server_cert.read_bytes()
    load_or_create_server_certificate(tmp_path, again, ["localhost"], ["127.0.0.1"], NOW + 60)
    assert cluster.server_cert.read_bytes() == before


def test_the_server_certificate_names_every_address_and_is_signed_by_the_ca(tmp_path) -> None:
    ca = load_or_create_ca(tmp_path, NOW)
    cert_file, _ = load_or_create_server_certificate(tmp_path, ca, ["manager.example"], ["10.0.0.1", "::1"], NOW)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    cert.verify_directly_issued_by(ca.certificate)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["manager.example"]
    assert set(sans.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("::1")}


def test_a_new_listen_address_reissues_the_server_certificate_with_the_same_key(tmp_path) -> None:
    cluster = make_cluster(tmp_path)
    key_before = cluster.server_key.read_bytes()
    load_or_create_server_certificate(tmp_path, cluster.ca, ["localhost"], ["127.0.0.1", "10.0.0.7"], NOW)
    cert = x509.load_pem_x509_certificate(cluster.server_cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.0.0.7") in sans.get_values_for_type(x509.IPAddress)
    assert cluster.server_key.read_bytes() == key_before


def test_a_corrupt_ca_file_is_an_error_and_is_not_overwritten(tmp_path) -> None:
    make_cluster(tmp_path)
    (tmp_path / "ca-key.pem").write_bytes(b"garbage")
    with pytest.raises(KeyMaterialError, match="ca-key.pem"):
        load_or_create_ca(tmp_path, NOW)
    assert (tmp_path / "ca-key.pem").read_bytes() == b"garbage"


def test_a_ca_key_that_does_not_match_its_certificate_is_refused(tmp_path) -> None:
    make_cluster(tmp_path)
    other = tmp_path / "other"
    load_or_create_ca(other, NOW)
    (tmp_path / "ca-key.pem").write_bytes((other / "ca-key.pem").read_bytes())
    with pytest.raises(KeyMaterialError, match="do not belong together"):
        load_or_create_ca(tmp_path, NOW)
