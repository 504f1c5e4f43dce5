"""A node's identity towards the manager: the pinned cluster CA, the node's key and certificate, their renewal.

Over HTTPS (the default), before it trusts anything an agent fetches the
CA certificate from the manager with verification off (that one call) and
checks its sha256 against the digest in its join token
(`JoinToken.verify_ca`): a man in the middle cannot pose as the manager.
From then on it trusts that CA alone. It makes its key (it never leaves
the node; `state_dir/node-key.pem`, 0600), sends a certificate signing
request with its registration and presents the certificate it gets
(`state_dir/node.pem`) as the client certificate of every later call. At
two thirds of the certificate's life it asks for a new one (`renew`),
authenticated by the current one; nothing restarts: the client opens new
connections with the new certificate.

A fleet of nodes in one process shares one identity: its first node's
certificate. Over plain HTTP (a manager started with `--insecure`, on
loopback only) there is nothing to pin and no certificate.

The agent never loads `cryptography` (about 9.5 MiB resident, for work done
at join and renewal): the CA's digest is `hashlib` over `ssl`'s DER, and the
key, the requests and a certificate's validity are made and read by a
short-lived child process (`python -m corral.pki.node_key`).
"""

import asyncio
import hashlib
import json
import logging
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from corral.client import ApiError, ManagerClient
from corral.pki import JoinToken, client_context
from corral.pki.errors import InvalidJoinToken, KeyMaterialError
from corral.pki.files import write_private

log = logging.getLogger(__name__)

KEY_FILE = "node-key.pem"
CERT_FILE = "node.pem"
RETRY = 60.0  # seconds between renewal attempts that failed (a third of the lifetime is left to succeed)


async def node_key(*args: str) -> dict[str, Any]:
    """Run `python -m corral.pki.node_key ARGS` (a short-lived child: this process never loads cryptography) and
    return the JSON it prints; KeyMaterialError with its message when it fails."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "corral.pki.node_key", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    if child.returncode != 0:
        raise KeyMaterialError(err.decode(errors="replace").strip() or f"corral.pki.node_key {args[0]} exited with {child.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


def pem_fingerprint(pem: bytes) -> str:
    """sha256 of a PEM certificate's DER, lowercase hex (what a join token pins); ValueError if it is not one."""
    try:
        der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"not a PEM certificate: {err}") from None
    return hashlib.sha256(der).hexdigest()


async def fetch_pinned_ca(url: str, join_token: str, timeout: float = 10.0) -> bytes:
    """The cluster CA (PEM) served at `url`, checked against the join token's digest (ApiError when refused)."""
    try:
        token = JoinToken.parse(join_token)
    except InvalidJoinToken as err:
        raise ApiError(str(err), 401) from None
    try:
        # The one call without verification: what it returns is trusted only if its digest is the token's.
        async with httpx.AsyncClient(verify=False, timeout=timeout) as http:
            response = await http.get(url.rstrip("/") + "/v1/agent/ca")
    except httpx.TransportError as err:
        raise ApiError(f"cannot reach the manager at {url}: {err or type(err).__name__}") from err
    if response.status_code != 200:
        raise ApiError(f"the manager at {url} serves no cluster CA (HTTP {response.status_code}): is it a corral manager?")
    try:
        digest = pem_fingerprint(response.content)
    except ValueError:
        raise ApiError(f"the manager at {url} served no valid CA certificate") from None
    try:
        token.verify_ca_digest(digest)
    except InvalidJoinToken as err:
        raise ApiError(str(err), 401) from None
    return response.content


class NodeIdentity:
    """The TLS side of an agent (or a fleet): `context` is what its ManagerClient verifies with and presents."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._temporary = state_dir is None  # removed when the agent stops: a new key at the next start
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="corral-node-"))
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The key (KEY_FILE) is made by the first `request`. Made now, filled in by `pin` and `install`: the client made with it connects only after both.
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ca_pem: bytes | None = None
        self.owner: str | None = None  # the node the certificate is for (a fleet's first node)
        self.certificate: bytes | None = None  # PEM; its validity (epoch seconds) below
        self.not_after = self.renew_at = 0.0

    def forget_temporary(self) -> None:
        """Remove the key and certificate files of a temporary state dir (the context keeps what it loaded)."""
        if self._temporary:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @property
    def key_file(self) -> Path:
        return self.state_dir / KEY_FILE

    @property
    def cert_file(self) -> Path:
        return self.state_dir / CERT_FILE

    async def pin(self, url: str, join_token: str) -> None:
        """Trust the manager's CA once it matches the join token (nothing to do over plain HTTP, or when done)."""
        if self.ca_pem is not None or urlsplit(url).scheme != "https":
            return
        urls = [each.strip() for each in url.split(",") if each.strip()]  # several managers: the first that answers
        for at, each in enumerate(urls):
            try:
                ca_pem = await fetch_pinned_ca(each, join_token)
                break
            except ApiError:
                if at == len(urls) - 1:
                    raise
        self.context.load_verify_locations(cadata=ca_pem.decode("ascii"))
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ca_pem = ca_pem

    def wants_certificate(self, node: str, url: str) -> bool:
        """Whether `node`'s registration should carry a request: over TLS, for the identity's own node (or the first)."""
        return urlsplit(url).scheme == "https" and self.owner in (None, node)

    async def request(self, node: str) -> str:
        """A certificate signing request for `node` with this identity's key (PEM; the key is made the first time)."""
        return str((await node_key("request", str(self.key_file), node))["csr"])

    def join_context(self) -> ssl.SSLContext:
        """A context trusting the CA without a client certificate: for a registration before there is one."""
        assert self.ca_pem is not None, "pin() first"
        return client_context(self.ca_pem)

    async def install(self, node: str, certificate_pem: str, client: ManagerClient) -> None:
        """Keep the certificate (0600) and present it from now on: the client's open connections are replaced."""
        write_private(self.cert_file, certificate_pem.encode())
        validity = await node_key("validity", str(self.cert_file))
        self.context.load_cert_chain(self.cert_file, self.key_file)
        self.owner, self.certificate = node, certificate_pem.encode()
        self.not_after, self.renew_at = float(validity["not_after"]), float(validity["renew_at"])
        await client.reconnect()

    def renew_in(self) -> float:
        """Seconds until the certificate is two thirds through its life (0: now)."""
        assert self.certificate is not None
        return max(0.0, self.renew_at - time.time())

    async def renew(self, client: ManagerClient) -> None:
        """A new certificate for the owner node, asked for with the current one."""
        assert self.owner is not None
        reply = await client.post("/v1/agent/renew", {"node": self.owner, "csr": await self.request(self.owner)})
        await self.install(self.owner, str(reply["certificate"]), client)

    async def keep_renewed(self, client: ManagerClient, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Renew at two thirds of each certificate's life, retrying every minute when the manager is away; runs until cancelled."""
        while True:
            if self.certificate is None:
                await sleep(RETRY)
                continue
            await sleep(self.renew_in())
            try:
                await self.renew(client)
                log.info("node %s: certificate renewed, valid until %s", self.owner, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.not_after)))
            except ApiError as err:
                log.warning("node %s: certificate renewal failed (%s); retrying in %.0f s", self.owner, err, RETRY)
                await sleep(RETRY)
