"""The certificates of a local etcd cluster (`corral up --managers N`, the tests): an etcd CA of its own, one
certificate the members serve and peer with, one the managers present as clients.

etcd 3.4's JSON gateway dials its own gRPC port with the member's certificate as a client certificate, so with
`--client-cert-auth` the member certificate needs both server and client use. Made once: files that exist are
kept (a restarted cluster keeps trusting the managers it knew). Times are passed in (epoch seconds).
"""

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.model.etcd_tls import EtcdTlsFiles
from corral.pki.authority import certificate_pem, create_ca, leaf_builder, new_private_key, private_key_pem
from corral.pki.files import write_private, write_public

ETCD_CERT_LIFETIME = 5 * 365 * 86400.0
# Every member listens on loopback.
MEMBER_NAMES: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
CLIENT_NAME = "corral manager"


def ensure_etcd_certificates(files: EtcdTlsFiles, now: float) -> EtcdTlsFiles:
    """The files of `files`, made when any is missing (all made again then, from a new CA)."""
    if all(path.exists() for path in files.all()):
        return files
    files.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = create_ca(now, "corral etcd CA")
    member_key = new_private_key()
    member = (  # server and client use (see the module's docstring)
        leaf_builder(ca, _name("localhost"), member_key.public_key(), now, ETCD_CERT_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(MEMBER_NAMES), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    client_key = new_private_key()
    client = (
        leaf_builder(ca, _name(CLIENT_NAME), client_key.public_key(), now, ETCD_CERT_LIFETIME)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    write_private(files.ca_key, private_key_pem(ca.key))
    write_private(files.member_key, private_key_pem(member_key))
    write_private(files.client_key, private_key_pem(client_key))
    write_public(files.member_cert, certificate_pem(member))
    write_public(files.client_cert, certificate_pem(client))
    write_public(files.ca, ca.certificate_pem)  # last: its presence with the others means a whole set
    return files


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
