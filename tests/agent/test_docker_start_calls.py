"""The engine calls of a start against the real engine: a new stack's first container costs six (image, one listing of
the networks, the network's create, the container's create and start, its inspect), the next one on that network
four; and a network removed behind the agent's back (another agent of the host swept it) costs a start a retry,
not a failure."""

import subprocess
from typing import Any

import pytest

from corral.agent.engines.docker import DockerEngine
from corral.agent.engines.docker_api import EngineAPI
from corral.model import PortSpec, ServiceSpec
from tests.agent.test_docker_engine_api import cluster, inspect, task  # noqa: F401 (the fixture)
from tests.agent.test_docker_events_engine import IMAGE

pytestmark = pytest.mark.e2e


class CountingAPI(EngineAPI):
    """The real engine, each call remembered as METHOD PATH (ids cut to `ID`)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def call(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        parts = path.split("/")
        self.calls.append(f"{method} " + "/".join("ID" if len(part) == 64 else part for part in parts))
        return super().call(method, path, *args, **kwargs)

    def take(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


async def test_a_start_asks_the_engine_only_what_it_does_not_know(cluster: str, tmp_path: Any) -> None:  # noqa: F811
    api = CountingAPI()
    engine = DockerEngine(cluster, "n1", api=api, files_root=tmp_path)
    spec = ServiceSpec(name="web", stack="shop", image=IMAGE, command=["httpd", "-f", "-p", "8080"], ports=[PortSpec(target=8080)])
    try:
        first = await engine.start(task(spec, "t1"), "127.0.0.1")
        assert first.running and first.ports and first.ip
        assert api.take() == [
            "GET /images/corral-demo:latest/json", "GET /networks", "POST /networks/create",
            "POST /containers/create", "POST /containers/ID/start", "GET /containers/ID/json",
        ]
        second = await engine.start(task(spec, "t2"), "127.0.0.1")
        assert second.running and api.take() == [
            "GET /images/corral-demo:latest/json", "POST /containers/create", "POST /containers/ID/start", "GET /containers/ID/json",
        ]
        network = inspect(first.id)["HostConfig"]["NetworkMode"]
        assert inspect(second.id)["HostConfig"]["NetworkMode"] == network

        # Another agent of this host removed the network (its containers gone, no service naming it) and it is
        # needed again: the engine refuses the start of a container on the old id; the agent makes it again.
        for container in (first.id, second.id):
            await engine.remove(container)
        subprocess.run(["docker", "network", "rm", network], check=True, capture_output=True)
        api.take()
        third = await engine.start(task(spec, "t3"), "127.0.0.1")
        assert third.running and inspect(third.id)["HostConfig"]["NetworkMode"] not in (network, "")
        calls = api.take()
        assert calls.count("POST /containers/create") == 2 and calls.count("DELETE /containers/ID") == 1
        assert calls.count("POST /networks/create") == 1 and [c.id for c in await engine.list()] == [third.id]
    finally:
        await engine.close()
