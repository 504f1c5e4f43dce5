"""What one mesh listener has carried so far: plain integers, bumped by the relays as it happens.

The mesh works at the transport level (TCP connections, UDP sessions): it does
not parse what flows through it, so it counts connections, not requests. The
counters live as long as their listener; a listener closed and opened again
starts at 0 (a counter reset, as Prometheus' `rate` expects after a restart).
With the kernel data path the connections iptables forwards never reach the
userspace listener and are not counted.
"""

from dataclasses import dataclass, fields


@dataclass
class MeshCounters:
    connections: int = 0  # TCP connections accepted; UDP sessions opened (a new client address)
    received_bytes: int = 0  # from clients
    sent_bytes: int = 0  # to clients
    # a backend tried after another failed (refused, timed out, closed unanswered); a published address
    # tried after its backend's shortcut failed counts too
    retries: int = 0
    errors: int = 0  # connections (datagrams for UDP) dropped because no backend could take them

    def add(self, other: "MeshCounters") -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
