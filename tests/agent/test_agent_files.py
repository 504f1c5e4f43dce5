"""A task's secrets and configs: fetched from the manager (agent/secrets.py), written on the host's tmpfs with
their owner and mode (engines/files.py), and removed with the task."""

import base64
import stat
from pathlib import Path
from typing import Any

import pytest

from corral.agent.engines.base import EngineError, TaskFile
from corral.agent.engines.files import TaskFiles, filesystem_type
from corral.agent.secrets import task_files
from corral.client import ApiError
from corral.model import FileReference, ServiceSpec, Task

VALUE = b"s3cret-\x00-value"


def _file(kind: str, source: str, target: str, **fields: Any) -> TaskFile:
    return TaskFile(kind, FileReference(source=source, target=target, **fields), VALUE)  # type: ignore[arg-type]


def test_the_file_system_of_a_path_is_that_of_the_deepest_mount_above_it(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 252:0 / / rw - ext4 /dev/vda rw\n"
        "30 22 0:25 / /run rw - tmpfs tmpfs rw\n"
        "31 30 0:26 / /run/with\\040space rw shared:1 - tmpfs tmpfs rw\n"
        "32 22 0:27 / /runner rw - xfs /dev/vdb rw\n"
    )
    assert filesystem_type(Path("/run/corral/secrets"), mountinfo) == "tmpfs"
    assert filesystem_type(Path("/runner/x"), mountinfo) == "xfs"
    assert filesystem_type(Path("/run/with space/a"), mountinfo) == "tmpfs"
    assert filesystem_type(Path("/var/lib"), mountinfo) == "ext4"


def test_files_are_written_with_their_mode_and_owner_in_a_private_directory(tmp_path: Path) -> None:
    ensured: list[Path] = []
    files = TaskFiles(tmp_path / "secrets", "c1", "n1", ensure=ensured.append)
    written = files.write("t1", [
        _file("secret", "db", "/run/secrets/db", mode=0o400, uid="1234", gid="5678"),
        _file("config", "site", "/etc/site.conf"),
        _file("secret", "db", "/run/secrets/db-again"),
    ])
    assert ensured == [tmp_path / "secrets"]
    assert [path.name for path, _ in written] == ["secret-0", "config-0", "secret-1"]  # names that tell nothing
    first = written[0][0].stat()
    assert stat.S_IMODE(first.st_mode) == 0o400 and (first.st_uid, first.st_gid) == (1234, 5678)
    assert stat.S_IMODE(written[1][0].stat().st_mode) == 0o444 and written[1][0].read_bytes() == VALUE
    for directory in (tmp_path / "secrets" / "c1", tmp_path / "secrets" / "c1" / "n1", written[0][0].parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert VALUE not in repr(written).encode()  # a file's value stays out of logs and tracebacks


def test_a_tasks_files_go_with_it_and_a_sweep_removes_what_a_crash_left(tmp_path: Path) -> None:
    files = TaskFiles(tmp_path, "c1", "n1", ensure=lambda _: None)
    for task_id in ("t1", "t2", "t3"):
        files.write(task_id, [_file("secret", "db", "/run/secrets/db")])
    files.remove("t1")
    files.remove("..")  # never outside the node's directory
    assert sorted(p.name for p in files.base.iterdir()) == ["t2", "t3"]
    assert files.sweep({"t3"}) == ["t2"] and [p.name for p in files.base.iterdir()] == ["t3"]
    assert TaskFiles(tmp_path, "c1", "other").sweep(set()) == []


class FakeClient:
    def __init__(self, refuse: int = 0) -> None:
        self.calls: list[str] = []
        self.refuse = refuse

    async def get(self, path: str, **_: Any) -> dict[str, str]:
        self.calls.append(path)
        if self.refuse:
            raise ApiError("no task assigned to node 'n1' uses it", self.refuse)
        return {"data": base64.b64encode(VALUE + path.encode()).decode()}


def _task() -> Task:
    spec = ServiceSpec(
        name="app_web", image="img",
        secrets=[FileReference(source="db", target="/run/secrets/db"), FileReference(source="db", target="/run/secrets/x")],
        configs=[FileReference(source="site", target="/site")],
    )
    return Task(id="t1", service="app_web", slot=1, spec=spec, created_at=0.0, updated_at=0.0)


async def test_a_tasks_values_are_fetched_once_each_from_its_nodes_route() -> None:
    client = FakeClient()
    files = await task_files(client, "n1", _task())  # type: ignore[arg-type]
    assert client.calls == ["/v1/agent/n1/secrets/db", "/v1/agent/n1/configs/site"]
    assert [(f.kind, f.reference.target) for f in files] == [("secret", "/run/secrets/db"), ("secret", "/run/secrets/x"), ("config", "/site")]
    assert files[0].data == VALUE + b"/v1/agent/n1/secrets/db"


@pytest.mark.parametrize(("status", "permanent"), [(403, False), (404, True), (0, False)])
async def test_a_value_that_cannot_be_fetched_fails_the_start(status: int, permanent: bool) -> None:
    with pytest.raises(EngineError, match="cannot fetch secret 'db'") as raised:
        await task_files(FakeClient(refuse=status or 500), "n1", _task())  # type: ignore[arg-type]
    assert raised.value.permanent is permanent
