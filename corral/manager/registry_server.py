"""Serving the image registry (corral.registry) next to the manager's API, on its own address.

The registry has no access control yet (that comes with tokens): it is meant
to listen on loopback, and its start-up line says so.
"""

import asyncio
import ipaddress
import logging
import socket

import uvicorn

from corral.manager.settings import ManagerSettings
from corral.registry import create_registry_app

log = logging.getLogger(__name__)


def split_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); ValueError naming the problem otherwise."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid registry address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def startup_line(host: str, port: int) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    where = "loopback only" if loopback else "NOT loopback: anyone who can reach it"
    return f"corral registry serving on http://{host}:{port} ({where}; no access control, anyone can push and pull)"


class RegistryServer:
    """The registry app under its own uvicorn server; `start` returns once it is serving."""

    def __init__(self, settings: ManagerSettings) -> None:
        assert settings.registry_listen is not None
        self.host, self.port = split_listen(settings.registry_listen)
        config = uvicorn.Config(
            create_registry_app(settings.registry_root), host=self.host, port=self.port,
            log_level="error", lifespan="off", timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        # No install_signal_handlers override: uvicorn (>= 0.29) has no such hook; it captures SIGINT/SIGTERM only while
        # serve() runs and raises them again when it returns, so the process's own handlers still see them.
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind (OSError naming the address when that fails), then serve."""
        try:
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.create_server((self.host, self.port), family=family)
        except OSError as err:
            raise OSError(f"the registry cannot listen on {self.host}:{self.port}: {err.strerror or err}") from err
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="registry")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"the registry stopped while starting on {self.host}:{self.port}")
            await asyncio.sleep(0.02)
        print(startup_line(self.host, self.port), flush=True)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, 3)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
