"""`corral login|logout|whoami` and `corral token create|ls|revoke`: who the CLI is, and the cluster's API tokens.

`login` is how a machine other than the manager's gets in: it fetches the
cluster CA without trusting the connection, shows its fingerprint and asks
(as ssh does for a new host key) unless `--ca FILE` names it or `--yes`;
then checks the token with /v1/whoami over TLS pinned to that CA, and only
then stores both (corral/cli/credentials.py). A token is printed once, by
`token create`, and never again.
"""

import asyncio
import sys
import time
from pathlib import Path

import httpx
import typer

from corral.cli import credentials
from corral.cli.output import ManagerOption, OutputOption, ago, call, check_output, duration, emit, emit_one, errors, fail
from corral.client import ApiError, ManagerClient
from corral.pki import client_context

token_app = typer.Typer(help="API tokens: who may use the API, with which role (admin only).", no_args_is_help=True)


@token_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="what the token is for (unique among the tokens not revoked): ci, alice..."),
    role: str = typer.Option(..., "--role", help="viewer (read only), deployer (stacks, services, images, secrets) or admin"),
    expires: str | None = typer.Option(None, "--expires", help="lifetime, e.g. 30d, 12h (default: never expires)"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """Make a token and print it, this once: it is stored hashed and cannot be shown again."""
    check_output(output)
    body = {"name": name, "role": role, "expires_in": duration(expires, "--expires") if expires else None}
    made = call(manager, lambda c: c.post("/v1/tokens", body))
    if output == "json":
        emit_one(made)
        return
    typer.echo(made["token"])
    until = f", expires {time.strftime('%Y-%m-%d %H:%M', time.localtime(made['expires_at']))}" if made["expires_at"] else ""
    errors.print(f"token {made['name']} ({made['role']}{until}): shown this once, keep it safe", highlight=False)


@token_app.command("ls")
def list_tokens(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List the tokens (never their secrets), revoked and expired ones included."""
    check_output(output)
    rows = call(manager, lambda c: c.get("/v1/tokens"))
    emit(rows, output, [
        ("NAME", lambda r: r["name"]), ("ID", lambda r: r["id"]), ("ROLE", lambda r: r["role"]), ("STATE", lambda r: r["state"]),
        ("CREATED", lambda r: ago(r["created_at"])),
        ("EXPIRES", lambda r: time.strftime("%Y-%m-%d %H:%M", time.localtime(r["expires_at"])) if r["expires_at"] else "never"),
    ])


@token_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="the token's name (or id)"), manager: str | None = ManagerOption) -> None:
    """Revoke a token: refused from its next request on."""
    revoked = call(manager, lambda c: c.request("DELETE", f"/v1/tokens/{name}"))
    typer.echo(f"revoked {revoked['name']} ({revoked['id']})")


def whoami(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """The token the CLI uses: its name, role and expiry."""
    check_output(output)
    me = call(manager, lambda c: c.get("/v1/whoami"))
    if output == "json":
        emit_one(me)
    else:
        typer.echo(f"{me['name']} ({me['role']}) at {credentials.manager_url(manager)}")


def login(
    url: str = typer.Argument(..., help="the manager's URL, e.g. https://10.0.0.1:7070"),
    token: str | None = typer.Option(None, "--token", envvar="CORRAL_TOKEN", help="an API token (`corral token create`)"),
    token_file: Path | None = typer.Option(None, "--token-file", help="read the token from FILE (keeps it out of `ps`)"),
    ca: Path | None = typer.Option(None, "--ca", help="trust this CA certificate file (the cluster's DATA_DIR/ca.pem) without asking"),
    yes: bool = typer.Option(False, "--yes", "-y", help="trust the CA the manager shows without asking (check its fingerprint!)"),
) -> None:
    """Store a token for URL and pin the cluster CA it shows; later commands use them (and URL by default)."""
    url = url.rstrip("/")
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as err:
            fail(f"--token-file: cannot read {token_file}: {err.strerror or err}")
    if not token:
        fail("missing token: give --token TOKEN or --token-file FILE (an admin makes one with `corral token create`)")
    ca_pem = _ca_to_pin(url, ca, yes) if url.startswith("https://") else None
    verify = client_context(ca_pem.encode()) if ca_pem else True

    async def check() -> dict[str, str]:
        async with ManagerClient(url, token=token, verify=verify) as client:
            me: dict[str, str] = await client.get("/v1/whoami")
            return me

    try:
        me = asyncio.run(check())
    except ApiError as err:
        fail(f"login to {url} refused: {err}")
    profile = credentials.read_profile()
    profile["managers"][url] = {"token": token, "ca_pem": ca_pem}
    profile["current"] = url
    path = credentials.write_profile(profile)
    typer.echo(f"logged in to {url} as {me['name']} ({me['role']}); saved in {path}")


def logout(url: str | None = typer.Argument(None, help="the manager's URL (default: the current one)")) -> None:
    """Forget the token and the pinned CA of URL."""
    profile = credentials.read_profile()
    url = (url or profile["current"] or "").rstrip("/")
    if url not in profile["managers"]:
        fail(f"not logged in to {url or 'any manager'}")
    del profile["managers"][url]
    if profile["current"] == url:
        profile["current"] = None
    credentials.write_profile(profile)
    typer.echo(f"logged out of {url}")


def _ca_to_pin(url: str, ca: Path | None, yes: bool) -> str:
    """The CA certificate (PEM) to pin for `url`: the file given, or the one the manager shows, once accepted."""
    if ca is not None:
        try:
            pem = ca.read_text()
            credentials.fingerprint_of(pem.encode())
        except (OSError, ValueError) as err:
            fail(f"--ca: cannot use {ca}: {err}")
        return pem
    try:
        shown = httpx.get(url + "/v1/agent/ca", verify=False, timeout=10)  # trusted only once its fingerprint is accepted
        pem = shown.text
        fingerprint = credentials.fingerprint_of(pem.encode())
    except (httpx.HTTPError, ValueError) as err:
        fail(f"cannot fetch the cluster CA from {url}: {err} (is it a corral manager? give --ca FILE instead)")
    pinned = credentials.login_for(url)
    if pinned is not None and pinned.fingerprint and pinned.fingerprint != fingerprint:
        fail(f"the cluster CA of {url} CHANGED: pinned {pinned.fingerprint}, now shown {fingerprint}. A new cluster at that "
             f"address, or somebody in between. If you expected it: `corral logout {url}`, then log in again")
    if pinned is not None and pinned.fingerprint == fingerprint:
        return pem
    typer.echo(f"The cluster CA of {url} has the fingerprint\n  sha256:{fingerprint}\n"
               "Compare it with the one the manager's admin sees (`corral join-token` holds it: corral-<fingerprint>-...).")
    if not yes:
        if not sys.stdin.isatty():
            fail("not confirmed: run in a terminal to answer, or pass --ca FILE (or --yes once you checked the fingerprint)")
        if not typer.confirm("Trust this CA?", default=False):
            fail("not trusted: nothing saved")
    return pem
