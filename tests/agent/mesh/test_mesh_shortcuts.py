"""Which published addresses the agent's mesh reaches at the container's own address (pure)."""

from corral.agent.engines.base import ContainerInfo
from corral.agent.mesh import Backend
from corral.agent.routing import shortcuts_of
from corral.model import PublishedPort


def port(target: int, host_port: int, protocol: str = "tcp", host_ip: str = "127.0.0.2") -> PublishedPort:
    return PublishedPort(target=target, protocol=protocol, host_ip=host_ip, host_port=host_port)


def test_running_containers_tcp_ports_map_to_their_own_address() -> None:
    containers = [
        ContainerInfo("a", "t1", running=True, ports=[port(8080, 32768), port(53, 32769, "udp")], ip="172.18.0.2"),
        ContainerInfo("b", "t2", running=True, ports=[port(80, 32770), port(443, 32771)], ip="172.18.0.3"),
        ContainerInfo("c", "t3", running=False, ports=[port(8080, 32772)], ip="172.18.0.4"),  # stopped
        ContainerInfo("d", "t4", running=True, ports=[port(8080, 32773)], ip=""),  # no address on a network
    ]
    assert shortcuts_of(containers) == {
        Backend("127.0.0.2", 32768): Backend("172.18.0.2", 8080),
        Backend("127.0.0.2", 32770): Backend("172.18.0.3", 80),
        Backend("127.0.0.2", 32771): Backend("172.18.0.3", 443),
    }
    assert shortcuts_of([]) == {}
