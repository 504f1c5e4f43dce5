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
once the node certificate is in hand. The HTTP server (uvicorn, node_server.py)
and the app are loaded when the first connection waits on the socket: most
agents are asked for logs or exec rarely, and the kernel holds a connection in
the socket's backlog meanwhile. The certificate and key are read at once, so a
bad pair is refused when the agent starts, not at the first connection.
"""

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.pki.files import write_public

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

log = logging.getLogger(__name__)

DEFAULT_PORT = 7072

AppMaker = Callable[[], "Starlette"]  # the app to serve, made at the first connection


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
        self._server: "uvicorn.Server | None" = None
        self._task: asyncio.Task[None] | None = None
        self._waiting = False  # for the first connection

    @property
    def loaded(self) -> bool:
        """The HTTP server has been made (a connection came)."""
        return self._server is not None

    async def serve(self, app: AppMaker, cert_file: Path, key_file: Path, ca_pem: bytes) -> None:
        """Serve the app `app` makes with the node's certificate, to the manager only, from the first connection on."""
        ca_file = cert_file.with_name("cluster-ca.pem")
        write_public(ca_file, ca_pem)
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)  # a bad pair raises now
        self._serve_from_first_connection(
            app, manager_only=True, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file), ssl_ca_certs=str(ca_file),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )

    async def serve_plain(self, app: AppMaker) -> None:
        """Serve the app `app` makes over plain HTTP (the agent's /metrics, as Prometheus scrapes node exporters)."""
        self._serve_from_first_connection(app, manager_only=False)

    def _serve_from_first_connection(self, app: AppMaker, manager_only: bool, **options: Any) -> None:
        loop = asyncio.get_running_loop()

        def connecting() -> None:
            loop.remove_reader(self._socket.fileno())
            self._waiting = False
            self._task = asyncio.create_task(self._serve(app, manager_only, options), name=f"listener :{self.port}")

        loop.add_reader(self._socket.fileno(), connecting)
        self._waiting = True

    async def _serve(self, app: AppMaker, manager_only: bool, options: dict[str, Any]) -> None:
        from corral.agent.node_server import node_server  # uvicorn, starlette: at the first connection only

        self._server = node_server(app(), manager_only, **options)
        try:
            await self._server.serve(sockets=[self._socket])
        except Exception:
            log.exception("the listener on port %d stopped", self.port)
            raise

    async def close(self) -> None:
        if self._waiting:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._waiting = False
        if self._task is not None:
            if self._server is not None:
                self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 3)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:  # logged by _serve
                pass
        self._socket.close()
