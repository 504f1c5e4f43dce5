"""A network namespace joined to this host by one veth pair: a client "on another host" for tests and benchmarks.

The host side gets 10.213.X.1/30 and the namespace side 10.213.X.2/30 (X picked
so that no address of this host is in the /30 already); the namespace has
nothing else but its loopback, so whatever it reaches, it reaches through the
host side's address. Deleting the namespace deletes the veth pair with it.

    with client_netns() as ns:
        subprocess.run(ns.command("wget", "-q", "-O-", f"http://{ns.host_ip}:8080/"))
"""

import random
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientNetns:
    name: str
    host_ip: str  # the host side of the veth pair: the node address a client in the namespace reaches
    client_ip: str
    host_interface: str

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-4", "-o", "addr", "show"], check=True, capture_output=True, text=True).stdout
    free = [x for x in range(256) if f" 10.213.{x}." not in used]
    if not free:
        raise RuntimeError("no free 10.213.X.0/30 for a test namespace")
    return random.choice(free)


@contextmanager
def client_netns() -> Iterator[ClientNetns]:
    """Create the namespace and veth pair; delete both afterwards, also when the body fails."""
    tag = uuid.uuid4().hex[:6]
    x = _free_subnet()
    ns = ClientNetns(f"corral-client-{tag}", f"10.213.{x}.1", f"10.213.{x}.2", f"crl{tag}h")
    inside = f"crl{tag}n"
    _ip("netns", "add", ns.name)
    try:
        _ip("link", "add", ns.host_interface, "type", "veth", "peer", "name", inside, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_interface)
        _ip("link", "set", ns.host_interface, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.client_ip}/30", "dev", inside)
        _ip("-n", ns.name, "link", "set", inside, "up")
        _ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)  # takes the veth pair with it
        subprocess.run(["ip", "link", "del", ns.host_interface], capture_output=True)  # if the peer never moved
