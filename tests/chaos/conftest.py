import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosCluster, docker_ready


@pytest.fixture(scope="session", autouse=True)
def _require_docker_and_root() -> None:
    if not docker_ready():
        pytest.fail("chaos tests need a running Docker engine and the corral-demo image: run `make setup`")
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        pytest.fail("chaos tests need root and iptables (they cut agents off with iptables rules and mount a tmpfs)")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ChaosCluster]:
    """Three nodes on 127.0.0.44-46, each agent behind its own door, down 5 s after its last heartbeat."""
    running = ChaosCluster(tmp_path / "cluster", nodes=3, first_address=44)
    try:
        yield running.start()
    finally:
        running.cleanup()
