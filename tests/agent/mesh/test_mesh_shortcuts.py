"""Which published addresses the agent's mesh reaches at the container's own address."""

from typing import cast

from corral.agent.engines.base import ContainerInfo
from corral.agent.mesh import Backend, Mesh
from corral.agent.routing import MeshFollower, shortcuts_of
from corral.agent.vips import VipInterface
from corral.client import ManagerClient
from corral.model import PublishedPort

from mesh_backends import ask, free_port


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


async def test_the_follower_gives_both_meshes_the_listed_containers_shortcuts(named_servers) -> None:
    (container,) = await named_servers(1)
    published = ("127.0.0.1", free_port())  # nothing listens there: only the shortcut answers
    mesh, vip_mesh = Mesh(), Mesh()
    follower = MeshFollower(cast(ManagerClient, None), "node-1", "127.0.0.1", mesh, vip_mesh, VipInterface("test"), 1.0)
    front = ("127.0.0.5", free_port("127.0.0.5"), "tcp")
    try:
        await mesh.apply({front: [published]})
        exposed = port(container.port, published[1], host_ip="127.0.0.1")
        listed = [ContainerInfo("a", "t1", running=True, ports=[exposed], ip="127.0.0.1")]
        follower.containers_listed(listed)
        assert vip_mesh.shortcuts == {published: container.address}
        assert (await ask(front[:2])) == "b0:hi"
        follower.containers_listed([])
        assert mesh.shortcuts == {} and vip_mesh.shortcuts == {}
    finally:
        await mesh.close()
        await vip_mesh.close()
