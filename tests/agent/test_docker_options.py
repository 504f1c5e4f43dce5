"""ContainerOptions as the Engine API's create body, and the platform check (pure; the e2e test inspects real containers)."""

import pytest

from corral.agent.engines.base import EngineError
from corral.agent.engines.docker_options import create_body
from corral.agent.engines.platforms import check_platform
from corral.model.container import ContainerOptions, Logging, Ulimit


def test_nothing_set_asks_only_for_the_default_stop_signal() -> None:
    assert create_body(ContainerOptions(), {}) == {"StopSignal": "SIGTERM", "HostConfig": {}}


def test_set_options_become_the_body_and_its_host_config() -> None:
    options = ContainerOptions(
        user="1000",
        init=False,
        read_only=True,
        cap_drop=["ALL"],
        tmpfs={"/run": "size=1m"},
        ulimits={"nofile": Ulimit(soft=10, hard=20)},
        logging=Logging(options={"max-size": "1m"}),
        stop_signal="SIGQUIT",
        working_dir="/srv",
        stdin_open=True,
        shm_size=1 << 20,
        dns_opt=["ndots:1"],
    )
    created = create_body(options, {})
    host = created.pop("HostConfig")
    assert created == {"StopSignal": "SIGQUIT", "User": "1000", "WorkingDir": "/srv", "OpenStdin": True}
    assert host == {
        "Init": False, "ShmSize": 1 << 20, "CapDrop": ["ALL"], "Tmpfs": {"/run": "size=1m"}, "DnsOptions": ["ndots:1"],
        "ReadonlyRootfs": True, "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}],
        "LogConfig": {"Type": "", "Config": {"max-size": "1m"}},
    }


def test_the_spec_extra_hosts_come_first_and_are_not_overridden_by_service_names() -> None:
    created = create_body(ContainerOptions(extra_hosts={"db": "10.0.0.9"}), {"db": "10.217.0.2", "api": "10.217.0.3"})
    assert created["HostConfig"]["ExtraHosts"] == ["db:10.0.0.9", "api:10.217.0.3"]


def test_a_platform_is_checked_against_the_engine_by_go_names() -> None:
    check_platform("linux/amd64", "linux/x86_64")
    check_platform("linux/arm64/v8", "linux/aarch64")
    with pytest.raises(EngineError) as caught:
        check_platform("linux/arm64", "linux/x86_64")
    assert caught.value.permanent and "linux/arm64 cannot run on this node (linux/amd64)" in str(caught.value)


def test_privileges_become_the_engine_host_config() -> None:
    options = ContainerOptions(privileged=True, pid="host", ipc="host", uts="host", devices=["/dev/fuse:/dev/fuse:rwm", "/dev/kvm", "/dev/a:/dev/b"])
    host = create_body(options, {})["HostConfig"]
    assert host["Privileged"] is True and host["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b", "CgroupPermissions": "rwm"},
    ]
    assert (host["PidMode"], host["IpcMode"], host["UTSMode"]) == ("host", "host", "host")
    assert create_body(ContainerOptions(), {})["HostConfig"] == {}
