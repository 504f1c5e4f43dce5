"""The child an agent runs for its key, certificate requests and certificates' validity (`python -m corral.pki.node_key`)."""

import json
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509

from corral.pki import create_ca, sign_node_request
from corral.pki.authority import certificate_pem


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.pki.node_key", *args], capture_output=True, text=True, timeout=60)


def test_a_request_makes_the_key_once_and_the_ca_can_sign_it(tmp_path: Path) -> None:
    key = tmp_path / "node-key.pem"
    first = _run("request", str(key), "node-1")
    assert first.returncode == 0, first.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    made = key.read_bytes()
    again = _run("request", str(key), "node-1")
    assert key.read_bytes() == made  # the same key: a node keeps its identity across requests
    first_csr = x509.load_pem_x509_csr(json.loads(first.stdout)["csr"].encode())
    second_csr = x509.load_pem_x509_csr(json.loads(again.stdout)["csr"].encode())
    assert first_csr.public_key() == second_csr.public_key() and first_csr.is_signature_valid
    now = time.time()
    certificate = sign_node_request(create_ca(now), json.loads(first.stdout)["csr"].encode(), "node-1", now, lifetime=3000)
    (tmp_path / "node.pem").write_bytes(certificate_pem(certificate))
    validity = json.loads(_run("validity", str(tmp_path / "node.pem")).stdout)
    assert validity["subject"] == "CN=node-1" and validity["serial"] == format(certificate.serial_number, "x")
    assert validity["not_after"] == certificate.not_valid_after_utc.timestamp()
    assert validity["renew_at"] == validity["not_before"] + (validity["not_after"] - validity["not_before"]) * 2 / 3


def test_a_key_file_of_another_kind_is_refused_and_kept(tmp_path: Path) -> None:
    key = tmp_path / "node-key.pem"
    key.write_text("not a key\n")
    done = _run("request", str(key), "node-1")
    assert done.returncode == 1 and "is not a readable private key" in done.stderr and str(key) in done.stderr
    assert key.read_text() == "not a key\n"
    bad = _run("validity", str(key))
    assert bad.returncode == 1 and "not a PEM certificate" in bad.stderr
    assert _run("sign").returncode == 2
