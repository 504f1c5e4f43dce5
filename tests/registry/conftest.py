import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from corral.registry import create_registry_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveRegistry:
    """The registry app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        config = uvicorn.Config(create_registry_app(root), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "LiveRegistry":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "registry did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    """An httpx client talking to the app in-process (no socket)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette would rather have httpx2; httpx is what we have
        from starlette.testclient import TestClient

    with TestClient(create_registry_app(tmp_path / "registry"), base_url="http://registry") as test_client:
        yield test_client


@pytest.fixture
def live_registry(tmp_path: Path) -> Iterator[LiveRegistry]:
    registry = LiveRegistry(tmp_path / "registry").start()
    try:
        yield registry
    finally:
        registry.stop()
