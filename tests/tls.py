"""How test harnesses trust a real manager's HTTPS API: the cluster CA it wrote in its data dir."""

import ssl
from pathlib import Path

from corral.pki import CA_CERT_FILE, client_context


def ca_file(data_dir: Path) -> Path:
    return data_dir / CA_CERT_FILE


def verify(data_dir: Path) -> ssl.SSLContext:
    """httpx's `verify=` for the manager whose data dir this is: its cluster CA, and only it."""
    return client_context(ca_file(data_dir).read_bytes())
