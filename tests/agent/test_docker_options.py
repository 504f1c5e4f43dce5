"""ContainerOptions as the docker SDK's create keywords, and the platform check (pure; the e2e test inspects real containers)."""

import pytest
from docker.types import LogConfig

from corral.agent.engines.base import EngineError
from corral.agent.engines.docker_options import create_options
from corral.agent.engines.platforms import check_platform
from corral.model.container import ContainerOptions, Logging, Ulimit


def test_nothing_set_asks_only_for_the_default_stop_signal() -> None:
    assert create_options(ContainerOptions(), {}) == {"stop_signal": "SIGTERM"}


def test_set_options_become_keywords() -> None:
    options = ContainerOptions(
        user="1000",
        init=False,
        read_only=True,
        cap_drop=["ALL"],
        tmpfs={"/run": "size=1m"},
        ulimits={"nofile": Ulimit(soft=10, hard=20)},
        logging=Logging(options={"max-size": "1m"}),
        stop_signal="SIGQUIT",
    )
    created = create_options(options, {})
    assert created["user"] == "1000" and created["init"] is False and created["read_only"] is True
    assert created["cap_drop"] == ["ALL"] and created["tmpfs"] == {"/run": "size=1m"} and created["stop_signal"] == "SIGQUIT"
    [ulimit] = created["ulimits"]
    assert (ulimit["Name"], ulimit["Soft"], ulimit["Hard"]) == ("nofile", 10, 20)
    assert isinstance(created["log_config"], LogConfig) and created["log_config"]["Config"] == {"max-size": "1m"}
    assert "tty" not in created and "hostname" not in created


def test_the_spec_extra_hosts_come_first_and_are_not_overridden_by_service_names() -> None:
    created = create_options(ContainerOptions(extra_hosts={"db": "10.0.0.9"}), {"db": "10.217.0.2", "api": "10.217.0.3"})
    assert created["extra_hosts"] == ["db:10.0.0.9", "api:10.217.0.3"]


def test_a_platform_is_checked_against_the_engine_by_go_names() -> None:
    check_platform("linux/amd64", "linux/x86_64")
    check_platform("linux/arm64/v8", "linux/aarch64")
    with pytest.raises(EngineError) as caught:
        check_platform("linux/arm64", "linux/x86_64")
    assert caught.value.permanent and "linux/arm64 cannot run on this node (linux/amd64)" in str(caught.value)


def test_privileges_become_the_engine_keywords() -> None:
    options = ContainerOptions(privileged=True, pid="host", ipc="host", uts="host", devices=["/dev/fuse:/dev/fuse:rwm"])
    created = create_options(options, {})
    assert created["privileged"] is True and created["devices"] == ["/dev/fuse:/dev/fuse:rwm"]
    assert (created["pid_mode"], created["ipc_mode"], created["uts_mode"]) == ("host", "host", "host")
    assert not {"privileged", "pid_mode", "ipc_mode", "uts_mode", "devices"} & set(create_options(ContainerOptions(), {}))
