import os
import shutil

import pytest

from tests.chaos.harness import docker_ready


@pytest.fixture(scope="session", autouse=True)
def _require_docker_and_root() -> None:
    if not docker_ready():
        pytest.fail("chaos tests need a running Docker engine and the corral-demo image: run `make setup`")
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        pytest.fail("chaos tests need root and iptables (they cut agents off with iptables rules and mount a tmpfs)")
