"""EngineNetworks' engine calls for a network: one listing and a create for a new one, none for one it made or saw
in its last view, a listing again once it is told the network is gone (over a mock engine that records each call)."""

import json
from pathlib import Path
from typing import Any

import httpx

from corral.agent import labels
from corral.agent.engines.docker_api import EngineAPI
from corral.agent.networks.engine import EngineNetworks
from corral.model import NetworkAttachment

CLUSTER = "c0ffee00cafe"
NO_ROUTES = Path("/nonexistent/route")


class FakeEngine:
    """The engine's networks in memory, and the calls made to it, as METHOD PATH."""

    def __init__(self) -> None:
        self.networks: list[dict[str, Any]] = [
            {"Id": "theirs", "Name": "other", "Labels": {}, "IPAM": {"Config": [{"Subnet": "10.218.0.0/24"}]}},
        ]
        self.calls: list[str] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if (request.method, request.url.path) == ("GET", "/networks"):
            return httpx.Response(200, json=self.networks)
        if (request.method, request.url.path) == ("GET", "/containers/json"):
            return httpx.Response(200, json=[])
        if (request.method, request.url.path) == ("POST", "/networks/create"):
            created = json.loads(request.content)
            network = {"Id": f"id-{len(self.networks)}", "Name": created["Name"], "Labels": created["Labels"], "IPAM": created["IPAM"]}
            self.networks.append(network)
            return httpx.Response(201, json={"Id": network["Id"]})
        if request.method == "DELETE":
            self.networks = [n for n in self.networks if f"/networks/{n['Id']}" != request.url.path]
            return httpx.Response(204)
        return httpx.Response(404, json={"message": "unexpected"})

    def take(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


def test_a_network_is_looked_up_once_and_again_only_when_gone() -> None:
    engine = FakeEngine()
    networks = EngineNetworks(CLUSTER, EngineAPI(httpx.MockTransport(engine.answer)), "10.218.0.0/16", NO_ROUTES)
    shop = NetworkAttachment(name="shop_default")

    made = networks.ensure(shop)
    assert engine.take() == ["GET /networks", "POST /networks/create"]  # one listing: not there, and the used subnets
    assert engine.networks[-1]["IPAM"]["Config"] == [{"Subnet": "10.218.1.0/24"}]  # not the foreign network's /24
    assert engine.networks[-1]["Labels"][labels.NETWORK] == "shop_default"
    assert networks.ensure(shop) == made and engine.take() == []  # the next start: no call

    networks.forget("no-such-id")  # another id: nothing forgotten
    assert networks.ensure(shop) == made and engine.take() == []
    networks.forget(made)  # the engine said it is gone (it is not): looked up, found, not made again
    assert networks.ensure(shop) == made and engine.take() == ["GET /networks"]

    # Another agent of the host made `shop_back`; this one sees it in its view and then asks nothing for it.
    engine.networks.append({
        "Id": "id-back", "Name": f"crl{CLUSTER[:8]}_shop_back", "Labels": {labels.CLUSTER: CLUSTER, labels.NETWORK: "shop_back"},
        "IPAM": {"Config": [{"Subnet": "10.218.2.0/24"}]},
    })
    view = networks.view()
    engine.take()
    assert {n.name for n in view.networks.values()} == {"shop_default", "shop_back"}
    assert networks.ensure(NetworkAttachment(name="shop_back")) == "id-back" and engine.take() == []

    # Swept (no service names it): made again, on a new id, by the next start that needs it.
    assert networks.sweep({"shop_default"}, view) == ["shop_back"]
    engine.take()
    again = networks.ensure(NetworkAttachment(name="shop_back"))
    assert again != "id-back" and engine.take() == ["GET /networks", "POST /networks/create"]
