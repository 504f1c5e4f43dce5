"""isolation.render: what each network's bridge may reach on the service network."""

from corral.agent.networks.isolation import chain_name, render
from corral.agent.networks.keeper import allowed_vips
from corral.agent.networks.view import Network, NetworkView

VIEW = NetworkView({
    "shop_default": Network("shop_default", "n1", "br-aaa", "172.20.0.0/16"),
    "other_default": Network("other_default", "n2", "br-bbb", "172.21.0.0/16"),
})
NAMES = [
    {"service": "shop_db", "vip": "10.217.0.2", "networks": [{"name": "shop_default"}]},
    {"service": "shop_web", "vip": "10.217.0.3", "networks": [{"name": "shop_default"}, {"name": "other_default"}]},
    {"service": "gone", "vip": "", "networks": [{"name": "other_default"}]},
]


def test_each_bridge_reaches_dns_and_its_networks_vips_then_everything_else_is_rejected() -> None:
    allowed = allowed_vips(NAMES)
    assert allowed == {"shop_default": {"10.217.0.2", "10.217.0.3"}, "other_default": {"10.217.0.3"}}
    lines = render("0123456789", "10.217.0.1", VIEW, allowed).splitlines()
    chain = chain_name("0123456789")
    assert chain == "CORRAL-NET-01234567"
    assert lines[:2] == ["*filter", f":{chain} - [0:0]"] and lines[-1] == "COMMIT"
    rules = lines[2:-1]
    assert rules[:2] == [f"-A {chain} -d 10.217.0.1/32 -p udp --dport 53 -j ACCEPT", f"-A {chain} -d 10.217.0.1/32 -p tcp --dport 53 -j ACCEPT"]
    accepts = [r for r in rules[2:] if r.endswith("ACCEPT")]
    assert accepts == [
        f"-A {chain} -i br-bbb -d 10.217.0.3/32 -j ACCEPT",
        f"-A {chain} -i br-aaa -d 10.217.0.2/32 -j ACCEPT",
        f"-A {chain} -i br-aaa -d 10.217.0.3/32 -j ACCEPT",
    ]
    # the rejects come after every accept, for every engine bridge
    mine = [r for r in rules if r.startswith(f"-A {chain} ")]
    assert all("REJECT" in r for r in mine[2 + len(accepts):])
    assert any("-i br-+" in r for r in mine) and any("-i docker0" in r for r in mine)
    # no internal network: the forward chain is there, empty
    assert ":CORRAL-NETFWD-01234567 - [0:0]" in rules and not any(r.startswith("-A CORRAL-NETFWD") for r in rules)


def test_nothing_new_leaves_an_internal_networks_bridge() -> None:
    view = NetworkView({"a": Network("shop_back", "a", "br-aaa", "172.20.0.0/16", internal=True)})
    rules = render("0123456789", "10.217.0.1", view, {}).splitlines()
    assert "-A CORRAL-NETFWD-01234567 -i br-aaa ! -o br-aaa -m conntrack --ctstate NEW -j REJECT" in rules


def test_a_container_on_two_networks_reaches_the_vips_of_both_from_either_address() -> None:
    from corral.agent.networks.view import Member

    view = NetworkView({
        "a": Network("shop_default", "a", "br-aaa", "172.20.0.0/16", (Member("c1", "t1", "172.20.0.5"),)),
        "b": Network("other_default", "b", "br-bbb", "172.21.0.0/16", (Member("c1", "t1", "172.21.0.5"), Member("c2", "t2", "172.21.0.6"))),
    })
    allowed = {"shop_default": {"10.217.0.2"}, "other_default": {"10.217.0.9"}}
    chain = chain_name("0123456789")
    rules = render("0123456789", "10.217.0.1", view, allowed).splitlines()
    assert f"-A {chain} -i br-bbb -s 172.21.0.5/32 -d 10.217.0.2/32 -j ACCEPT" in rules
    assert f"-A {chain} -i br-aaa -s 172.20.0.5/32 -d 10.217.0.9/32 -j ACCEPT" in rules
    assert not any("172.21.0.6" in r for r in rules)  # its neighbour on one network gets nothing more
