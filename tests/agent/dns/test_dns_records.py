"""records.resolve: which names a container sees, from the manager's records and the engine's networks."""

from corral.agent.dns.records import records_of, resolve
from corral.agent.networks.view import Member, Network, NetworkView

NAMES = [
    {"service": "shop_db", "stack": "shop", "vip": "10.217.0.2", "networks": [{"name": "shop_default"}], "tasks": ["d1"]},
    {"service": "shop_web", "stack": "shop", "vip": "10.217.0.3", "tasks": ["w1", "w2"],
     "networks": [{"name": "shop_default"}, {"name": "shop_shared", "aliases": ["www"]}]},
    {"service": "other_db", "stack": "other", "vip": "10.217.0.4", "networks": [{"name": "other_default"}], "tasks": []},
    {"service": "other_joined", "stack": "other", "vip": "10.217.0.5", "tasks": [],
     "networks": [{"name": "other_default"}, {"name": "shop_shared"}]},
]
RECORDS = records_of(NAMES)
VIEW = NetworkView({
    "shop_default": Network("shop_default", "n1", "br-1", "172.20.0.0/16", (
        Member("c-client", "c1", "172.20.0.9"), Member("c-w1", "w1", "172.20.0.3"), Member("c-w2", "w2", "172.20.0.4"),
        Member("c-w3", "w3", "172.20.0.5"),  # a replica that is not healthy (not in the manager's list)
    )),
    "shop_shared": Network("shop_shared", "n2", "br-2", "172.21.0.0/16", (
        Member("c-w1", "w1", "172.21.0.3"), Member("c-joined", "j1", "172.21.0.7"),
    )),
    "other_default": Network("other_default", "n3", "br-3", "172.22.0.0/16", (
        Member("c-lone", "l1", "172.22.0.2"), Member("c-joined", "j1", "172.22.0.7"),
    )),
})


def addresses(client: str, name: str) -> tuple[str, ...] | None:
    found = resolve(RECORDS, VIEW, client, name)
    return found.addresses if found.ours else None


def test_short_full_and_tasks_names_within_a_stack() -> None:
    assert addresses("172.20.0.9", "db") == ("10.217.0.2",)
    assert addresses("172.20.0.9", "shop_db.") == ("10.217.0.2",)
    assert addresses("172.20.0.9", "DB") == ("10.217.0.2",)
    assert addresses("172.20.0.9", "tasks.web") == ("172.20.0.3", "172.20.0.4")  # healthy ones, on the shared network
    assert addresses("172.20.0.9", "tasks.db") == ()  # its replica's container is not on this host's engine


def test_another_stack_sees_nothing_but_what_it_shares() -> None:
    assert addresses("172.22.0.2", "web") is None and addresses("172.22.0.2", "tasks.web") is None
    assert addresses("172.22.0.2", "db") == ("10.217.0.4",)  # its own stack's db, not shop's
    # joined shop_shared on purpose: web and its alias there, not db
    assert addresses("172.22.0.7", "www") == ("10.217.0.3",)
    assert addresses("172.21.0.7", "web") == ("10.217.0.3",)  # the same container, asking from its other address
    assert addresses("172.22.0.7", "tasks.web") == ("172.21.0.3",)
    assert addresses("172.22.0.7", "db") == ("10.217.0.4",)  # its own stack wins the name
    assert addresses("172.22.0.7", "shop_db") is None
    # the alias is only on shop_shared
    assert addresses("172.20.0.9", "www") is None


def test_unknown_askers_and_names_are_not_ours() -> None:
    assert addresses("10.9.9.9", "db") is None  # not a container of the cluster
    assert addresses("172.20.0.9", "example.com") is None
