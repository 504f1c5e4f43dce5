"""The network view from two listings of the engine (networks, running containers), whatever the number of networks."""

import json
from typing import Any

from corral.agent.networks.engine import EngineNetworks
from corral.agent.networks.view import Member, Network, view_of

NET, INTERNAL = "corral.network", "corral.internal"


def summary(engine_id: str, name: str | None, created: str, subnet: str = "10.218.0.0/24", **extra: Any) -> dict[str, Any]:
    labels = {"corral.cluster": "c1", **({NET: name} if name else {}), **extra.pop("labels", {})}
    return {"Id": engine_id, "Name": f"crlc1_{name}", "Created": created, "IPAM": {"Config": [{"Subnet": subnet}]},
            "Options": extra.pop("options", {}), "Labels": labels, "Containers": {}}


def container(cid: str, name: str, *endpoints: tuple[str, str]) -> dict[str, Any]:
    return {"Id": cid, "Names": [f"/{name}"],
            "NetworkSettings": {"Networks": {f"net-{nid}": {"NetworkID": nid, "IPAddress": ip} for nid, ip in endpoints}}}


SUMMARIES = [
    summary("n2", "shop_default", "2026-01-02T00:00:00Z", "10.218.1.0/24", options={"com.docker.network.bridge.name": "br-shop"}),
    summary("n1", "shop_default", "2026-01-01T00:00:00Z", "10.218.0.0/24"),  # the older of two: n2 is the spare
    summary("n3", "back_net", "2026-01-03T00:00:00Z", "10.218.2.0/24", labels={INTERNAL: "true"}),
    summary("n4", None, "2026-01-04T00:00:00Z"),  # no network label: not the cluster's
]
CONTAINERS = [
    container("cb", "shop_web.1.t2", ("n1", "10.218.0.3"), ("n3", "10.218.2.3")),
    container("ca", "shop_db.1.t1", ("n1", "10.218.0.2")),
    container("cx", "stranger", ("bridge-id", "172.17.0.2"), ("n3", "")),  # no address on n3: not a member
]


def test_networks_and_members_from_the_two_listings() -> None:
    view = view_of(SUMMARIES, CONTAINERS, NET, INTERNAL)
    assert view.networks == {
        "n1": Network("shop_default", "n1", "br-n1", "10.218.0.0/24", (Member("ca", "t1", "10.218.0.2"), Member("cb", "t2", "10.218.0.3"))),
        "n2": Network("shop_default", "n2", "br-shop", "10.218.1.0/24", (), spare=True),
        "n3": Network("back_net", "n3", "br-n3", "10.218.2.0/24", (Member("cb", "t2", "10.218.2.3"),), internal=True),
    }
    assert view.networks_of("10.218.2.3") == {"shop_default", "back_net"}
    assert view.addresses(["shop_default"], ["t1", "t2"]) == ["10.218.0.2", "10.218.0.3"]


class ScriptedEngine:
    """The Engine API client's one method, answering the two listings and refusing any inspect."""

    def __init__(self, networks: list[dict[str, Any]], containers: list[dict[str, Any]]) -> None:
        self.answers = {"/networks": networks, "/containers/json": containers}
        self.calls: list[tuple[str, Any]] = []

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, **_: Any) -> Any:
        if path not in self.answers:
            raise AssertionError(f"{method} {path}: one inspect per network is what the listings replace")
        self.calls.append((path, json.loads(params["filters"]) if params else None))
        return self.answers[path]


def test_the_engine_is_asked_twice_whatever_the_number_of_networks() -> None:
    many = [summary(f"n{i}", f"s{i}_default", f"2026-01-01T00:00:{i:02}Z") for i in range(50)]
    engine = ScriptedEngine(many, [container("c7", "s7_web.1.t7", ("n7", "10.218.7.2"))])
    view = EngineNetworks("c1", engine).view()  # type: ignore[arg-type]
    assert engine.calls == [
        ("/networks", {"label": ["corral.cluster=c1"]}),
        ("/containers/json", {"network": [f"n{i}" for i in range(50)]}),  # only the cluster's networks' containers
    ]
    assert len(view.networks) == 50 and view.networks["n7"].members == (Member("c7", "t7", "10.218.7.2"),)


def test_no_networks_no_container_listing() -> None:
    engine = ScriptedEngine([], [])
    assert EngineNetworks("c1", engine).view().networks == {}  # type: ignore[arg-type]
    assert [path for path, _ in engine.calls] == ["/networks"]
