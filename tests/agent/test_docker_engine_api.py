"""The Docker engine driver over the Engine API (no docker SDK) against the real engine: the container a task becomes
(what `docker inspect` shows of its create body), its listing, exec, stop, removal and volume, and the engine's own
words when it refuses."""

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.agent.engines.base import EngineError, TaskFile
from corral.agent.engines.docker import DockerEngine
from corral.agent.engines.files import filesystem_type
from corral.model import PortSpec, Resources, ServiceSpec, Task, TaskState
from corral.model.container import ContainerOptions, Ulimit
from corral.model.service import FileReference
from corral.model.volume import Mount
from tests.agent.test_docker_events_engine import IMAGE, docker

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster() -> Iterator[str]:
    """A cluster id of this test's own; its containers, volumes and networks go afterwards, whatever happened."""
    cluster_id = f"api-{uuid.uuid4().hex[:8]}"
    yield cluster_id
    for kind, remove in (("container", ["rm", "-f"]), ("volume", ["rm", "-f"]), ("network", ["rm"])):
        found = docker(kind, "ls", "-aq" if kind == "container" else "-q", "--filter", f"label=corral.cluster={cluster_id}").split()
        if found:
            subprocess.run(["docker", kind, *remove, *found], capture_output=True)


def task(spec: ServiceSpec, task_id: str = "t1") -> Task:
    return Task(
        id=task_id, service="web", stack="shop", slot=1, node="n1", state=TaskState.assigned, spec=spec,
        created_at=0.0, updated_at=0.0,
    )


def inspect(container_id: str) -> dict[str, Any]:
    [found] = json.loads(docker("inspect", container_id))
    return dict(found)


async def test_a_task_becomes_the_container_its_spec_asks_for_and_goes_again(cluster: str, tmp_path: Path) -> None:
    engine = DockerEngine(cluster, "n1", files_root=tmp_path)
    engine.use_dns("127.0.0.53")
    spec = ServiceSpec(
        name="web", stack="shop", image=IMAGE, command=["httpd", "-f", "-p", "8080"], environment={"MODE": "test"},
        labels={"team": "a"}, ports=[PortSpec(target=8080)], limits=Resources(cpus=0.5, memory=64 * 2**20),
        reservations=Resources(memory=32 * 2**20),
        volumes=[
            Mount(type="volume", source="shop_data", target="/data", nocopy=True),
            Mount(type="tmpfs", target="/scratch", tmpfs_size=2**20),
        ],
        container=ContainerOptions(
            working_dir="/tmp", cap_drop=["NET_RAW"], ulimits={"nofile": Ulimit(soft=512, hard=1024)},
            extra_hosts={"db": "10.0.0.9"}, dns=["10.0.0.53"], stop_signal="SIGTERM", init=True,
        ),
    )
    secret = TaskFile("secret", FileReference(source="key", target="/run/secrets/key"), b"s3cret")
    try:
        started = await engine.start(task(spec), "127.0.0.1", {"api": "10.0.0.3"}, [secret])
        assert started.running and started.task_id == "t1" and started.ip
        [port] = started.ports
        assert (port.target, port.host_ip) == (8080, "127.0.0.1") and port.host_port > 0

        attrs = inspect(started.id)
        config, host = attrs["Config"], attrs["HostConfig"]
        assert attrs["Name"] == "/web.1.t1" and config["Cmd"] == ["httpd", "-f", "-p", "8080"] and "MODE=test" in config["Env"]
        assert config["Labels"]["team"] == "a" and config["Labels"]["corral.cluster"] == cluster and config["WorkingDir"] == "/tmp"
        assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"]) == (500_000_000, 64 * 2**20, 32 * 2**20)
        assert host["RestartPolicy"]["Name"] == "no" and host["CapDrop"] == ["NET_RAW"] and host["Init"] is True
        assert host["Dns"] == ["127.0.0.53", "10.0.0.53"] and host["ExtraHosts"] == ["db:10.0.0.9", "api:10.0.0.3"]
        assert host["Ulimits"] == [{"Name": "nofile", "Soft": 512, "Hard": 1024}]
        assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": ""}]
        mounts = {m["Target"]: m for m in host["Mounts"]}
        assert mounts["/data"]["Source"] == "shop_data.1" and mounts["/data"]["VolumeOptions"] == {"NoCopy": True}
        assert mounts["/scratch"]["TmpfsOptions"] == {"SizeBytes": 2**20}
        assert mounts["/run/secrets/key"]["Type"] == "bind" and mounts["/run/secrets/key"]["ReadOnly"] is True
        volume = json.loads(docker("volume", "inspect", "shop_data.1"))[0]
        assert volume["Labels"]["corral.cluster"] == cluster and volume["Labels"]["corral.slot"] == "1"

        [listed] = await engine.list()
        assert listed.id == started.id and listed.running and listed.ports == started.ports

        code, output = await engine.exec(started.id, ["sh", "-c", "cat /run/secrets/key; echo oops >&2; exit 3"], 10)
        assert code == 3 and "s3cret" in output and "oops" in output
        code, output = await engine.exec(started.id, ["no-such-command"], 10)
        assert code != 0

        stopped = await engine.stop(started.id, 1)
        assert not stopped.running and stopped.exit_code is not None
        await engine.remove(started.id)
        assert docker("ps", "-aq", "--filter", f"id={started.id}") == ""
        await engine.remove(started.id)  # gone already: nothing to do
        assert (await engine.stop(started.id, 1)).error == "container gone"
        assert await engine.list() == []
        await engine.remove_volume("shop_data.1")
        assert docker("volume", "ls", "-q", "--filter", "name=^shop_data.1$") == ""

        # Refusals in the engine's own words, and nothing left behind.
        with pytest.raises(EngineError) as refused:
            await engine.start(task(spec.model_copy(update={"image": "127.0.0.1:9/nothing:1", "volumes": []}), "t2"), "127.0.0.1")
        assert "cannot pull image 127.0.0.1:9/nothing:1" in str(refused.value) and "127.0.0.1:9" in str(refused.value).split(":", 1)[1]
        bad = spec.model_copy(update={"volumes": [], "container": ContainerOptions(cap_add=["NOT_A_CAPABILITY"])})
        with pytest.raises(EngineError) as refused:
            await engine.start(task(bad, "t3"), "127.0.0.1")
        assert "cannot create container" in str(refused.value) and "NOT_A_CAPABILITY" in str(refused.value)
        assert await engine.list() == []
    finally:
        await engine.close()
        # the engine mounted a tmpfs for the task's secret files on the files root
        while filesystem_type(tmp_path) == "tmpfs" and str(tmp_path) in Path("/proc/self/mounts").read_text():
            if subprocess.run(["umount", str(tmp_path)], capture_output=True).returncode != 0:
                break
