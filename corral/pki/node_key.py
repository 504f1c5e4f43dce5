"""A node's key, its certificate requests and its certificates' validity, for an agent that never loads `cryptography`.

`cryptography` costs a process about 9.5 MiB of resident memory, and an agent
needs it only at join and at each renewal (every two thirds of a
certificate's life): to make the node's key once, sign a certificate request
with it, and read when a certificate it was given expires. So the agent runs
this module in a short-lived child process for each of those and reads one
JSON object from its output (`corral/agent/identity.py`); the child's memory
goes when it exits.

    python -m corral.pki.node_key request KEY_FILE NODE  # makes KEY_FILE (0600) if missing
        -> {"csr": "-----BEGIN CERTIFICATE REQUEST-----..."}
    python -m corral.pki.node_key validity CERT_FILE
        -> {"not_before": 1764720000.0, "not_after": 1772496000.0, "renew_at": 1769904000.0, "subject": "CN=node-1", "serial": "5f3a..."}

A key file that is not an ECDSA key, or a certificate that cannot be read,
exits with status 1 and the reason on stderr.
"""

import json
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from corral.pki.authority import new_private_key, private_key_pem
from corral.pki.errors import KeyMaterialError
from corral.pki.files import write_private
from corral.pki.node_certs import certificate_request, renewal_time


def node_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The node's key at `path`, made (mode 0600) if there is none; KeyMaterialError if the file holds something else."""
    if not path.exists():
        key = new_private_key()
        write_private(path, private_key_pem(key))
        return key
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as err:
        raise KeyMaterialError(f"{path} is not a readable private key ({err}): remove it, the agent makes a new one") from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(f"{path} is not an ECDSA key: remove it, the agent makes a new one")
    return loaded


def request_pem(key_file: Path, node: str) -> str:
    """A certificate signing request for `node`, signed by the key at `key_file` (made if missing)."""
    return certificate_request(node_key(key_file), node).public_bytes(serialization.Encoding.PEM).decode()


def validity(certificate_pem: bytes) -> dict[str, Any]:
    """When a certificate starts and stops being valid and when to renew it (epoch seconds), whom it names, its serial (hex)."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as err:
        raise KeyMaterialError(f"not a PEM certificate: {err}") from None
    return {
        "not_before": certificate.not_valid_before_utc.timestamp(),
        "not_after": certificate.not_valid_after_utc.timestamp(),
        "renew_at": renewal_time(certificate),
        "subject": certificate.subject.rfc4514_string(),
        "serial": format(certificate.serial_number, "x"),
    }


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["request", key_file, node]:
                print(json.dumps({"csr": request_pem(Path(key_file), node)}))
            case ["validity", cert_file]:
                print(json.dumps(validity(Path(cert_file).read_bytes())))
            case _:
                print("usage: python -m corral.pki.node_key request KEY_FILE NODE | validity CERT_FILE", file=sys.stderr)
                return 2
    except (KeyMaterialError, OSError) as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
