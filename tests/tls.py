"""How test harnesses reach a real manager's HTTPS API: the cluster CA and the admin token it wrote in its data dir."""

import os
import ssl
import time
from pathlib import Path

from corral.pki import CA_CERT_FILE, client_context
from corral.store import Store


def ca_file(data_dir: Path) -> Path:
    return data_dir / CA_CERT_FILE


def verify(data_dir: Path) -> ssl.SSLContext:
    """httpx's `verify=` for the manager whose data dir this is: its cluster CA, and only it."""
    return client_context(ca_file(data_dir).read_bytes())


def admin_token(data_dir: Path) -> str:
    """The admin API token the manager wrote in its data dir at start (DATA_DIR/admin-token)."""
    return (data_dir / "admin-token").read_text().strip()


def admin_headers(data_dir: Path) -> dict[str, str]:
    """`headers=` for an httpx client that calls the API as the cluster's admin."""
    return {"Authorization": f"Bearer {admin_token(data_dir)}"}


async def new_admin_headers(store: Store) -> dict[str, str]:
    """For an app made with create_app(ctx) alone (no manager start, so no admin-token file): an admin token made in its store."""
    from corral.manager.access.roles import Role
    from corral.manager.access.tokens import create_token

    text, _ = await create_token(store, "test-admin", Role.admin, time.time())
    return {"Authorization": f"Bearer {text}"}


def cli_env(url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a `corral` command for the manager at `url` whose data dir this is: its URL, CA and admin token."""
    return {**os.environ, "CORRAL_MANAGER": url, "CORRAL_CA": str(ca_file(data_dir)), "CORRAL_TOKEN": admin_token(data_dir)}
