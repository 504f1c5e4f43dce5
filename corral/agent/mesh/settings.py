"""The mesh's settings, with every default in one place."""

from dataclasses import dataclass
from typing import Literal

from corral.agent.mesh.balancing import Strategy

DataPath = Literal["userspace", "kernel"]
DATA_PATHS: tuple[DataPath, ...] = ("userspace", "kernel")


@dataclass(frozen=True)
class MeshSettings:
    strategy: Strategy = "round-robin"
    # per backend, then the next is tried; above 1 s so that one lost SYN (resent after 1 s) is not a failure
    connect_timeout: float = 3.0
    # A backend that closes a TCP connection before sending one byte is tried
    # like a refused one: the client's bytes so far are replayed to the next
    # backend, if there are at most this many. 0 turns that retry off.
    replay_limit: int = 64 * 1024
    # A backend's shortcut (its container's own address, tcp.py) gets this long before its published address is
    # tried: a live container on this host's bridge accepts in well under a millisecond.
    shortcut_timeout: float = 0.25
    udp_idle_timeout: float = 30.0  # a UDP session unused this long is closed
    backlog: int = 1024
    # "kernel": TCP listeners also become iptables DNAT rules (faster, no retry;
    # the userspace listener stays bound as the port's reservation and fallback).
    data_path: DataPath = "userspace"
    # Share each port with other processes that set it too (several agents on one host serving the same
    # service VIPs); never for published ports, where a port already taken must be reported.
    reuse_port: bool = False
    cluster: str = "corral"  # names the iptables chains: CORRAL-MESH-<cluster>
