"""The HTTP server behind the node listener (node_listener.py): uvicorn, loaded at the listener's first connection.

Kept apart so that an agent nobody connects to (no logs asked, no exec, no /metrics scrape, no autoscaled service
read) never loads uvicorn, starlette and the node API: about 4 MiB of an idle agent's memory.
"""

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from corral.pki.peers import is_manager_peer


class ManagerOnlyProtocol(H11Protocol):
    """uvicorn's HTTP/1.1, for the manager's client certificate only (the TLS layer checked it chains to the CA)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn declares it
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None or not is_manager_peer(ssl_object.getpeercert()):
            transport.close()


class AgentServer(uvicorn.Server):
    """uvicorn's server, leaving the process's signals alone: the agent stops on SIGTERM and closes its listeners
    itself (uvicorn would install its own handlers whenever the first connection starts the server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def node_server(app: Starlette, manager_only: bool, **options: Any) -> uvicorn.Server:
    """A uvicorn server of `app` (options as `uvicorn.Config` takes them); `manager_only`: the manager's certificate only."""
    if manager_only:
        options["http"] = ManagerOnlyProtocol
    return AgentServer(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, **options))
