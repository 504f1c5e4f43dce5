"""Which names a container may resolve, and to what (pure).

A container sees the services that share a network with it. On each of its networks a service
answers to its full name (`shop_db`), its name in its stack (`db`) and the aliases it has there;
the name resolves to the service's virtual IP, and `tasks.NAME` to the addresses its healthy
replicas have on the networks the two share. When two services claim one name, the asker's own
stack wins, then the first by name. A name of no service is not ours: it is forwarded.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.agent.networks.view import NetworkView

TASKS_PREFIX = "tasks."


@dataclass(frozen=True)
class ServiceRecord:
    service: str
    stack: str
    vip: str
    networks: Mapping[str, tuple[str, ...]]  # network -> the aliases the service has on it
    tasks: frozenset[str]  # healthy

    def names_on(self, network: str) -> list[str]:
        short = self.service.removeprefix(self.stack + "_") if self.stack else self.service
        return [n.lower() for n in (self.service, short, *self.networks.get(network, ()))]


def records_of(names: Iterable[Mapping[str, Any]]) -> list[ServiceRecord]:
    """The manager's `names` (GET /v1/agent/{node}/mesh) as records."""
    return [
        ServiceRecord(
            service=str(n["service"]), stack=str(n.get("stack", "")), vip=str(n.get("vip", "")),
            networks={str(a["name"]): tuple(str(x) for x in a.get("aliases", ())) for a in n.get("networks", ())},
            tasks=frozenset(str(t) for t in n.get("tasks", ())),
        )
        for n in names
    ]


@dataclass(frozen=True)
class Answer:
    ours: bool  # a name of a service the asker shares a network with (else: forward it)
    addresses: tuple[str, ...] = ()


def resolve(records: Sequence[ServiceRecord], view: NetworkView, client: str, qname: str) -> Answer:
    """What the container at address `client` gets for `qname` (A records; a trailing dot and case ignored)."""
    name = qname.rstrip(".").lower()
    networks = view.networks_of(client)
    if not networks:
        return Answer(False)
    tasks = name.startswith(TASKS_PREFIX)
    wanted = name.removeprefix(TASKS_PREFIX) if tasks else name
    candidates = sorted(
        (r for r in records if any(wanted in r.names_on(n) for n in networks if n in r.networks)),
        key=lambda r: (f"{r.stack}_default" not in networks, r.service),  # the asker's own stack first
    )
    if not candidates:
        return Answer(False)
    record = candidates[0]
    if tasks:
        return Answer(True, tuple(view.addresses(set(record.networks) & networks, record.tasks)))
    return Answer(True, (record.vip,) if record.vip else ())
