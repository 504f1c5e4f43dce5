"""--allow-privileged end to end on real containers: with it, a service runs in the node's pid namespace with a
host device and SYS_ADMIN (as `docker inspect` and the container itself show), and a privileged service's
container is created with Privileged=true; network_mode: host stays refused; the same manager restarted without
the option refuses the file, naming the option.

The test machine's Docker cannot start a privileged container ("unable to apply caps: operation not permitted",
a nested engine), so for `privileged: true` the test checks what corral controls: the engine got Privileged=true.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.cluster import Cluster, wait_until

PRIVILEGED = """
services:
  web:
    image: corral-demo:latest
    pid: host
    devices: ["/dev/null:/dev/nothing"]
    cap_add: [SYS_ADMIN]
  root:
    image: corral-demo:latest
    privileged: true
"""
HOST_NETWORK = """
services:
  web:
    image: corral-demo:latest
    network_mode: host
"""


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[list[Cluster]]:
    started: list[Cluster] = []
    try:
        yield started
    finally:
        for cluster in started:
            cluster.cleanup()


def test_privileged_service_only_on_a_manager_that_allows_it(tmp_path: Path, clusters: list[Cluster], compose_file) -> None:  # type: ignore[no-untyped-def]
    privileged, host_network = compose_file(PRIVILEGED), compose_file(HOST_NETWORK, "host.yaml")
    data = tmp_path / "cluster"
    allowing = Cluster(data, nodes=1, first_address="127.0.0.61", extra=["--allow-privileged"])
    clusters.append(allowing)
    allowing.start()

    allowing.cli("deploy", "-c", str(privileged), "-n", "priv")
    allowing.wait_running("priv_web", 1)
    [container] = allowing.containers(service="priv_web")
    host = docker.from_env().api.inspect_container(container.id)["HostConfig"]
    assert host["PidMode"] == "host" and host["CapAdd"] == ["SYS_ADMIN"] and host["Privileged"] is False, host
    assert [d["PathOnHost"] + ">" + d["PathInContainer"] for d in host["Devices"]] == ["/dev/null>/dev/nothing"]
    rooted = wait_until(lambda: allowing.containers(service="priv_root"), 45, what="a container of priv_root")
    assert docker.from_env().api.inspect_container(rooted[0].id)["HostConfig"]["Privileged"] is True
    # The node's processes are the container's: PID 1 is the host's init, not the image's httpd
    first = subprocess.run(["docker", "exec", container.id, "cat", "/proc/1/comm"], capture_output=True, text=True, timeout=30)
    assert first.returncode == 0 and first.stdout.strip() != "httpd", first

    refused = allowing.cli("deploy", "-c", str(host_network), "-n", "net", check=False)
    assert refused.returncode != 0 and "services.web.network_mode" in refused.stderr and "publish the ports" in refused.stderr, refused.stderr

    # The same data dir, the manager without the option: the file is refused, naming the option
    allowing.stop()
    plain = Cluster(data, nodes=1, first_address="127.0.0.61")
    clusters.append(plain)
    plain.start()
    again = plain.cli("deploy", "--dry-run", "-c", str(privileged), "-n", "other", check=False)
    assert again.returncode != 0, again.stdout
    assert "services.root.privileged" in again.stderr and "services.web.pid" in again.stderr
    assert "services.web.devices" in again.stderr and "services.web.cap_add[0]" in again.stderr and "--allow-privileged" in again.stderr
    assert "root on every node" in again.stderr
