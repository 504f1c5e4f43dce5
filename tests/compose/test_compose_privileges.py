"""The deploy policy: keys that would hand a container the node are refused with their path, not dropped."""

import pytest

from corral.compose import parse_compose
from corral.model.errors import InvalidSpec


def _error(service_keys: str) -> InvalidSpec:
    text = "services:\n  web:\n    image: app\n" + "".join(f"    {line}\n" for line in service_keys.splitlines())
    with pytest.raises(InvalidSpec) as caught:
        parse_compose(text, "shop")
    return caught.value


@pytest.mark.parametrize(
    ("keys", "path"),
    [
        ("privileged: true", "services.web.privileged"),
        ("pid: host", "services.web.pid"),
        ("network_mode: host", "services.web.network_mode"),
        ("ipc: host", "services.web.ipc"),
        ("network_mode: 'container:other'", "services.web.network_mode"),
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
    assert "root on every node" in error.reason


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
