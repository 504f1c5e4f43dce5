"""Serving the image registry (corral.registry) next to the manager's API, on its own address.

Every request needs credentials (registry_access.py: an API token, or a
node's credential to pull). On a loopback address it serves plain HTTP:
Docker treats 127.0.0.0/8 as an insecure registry and logs in over HTTP
there, and nothing leaves the machine. On any other address it serves TLS
with the manager's certificate from the cluster CA, so the credentials are
never sent in clear; Docker then needs the CA once:
`/etc/docker/certs.d/HOST:PORT/ca.crt` (a copy of DATA_DIR/ca.pem).
"""

import asyncio
import ipaddress
import logging
import socket
from typing import Any

import uvicorn

from corral.manager.settings import ManagerSettings
from corral.registry import create_registry_app
from corral.registry.access import Authorizer
from corral.registry.replication import PeerRegistries

log = logging.getLogger(__name__)


def split_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); ValueError naming the problem otherwise."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid registry address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def startup_line(host: str, port: int) -> str:
    if is_loopback(host):
        return f"corral registry serving on http://{host}:{port} (loopback only; `docker login {host}:{port} -u corral -p TOKEN`)"
    return (
        f"corral registry serving on https://{host}:{port} (cluster CA: copy DATA_DIR/ca.pem to "
        f"/etc/docker/certs.d/{host}:{port}/ca.crt, then `docker login {host}:{port} -u corral -p TOKEN`)"
    )


class RegistryServer:
    """The registry app under its own uvicorn server; `start` returns once it is serving."""

    def __init__(self, settings: ManagerSettings, authorize: Authorizer, tls: dict[str, Any], peers: PeerRegistries | None = None) -> None:
        """`tls`: uvicorn's TLS options (the manager's certificate), used unless the registry listens on loopback;
        `peers`: the other managers' registries (several managers on etcd)."""
        assert settings.registry_listen is not None
        self.host, self.port = split_listen(settings.registry_listen)
        config = uvicorn.Config(
            create_registry_app(settings.registry_root, authorize, peers), host=self.host, port=self.port,
            log_level="error", lifespan="off", timeout_graceful_shutdown=1,
            **({} if is_loopback(self.host) else {**tls, "ssl_cert_reqs": 0}),
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
