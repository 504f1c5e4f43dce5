"""EngineNetworks' choice of subnet: the first /24 of the pool that no network of the engine overlaps."""

from types import SimpleNamespace
from typing import Any

from corral.agent.networks.engine import EngineNetworks


def engine_with(*subnets: str) -> Any:
    networks = [{"Id": str(i), "IPAM": {"Config": [{"Subnet": s}]}} for i, s in enumerate(subnets)]
    return SimpleNamespace(api=SimpleNamespace(networks=lambda **_: networks))


def test_the_first_free_slice_of_the_pool() -> None:
    assert EngineNetworks("c", engine_with(), "10.218.0.0/16")._free_subnet() == "10.218.0.0/24"
    taken = engine_with("10.218.0.0/24", "10.218.1.0/25", "172.17.0.0/16", "fd00::/64")
    assert EngineNetworks("c", taken, "10.218.0.0/16")._free_subnet() == "10.218.2.0/24"
    assert EngineNetworks("c", engine_with("10.218.0.0/16"), "10.218.0.0/16")._free_subnet() is None
