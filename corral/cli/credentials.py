"""The one place the CLI finds what it talks to the manager with: the URL, the API token, the CA to trust.

First found, for each:

- the URL: `--manager` or `CORRAL_MANAGER`; else the manager of the last
  `corral login`; else https://127.0.0.1:7070 (`corral up`'s).
- the token: `CORRAL_TOKEN`; else the one `corral login URL` stored for that
  URL; else, for a manager on this machine (loopback), the admin token in its
  data dir (`CORRAL_DATA_DIR`, else ~/.corral: `corral up`'s default).
- the CA: `--ca` or `CORRAL_CA`; else the one `corral login` pinned for the
  URL; else the data dir's `ca.pem` for a manager on this machine; else the
  system's CAs (trust.py).

The profile (`$CORRAL_CONFIG`, else ~/.config/corral/credentials.json,
0600) keeps, per manager URL, the token and the CA certificate pinned at
login, as ssh's known_hosts keeps a host key: `corral login` shows the CA's
fingerprint and asks before it trusts it, and refuses a CA that differs from
the pinned one (a new cluster at the same address, or somebody in between)
until the user logs out of it.
"""

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.cli import trust
from corral.client import ApiError
from corral.pki.tls import client_context
from corral.pki.files import write_private

if TYPE_CHECKING:
    from corral.client import ManagerClient, PlainClient

DEFAULT_MANAGER = "https://127.0.0.1:7070"
ADMIN_TOKEN_FILE = "admin-token"  # what the manager writes in its data dir (corral/manager/access/tokens.py)


def profile_path() -> Path:
    configured = os.environ.get("CORRAL_CONFIG")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "corral" / "credentials.json"


@dataclass(frozen=True)
class Login:
    """What `corral login` stored for one manager URL."""

    token: str
    ca_pem: str | None  # None: the manager's certificate is checked against the system's CAs

    @property
    def fingerprint(self) -> str | None:
        return fingerprint_of(self.ca_pem.encode()) if self.ca_pem else None


def fingerprint_of(pem: bytes) -> str:
    from cryptography import x509  # only `corral login` and its errors show fingerprints: no cryptography for other commands

    from corral.pki.authority import ca_fingerprint

    return ca_fingerprint(x509.load_pem_x509_certificate(pem))


def read_profile() -> dict[str, Any]:
    path = profile_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"current": None, "managers": {}}
    except (OSError, ValueError) as err:
        raise ApiError(f"cannot read the CLI's credentials {path}: {err} (remove it and `corral login` again)") from None
    return {"current": data.get("current"), "managers": dict(data.get("managers") or {})}


def write_profile(profile: dict[str, Any]) -> Path:
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, (json.dumps(profile, indent=2) + "\n").encode())
    return path


def login_for(url: str) -> Login | None:
    found = read_profile()["managers"].get(_key(url))
    return Login(token=found["token"], ca_pem=found.get("ca_pem")) if found else None


def manager_url(value: str | None) -> str:
    return value or os.environ.get("CORRAL_MANAGER") or read_profile()["current"] or DEFAULT_MANAGER


def token_for(url: str) -> str | None:
    if os.environ.get("CORRAL_TOKEN"):
        return os.environ["CORRAL_TOKEN"].strip()
    login = login_for(url)
    if login is not None:
        return login.token
    local = trust.data_dir() / ADMIN_TOKEN_FILE
    if trust.on_this_machine(url) and os.access(local, os.R_OK):
        return local.read_text().strip() or None
    return None


def verify_for(url: str) -> ssl.SSLContext | bool:
    if not os.environ.get("CORRAL_CA"):
        login = login_for(url)
        if login is not None and login.ca_pem and url.startswith("https://"):
            return client_context(login.ca_pem.encode())
    return trust.verify_for(url)


def client(manager: str | None, timeout: float = 30.0) -> "ManagerClient":
    """A client for the manager, with the token and CA found as the module's docstring says."""
    from corral.client import ManagerClient  # httpx: not for the commands that use `plain_client`

    return ManagerClient(**found(manager), timeout=timeout)


def plain_client(manager: str | None, timeout: float = 30.0) -> "PlainClient":
    """The blocking standard-library client of one-off listings (corral/client/plain.py), found as `client`'s."""
    from corral.client import PlainClient

    return PlainClient(**found(manager), timeout=timeout)


def found(manager: str | None) -> dict[str, Any]:
    """What either client is built with: the manager's `url`, the `token`, and what to `verify` it with."""
    url = manager_url(manager)
    return {"url": url, "token": token_for(url), "verify": verify_for(url)}


def explain(err: ApiError, url: str) -> str:
    """An error, with what to do about credentials when they are the problem."""
    message = str(err)
    login = login_for(url)
    if "CERTIFICATE_VERIFY_FAILED" in message and login is not None and login.fingerprint and not os.environ.get("CORRAL_CA"):
        return (f"the manager at {url} no longer presents a certificate of the CA pinned at `corral login` "
                f"(fingerprint {login.fingerprint}): a new cluster at that address, or somebody in between. "
                f"If you expected it, `corral logout {url}` and `corral login` again")
    if err.status == 401 and not token_for(url):
        return f"{message}. Set CORRAL_TOKEN, or `corral login {url} --token TOKEN` (an admin gets one with `corral token create`)"
    return message


def _key(url: str) -> str:
    return url.rstrip("/")
