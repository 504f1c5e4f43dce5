"""The routing mesh's figures per service port, for Prometheus and for the manager's autoscaler.

The mesh counts per listener (mesh/counters.py) and knows no services; the
manager's routes say which service each listener serves: a published port on
the node's address, or a service port on the service's VIP. `by_service_port`
joins the two (pure); `metrics_export.MeshCollector` turns them into Prometheus counters at
scrape time (`corral_mesh_connections_total{service,port,protocol,listener}`
and bytes, retries, errors); `by_service` sums a service's ports, which the
node listener serves the manager (`GET /v1/mesh/counters`).

The mesh is a TCP/UDP proxy: it counts connections, not HTTP requests.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from corral.agent.mesh import Listener, MeshCounters


@dataclass(frozen=True)
class ServicePort:
    service: str
    port: int
    protocol: str
    listener: str  # "published" (the node's address) or "vip" (the service's virtual IP)


def by_service_port(
    routes: Iterable[Mapping[str, Any]], address: str, published: Mapping[Listener, MeshCounters], vips: Mapping[Listener, MeshCounters]
) -> dict[ServicePort, MeshCounters]:
    """Each open listener's counters under the service port it serves (a listener no route names is left out)."""
    figures: dict[ServicePort, MeshCounters] = {}
    for route in routes:
        port, protocol, vip = int(route["port"]), str(route["protocol"]), str(route.get("vip") or "")
        counters = vips.get(Listener(vip, port, protocol)) if vip else published.get(Listener(address, port, protocol))
        if counters is not None:
            key = ServicePort(str(route["service"]), port, protocol, "vip" if vip else "published")
            figures.setdefault(key, MeshCounters()).add(counters)
    return figures


def by_service(figures: Mapping[ServicePort, MeshCounters]) -> dict[str, MeshCounters]:
    """The sum of each service's ports and listeners."""
    totals: dict[str, MeshCounters] = {}
    for key, counters in figures.items():
        totals.setdefault(key.service, MeshCounters()).add(counters)
    return totals
