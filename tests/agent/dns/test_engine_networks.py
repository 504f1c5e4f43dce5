"""EngineNetworks' choice of subnet: the first /24 of the pool that no network of the engine overlaps."""

import ipaddress
from pathlib import Path

import httpx

from corral.agent.engines.docker_api import EngineAPI
from corral.agent.networks.engine import EngineNetworks, host_routes


def engine_with(*subnets: str) -> EngineAPI:
    """An engine (over a mock transport) whose networks have these subnets."""
    networks = [{"Id": str(i), "IPAM": {"Config": [{"Subnet": s}]}} for i, s in enumerate(subnets)]

    def answer(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/networks")
        return httpx.Response(200, json=networks)

    return EngineAPI(httpx.MockTransport(answer))


NO_ROUTES = Path("/nonexistent/route")


def test_the_first_free_slice_of_the_pool() -> None:
    assert EngineNetworks("c", engine_with(), "10.218.0.0/16", NO_ROUTES)._free_subnet() == "10.218.0.0/24"
    taken = engine_with("10.218.0.0/24", "10.218.1.0/25", "172.17.0.0/16", "fd00::/64")
    assert EngineNetworks("c", taken, "10.218.0.0/16", NO_ROUTES)._free_subnet() == "10.218.2.0/24"
    assert EngineNetworks("c", engine_with("10.218.0.0/16"), "10.218.0.0/16", NO_ROUTES)._free_subnet() is None


ROUTE_TABLE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "br-0cbf59c29169\t0000DA0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)


def test_a_subnet_the_host_still_routes_is_not_reused(tmp_path: Path) -> None:
    """A bridge a killed engine left behind routes 10.218.0.0/24: a network there would be unreachable."""
    assert host_routes(ROUTE_TABLE) == [ipaddress.ip_network("10.218.0.0/24"), ipaddress.ip_network("172.17.0.0/16")]
    routes = tmp_path / "route"
    routes.write_text(ROUTE_TABLE)
    assert EngineNetworks("c", engine_with(), "10.218.0.0/16", routes)._free_subnet() == "10.218.1.0/24"
