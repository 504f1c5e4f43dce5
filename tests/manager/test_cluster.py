"""cluster: the join token and node (re-)registration."""

import stat
from pathlib import Path

import pytest

from corral.manager.cluster import (
    TOKEN_FILE, Leases, check_token, current_token, load_or_create_token, registered_node, rotate_token, with_availability,
)
from corral.pki import JoinToken, ca_fingerprint, create_ca
from corral.model import NodeAvailability, NodeState, Resources
from corral.model.errors import InvalidSpec, Unauthorized

from factories import make_node

RES = Resources(cpus=2, memory=1 << 30)


# -- token


def test_missing_token_is_refused_with_a_hint() -> None:
    for presented in (None, ""):
        with pytest.raises(Unauthorized, match="missing join token") as caught:
            check_token("corral-abc", presented)
        assert "corral join-token" in str(caught.value)
        assert caught.value.status == 401


def test_wrong_token_is_refused() -> None:
    with pytest.raises(Unauthorized, match="wrong join token"):
        check_token("corral-abc", "corral-abd")
    with pytest.raises(Unauthorized, match="wrong join token"):
        check_token("corral-abc", "corral-abc ")


def test_right_token_passes() -> None:
    check_token("corral-abc", "corral-abc")


CA = create_ca(1_700_000_000.0)


def test_token_is_created_once_and_kept_and_pins_the_ca(tmp_path: Path) -> None:
    data = tmp_path / "data" / "nested"
    first = load_or_create_token(data, CA.certificate)
    JoinToken.parse(first).verify_ca(CA.certificate)
    assert load_or_create_token(data, CA.certificate) == first
    assert (data / TOKEN_FILE).read_text().strip() == first
    assert list(data.iterdir()) == [data / TOKEN_FILE]  # no temp file left behind


def test_token_file_is_private(tmp_path: Path) -> None:
    load_or_create_token(tmp_path, CA.certificate)
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600


def test_an_old_format_token_or_one_of_another_ca_is_replaced(tmp_path: Path) -> None:
    """`corral-<secret>` of older versions pins no CA: an agent could not verify the manager with it."""
    (tmp_path / TOKEN_FILE).write_text("corral-" + "a" * 48 + "\n")
    replaced = load_or_create_token(tmp_path, CA.certificate)
    JoinToken.parse(replaced).verify_ca(CA.certificate)
    other = create_ca(1_700_000_000.0)
    assert JoinToken.parse(load_or_create_token(tmp_path, other.certificate)).ca_digest == ca_fingerprint(other.certificate)


def test_rotation_changes_the_secret_and_keeps_the_digest(tmp_path: Path) -> None:
    first = JoinToken.parse(load_or_create_token(tmp_path, CA.certificate))
    second = JoinToken.parse(rotate_token(tmp_path, CA.certificate))
    assert second.ca_digest == first.ca_digest and second.secret != first.secret
    assert current_token(tmp_path, "fallback") == str(second)
    with pytest.raises(Unauthorized, match="rotated"):
        check_token(current_token(tmp_path, "fallback"), str(first))


def test_each_cluster_gets_its_own_token(tmp_path: Path) -> None:
    assert load_or_create_token(tmp_path / "a", CA.certificate) != load_or_create_token(tmp_path / "b", CA.certificate)



# -- registration


def test_first_registration_makes_a_ready_active_node() -> None:
    node = registered_node(None, "n1", "10.0.0.5", RES, {"zone": "a"}, "docker", 42.0)
    assert (node.name, node.address, node.resources, node.labels) == ("n1", "10.0.0.5", RES, {"zone": "a"})
    assert node.state == NodeState.ready and node.availability == NodeAvailability.active
    assert node.registered_at == 42.0 and node.last_heartbeat == 42.0


def test_re_registration_keeps_availability_and_user_labels() -> None:
    existing = make_node("n1", state=NodeState.down, availability=NodeAvailability.drain, labels={"zone": "user-set", "ssd": "yes"})
    existing = existing.model_copy(update={"message": "no heartbeat for 20.0s"})
    bigger = Resources(cpus=8, memory=1 << 34)
    node = registered_node(existing, "n1", "10.0.0.9", bigger, {"zone": "agent", "gpu": "1"}, "docker", 99.0)
    assert node.availability == NodeAvailability.drain
    assert node.labels == {"zone": "user-set", "ssd": "yes", "gpu": "1"}
    assert node.state == NodeState.ready and node.message == ""
    assert node.address == "10.0.0.9" and node.resources == bigger
    assert node.last_heartbeat == 99.0
    assert node.registered_at == existing.registered_at


def test_name_taken_by_a_live_node_elsewhere_is_refused() -> None:
    existing = make_node("n1", address="10.0.0.1")
    with pytest.raises(InvalidSpec, match="already registered from 10.0.0.1"):
        registered_node(existing, "n1", "10.0.0.2", RES, {}, "docker", 1.0)


def test_same_address_re_registers_while_up() -> None:
    existing = make_node("n1", address="10.0.0.1", availability=NodeAvailability.pause)
    node = registered_node(existing, "n1", "10.0.0.1", RES, {}, "docker", 1.0)
    assert node.availability == NodeAvailability.pause


def test_with_availability() -> None:
    node = make_node("n1")
    assert with_availability(node, NodeAvailability.drain).availability == NodeAvailability.drain
    assert node.availability == NodeAvailability.active


def test_leases() -> None:
    leases = Leases()
    leases.renew("a", 5.0)
    leases.seed(["a", "b"], 9.0)
    assert leases.last == {"a": 5.0, "b": 9.0}  # seeding never shortens a lease already known
    leases.forget("a")
    leases.forget("missing")
    assert leases.last == {"b": 9.0}
