import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster


def _docker_ready() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "image", "inspect", "corral-demo:latest"], capture_output=True).returncode == 0


@pytest.fixture(scope="session", autouse=True)
def _require_docker() -> None:
    if not _docker_ready():
        pytest.fail("end-to-end tests need a running Docker engine and the corral-demo image: run `make setup`")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster")
    try:
        yield running.start()
    finally:
        running.cleanup()


@pytest.fixture
def compose_file(tmp_path: Path):
    def write(text: str, name: str = "compose.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
