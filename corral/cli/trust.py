"""Which CA the CLI trusts for the manager's HTTPS API.

First found: `--ca FILE` (before the command: `corral --ca ca.pem service ls`)
or `CORRAL_CA`; else, for a manager on this machine (a loopback address),
the cluster CA in the manager's data dir, `CORRAL_DATA_DIR` or `corral up`'s
default (~/.corral), found the way the local admin token is; else the
system's CAs (a manager given `--tls-cert` from a public CA). The cluster
CA is trusted alone: a certificate from any other CA is refused.
"""

import ipaddress
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from corral.client import ApiError
from corral.pki.files import CA_CERT_FILE
from corral.pki.tls import client_context  # corral.pki's other modules import cryptography: not needed here

DEFAULT_DATA_DIR = Path.home() / ".corral"


def data_dir() -> Path:
    """The data dir of the manager on this machine: `CORRAL_DATA_DIR`, else ~/.corral."""
    return Path(os.environ.get("CORRAL_DATA_DIR") or DEFAULT_DATA_DIR)


def on_this_machine(url: str) -> bool:
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ca_file_for(url: str) -> Path | None:
    """The CA file to trust for `url`, or None (plain HTTP, or the system's CAs). Several managers' URLs: as the first."""
    url = url.split(",")[0].strip()
    if urlsplit(url).scheme != "https":
        return None
    if os.environ.get("CORRAL_CA"):
        return Path(os.environ["CORRAL_CA"])
    local = data_dir() / CA_CERT_FILE
    if on_this_machine(url) and os.access(local, os.R_OK):
        return local
    return None


def verify_for(url: str) -> ssl.SSLContext | bool:
    """What httpx takes as `verify=` to call `url`: the cluster CA's context, or True (the system's CAs)."""
    path = ca_file_for(url)
    if path is None:
        return True
    try:
        return client_context(path.read_bytes())
    except (OSError, ssl.SSLError, ValueError) as err:
        raise ApiError(f"cannot use the CA certificate {path} (CORRAL_CA or --ca): {err}") from None
