"""The cluster's networks in the Docker engine of this host: made on demand, listed, removed when unused.

Each network the tasks on this node join (`shop_default`, the networks a compose file names) is a
bridge network of the engine, named `crl<cluster>_<name>` and labelled with the cluster and its name.
Several agents of a local cluster share one engine, so every step tolerates another agent having
done it first: making a network holds a lock file on the host (the engine's own
duplicate check is not atomic), and should two networks of one name exist anyway, the oldest is the
one used. A network is removed only when no service of the cluster names it any more and no
container is attached; this module never touches a network without the cluster's label.
Blocking calls (the Engine API, engines/docker_api.py): callers run them in a thread.
"""

import fcntl
import ipaddress
import json
import logging
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from corral.agent import labels
from corral.agent.engines.docker_api import EngineAPI, EngineAPIError
from corral.agent.networks.view import NetworkView, engine_name, view_of
from corral.model import NetworkAttachment

log = logging.getLogger(__name__)

# Each network a /24 of its own from here: the engine's default pools hold only ~30 networks a host.
DEFAULT_POOL = "10.218.0.0/16"


ROUTES = Path("/proc/net/route")


class NetworkError(Exception):
    pass


def host_routes(table: str) -> list[ipaddress.IPv4Network]:
    """The destinations of the host's IPv4 routes but the default one, from /proc/net/route's text (pure).
    Addresses there are hexadecimal in the host's (little-endian) byte order."""
    found = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            destination = bytes.fromhex(fields[1])[::-1]
            mask = bytes.fromhex(fields[7])[::-1]
            network = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(destination)}/{ipaddress.IPv4Address(mask)}", strict=False)
        except ValueError:
            continue
        if network.prefixlen > 0:
            found.append(network)
    return found


class EngineNetworks:
    def __init__(self, cluster_id: str, api: EngineAPI, pool: str = DEFAULT_POOL, routes: Path = ROUTES) -> None:
        """`routes`: the host's route table (/proc/net/route), whose subnets a new network must not overlap."""
        self.cluster_id = cluster_id
        self.routes = routes
        self._api = api
        self.pool = ipaddress.ip_network(pool)
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}  # engine name -> id of the networks made or seen here (not looked up again)

    def ensure(self, attachment: NetworkAttachment) -> str:
        """The engine's id of the network, made if missing. A network this agent made or saw in its last view is not
        looked up again (a start costs no engine call for it); should it have gone since, the start says so and the
        caller `forget`s it and asks again. Else one listing of the engine's networks, under the host lock, finds it
        (another agent of this host may have made it) or gives the subnets in use for the one made here."""
        name = engine_name(self.cluster_id, attachment.name)
        known = self._known.get(name)
        if known:
            return known
        with self._host_lock():
            networks = self._networks()
            found = _oldest(networks, name, self.cluster_id)
            if found:
                self._known[name] = found
                return found
            subnet = self._free_subnet(networks)
            if subnet is None:
                raise NetworkError(f"cannot create network {attachment.name}: no free /24 left in {self.pool}")
            try:
                created = self._api.call("POST", "/networks/create", {
                    # not the engine's `internal`, which leaves containers no route to the VIPs and the DNS
                    # responder: isolation.py rejects what leaves an internal network's bridge instead
                    "Name": name, "Driver": "bridge", "CheckDuplicate": True,
                    "IPAM": {"Driver": "default", "Config": [{"Subnet": subnet}]},
                    "Labels": {
                        labels.CLUSTER: self.cluster_id, labels.NETWORK: attachment.name,
                        labels.INTERNAL: "true" if attachment.internal else "false",
                    },
                })
            except EngineAPIError as err:
                raise NetworkError(f"cannot create network {attachment.name}: {err.message}") from err
            self._known[name] = str(created["Id"])
            return self._known[name]

    def forget(self, engine_id: str) -> None:
        """The network `engine_id` is gone (the engine said so): the next `ensure` of its name looks again."""
        for name, known in list(self._known.items()):
            if known == engine_id:
                self._known.pop(name, None)

    def _free_subnet(self, networks: list[dict[str, Any]] | None = None) -> str | None:
        """The first /24 of the pool that no network of the engine (`networks`: its listing, else listed here) and no
        route of the host overlaps (under the host lock). The host's routes count too: a bridge another engine left
        behind (a dockerd that was killed) still routes its subnet, and a network on the same /24 would be
        unreachable from the host."""
        used = [
            ipaddress.ip_network(config["Subnet"], strict=False)
            for network in (self._networks() if networks is None else networks)
            for config in ((network.get("IPAM") or {}).get("Config") or [])
            if ":" not in str(config.get("Subnet", ":"))
        ]
        try:
            used += host_routes(self.routes.read_text())
        except OSError:  # no /proc (not Linux): the engine's own networks are all there is to check
            pass
        for subnet in self.pool.subnets(new_prefix=max(24, self.pool.prefixlen)):
            if not any(subnet.overlaps(other) for other in used):
                return str(subnet)
        return None

    @contextmanager
    def _host_lock(self) -> Iterator[None]:
        path = Path(tempfile.gettempdir()) / "corral-networks.lock"  # one for every cluster: nothing left per cluster
        with self._lock, path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _networks(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """The engine's listing of its networks (those that pass `filters`)."""
        found: list[dict[str, Any]] = self._api.call("GET", "/networks", params={"filters": json.dumps(filters)} if filters else None)
        return found

    def view(self) -> NetworkView:
        """A snapshot of the cluster's networks on this engine and the containers on them: two listings, not an
        inspect per network (each agent reads it at every change; with a network per stack, O(networks) calls to
        the engine per change competed with the containers' starts)."""
        summaries = self._networks({"label": [f"{labels.CLUSTER}={self.cluster_id}"]})
        ids = [str(summary["Id"]) for summary in summaries]
        containers: list[dict[str, Any]] = (
            self._api.call("GET", "/containers/json", params={"filters": json.dumps({"network": ids})}) if ids else []
        )
        view = view_of(summaries, containers, labels.NETWORK, labels.INTERNAL)
        self._known = {engine_name(self.cluster_id, n.name): n.engine_id for n in view.networks.values() if not n.spare}
        return view

    def sweep(self, wanted: Iterable[str], view: NetworkView) -> list[str]:
        """Remove the cluster's networks that no service names (or that are spares) and no container uses; their names."""
        keep = set(wanted)
        removed = []
        for network in view.networks.values():
            if (network.name in keep and not network.spare) or network.members:
                continue
            try:
                self._api.call("DELETE", f"/networks/{network.engine_id}")
                removed.append(network.name)
                self.forget(network.engine_id)
            except EngineAPIError as err:
                if err.missing:
                    removed.append(network.name)
                    self.forget(network.engine_id)
                else:  # a container joined meanwhile: next time
                    log.debug("network %s stays: %s", network.name, err.message)
        return removed


def _oldest(networks: list[dict[str, Any]], name: str, cluster_id: str) -> str:
    """The id of the cluster's network named `name` in the engine's listing (the oldest, should there be two); ""."""
    matches = [n for n in networks if n.get("Name") == name and (n.get("Labels") or {}).get(labels.CLUSTER) == cluster_id]
    return str(min(matches, key=lambda n: (str(n.get("Created", "")), str(n["Id"])))["Id"]) if matches else ""
