"""The deploy policy: keys that would hand a container the node are refused with their path, not dropped,
unless the manager was started with --allow-privileged; then they are honoured (ContainerOptions)."""

import pytest

from corral.compose import parse_compose
from corral.model.errors import InvalidSpec


def _file(service_keys: str) -> str:
    return "services:\n  web:\n    image: app\n" + "".join(f"    {line}\n" for line in service_keys.splitlines())


def _error(service_keys: str, allow_privileged: bool | None = False) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        parse_compose(_file(service_keys), "shop", allow_privileged=allow_privileged)
    return caught.value


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        ("privileged: true", "services.web.privileged"),
        ("pid: host", "services.web.pid"),
        ("ipc: host", "services.web.ipc"),
        ("uts: host", "services.web.uts"),
        ("devices: ['/dev/sda:/dev/sda']", "services.web.devices"),
        ("cap_add: [CHOWN, SYS_ADMIN]", "services.web.cap_add[1]"),
        ("cap_add: [cap_net_admin]", "services.web.cap_add[0]"),
        ("security_opt: ['seccomp=unconfined']", "services.web.security_opt[0]"),
        ("security_opt: ['apparmor:unconfined']", "services.web.security_opt[0]"),
    ],
)
def test_keys_that_reach_the_node_are_refused_with_their_path(keys: str, path: str) -> None:
    error = _error(keys)
    assert error.path == path
    assert "root on every node" in error.reason and "--allow-privileged" in error.reason
    assert parse_compose(_file(keys), "shop", allow_privileged=True).services[0].name == "shop_web"


def test_harmless_values_of_the_same_keys_pass_the_policy() -> None:
    text = "services:\n  web:\n    image: app\n    privileged: false\n"
    result = parse_compose(text, "shop")
    assert [spec.name for spec in result.services] == ["shop_web"]
    # CHOWN is no reason for the policy to refuse: the container gets it
    added = parse_compose(text + "    cap_add: [CHOWN]\n", "shop").services[0]
    assert added.container.cap_add == ["CHOWN"]


def test_every_refusal_of_the_policy_is_reported_at_once() -> None:
    error = _error("privileged: true\npid: host\ncap_add: [SYS_ADMIN]")
    lines = str(error).splitlines()
    for path in ("services.web.privileged", "services.web.pid", "services.web.cap_add[0]"):
        assert any(line.startswith(path + ":") and "root on every node" in line for line in lines), path


def test_with_allow_privileged_the_keys_are_honoured_in_the_spec() -> None:
    keys = (
        "privileged: true\npid: host\nipc: host\nuts: host\ncap_add: [SYS_ADMIN]\n"
        "devices: [/dev/fuse, '/dev/null:/dev/nothing', '/dev/zero:/dev/zero:r']"
    )
    container = parse_compose(_file(keys), "shop", allow_privileged=True).services[0].container
    assert container.privileged is True and container.cap_add == ["SYS_ADMIN"]
    assert (container.pid, container.ipc, container.uts) == ("host", "host", "host")
    assert container.devices == ["/dev/fuse:/dev/fuse:rwm", "/dev/null:/dev/nothing:rwm", "/dev/zero:/dev/zero:r"]
    plain = parse_compose(_file("ipc: shareable"), "shop").services[0].container
    assert (plain.privileged, plain.pid, plain.ipc, plain.devices) == (False, None, None, [])


def test_a_malformed_device_is_refused_with_its_path_even_when_allowed() -> None:
    error = _error("devices: [/dev/fuse, 'fuse:/dev/fuse']", allow_privileged=True)
    assert error.path == "services.web.devices[1]" and "HOST[:CONTAINER[:PERMISSIONS]]" in error.reason


@pytest.mark.parametrize(
    ("keys", "path", "words"),
    [
        ("network_mode: host", "services.web.network_mode", "publish the ports"),
        ("userns_mode: host", "services.web.userns_mode", "not supported"),
        ("network_mode: 'container:other'", "services.web.network_mode", "another node"),
        ("pid: 'service:db'", "services.web.pid", "another node"),
    ],
)
@pytest.mark.parametrize("allow_privileged", [False, True, None])
def test_what_corral_cannot_honour_is_refused_even_with_the_option(keys: str, path: str, words: str, allow_privileged: bool | None) -> None:
    error = _error(keys, allow_privileged)
    assert error.path == path and words in error.reason


def test_the_cli_where_the_policy_is_unknown_leaves_the_decision_to_the_manager() -> None:
    spec = parse_compose(_file("privileged: true\npid: host"), "shop", allow_privileged=None).services[0]
    assert spec.container.privileged is True and spec.container.pid == "host"
