"""The agent's node listener: where the manager reaches the agent (log streams, exec), over mutual TLS.

Agents call the manager for everything else (link.py); for streams the
manager must open the connection, so each agent listens on its node address
(`--node-port`, default 7072; `corral up` takes a free port) and tells
the manager the port when it registers. The listener presents the node
certificate (the CA signed it for server use, SAN = the node name: the
manager checks that name) and requires a client certificate of the cluster
CA: a connection is closed unless that certificate is the manager's
(`corral.pki.manager_certs`; no node can hold one). Without a node
certificate (a manager run with `--insecure`) the agent serves nothing.

The socket is bound before registration (so the port is known), and served
once the node certificate is in hand.
"""

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from corral.pki.files import write_public
from corral.pki.peers import is_manager_peer

DEFAULT_PORT = 7072


class ManagerOnlyProtocol(H11Protocol):
    """uvicorn's HTTP/1.1, for the manager's client certificate only (the TLS layer checked it chains to the CA)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn declares it
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None or not is_manager_peer(ssl_object.getpeercert()):
            transport.close()


class NodeListener:
    def __init__(self, address: str, port: int, option: str = "--node-port") -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((address, port))
        except OSError as err:
            self._socket.close()
            raise OSError(f"{option}: cannot listen on {address}:{port}: {err.strerror or err}") from None
        self._socket.listen(128)
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def serve(self, app: Starlette, cert_file: Path, key_file: Path, ca_pem: bytes) -> None:
        """Serve `app` with the node's certificate, to the manager only; returns once it is serving."""
        ca_file = cert_file.with_name("cluster-ca.pem")
        write_public(ca_file, ca_pem)
        await self._serve(
            app, http=ManagerOnlyProtocol, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file), ssl_ca_certs=str(ca_file),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )

    async def serve_plain(self, app: Starlette) -> None:
        """Serve `app` over plain HTTP (the agent's /metrics, as Prometheus scrapes node exporters)."""
        await self._serve(app)

    async def _serve(self, app: Starlette, **options: Any) -> None:
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, **options)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name=f"listener :{self.port}")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 3)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        self._socket.close()
