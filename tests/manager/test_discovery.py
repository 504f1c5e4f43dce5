"""discovery: which tasks are endpoints, and the mesh routes every node serves."""

from corral.agent.routing import hosts_of, table_of
from corral.manager.discovery import endpoints, fingerprint, free_vips, routes
from corral.model import PortSpec, PublishedPort, TaskState
from corral.model.task import DesiredState

from factories import make_service, make_task

WEB = make_service("web", 3, ports=[PortSpec(target=8080, published=18080), PortSpec(target=53, published=5353, protocol="udp")])


def published(host: str, port: int, target: int = 8080, protocol: str = "tcp") -> PublishedPort:
    return PublishedPort(target=target, protocol=protocol, host_ip=host, host_port=port)


def task(slot: int, state: TaskState = TaskState.running, desired: DesiredState = DesiredState.running, host: str = "127.0.0.2"):
    ports = [published(host, 32000 + slot), published(host, 33000 + slot, 53, "udp")]
    return make_task(WEB, slot, state=state, desired=desired, node=f"n{slot}", ports=ports)


def test_only_wanted_running_tasks_with_ports_are_endpoints() -> None:
    tasks = [
        task(1),
        task(2, TaskState.starting),  # not healthy yet
        task(3, desired=DesiredState.shutdown),  # being stopped: out before SIGTERM
        make_task(WEB, 4, state=TaskState.running),  # no ports reported yet
        task(5, TaskState.failed),
    ]
    [endpoint] = endpoints(tasks)
    assert (endpoint.task, endpoint.node, endpoint.address) == (tasks[0].id, "n1", "127.0.0.2:32001")
    assert [(p.target, p.protocol, p.address) for p in endpoint.ports] == [(8080, "tcp", "127.0.0.2:32001"), (53, "udp", "127.0.0.2:33001")]


def test_routes_per_published_port_and_the_table_of_a_node() -> None:
    unpublished = make_service("db", 1, ports=[PortSpec(target=5432)])
    found = routes({"web": WEB, "db": unpublished}, {"web": [task(1), task(2, host="127.0.0.3")], "db": []})
    assert [(r.port, r.protocol, r.backends) for r in found] == [
        (18080, "tcp", ["127.0.0.2:32001", "127.0.0.3:32002"]),
        (5353, "udp", ["127.0.0.2:33001", "127.0.0.3:33002"]),
    ]
    table, vips = table_of([r.model_dump() for r in found], "127.0.0.9")
    assert vips == {}
    assert table == {
        ("127.0.0.9", 18080, "tcp"): [("127.0.0.2", 32001), ("127.0.0.3", 32002)],
        ("127.0.0.9", 5353, "udp"): [("127.0.0.2", 33001), ("127.0.0.3", 33002)],
    }


def test_a_service_without_endpoints_still_has_its_listener() -> None:
    [route] = routes({"web": make_service("web", 1, ports=[PortSpec(target=80, published=8000)])}, {})
    assert (route.port, route.backends) == (8000, [])


def test_fingerprint_follows_content() -> None:
    a = endpoints([task(1), task(2)])
    assert fingerprint(a) == fingerprint(endpoints([task(2), task(1)]))
    assert fingerprint(a) != fingerprint(endpoints([task(1)]))


def test_services_with_a_vip_get_a_route_per_container_port_and_a_hosts_entry() -> None:
    api = make_service("shop_api", 2, stack="shop", ports=[PortSpec(target=8000)]).model_copy(update={"vip": "10.217.0.2"})
    other = make_service("blog_api", 1, stack="blog", ports=[PortSpec(target=8000)]).model_copy(update={"vip": "10.217.0.3"})
    running = make_task(api, 1, node="n1", ports=[published("127.0.0.2", 32001, 8000)])
    found = [r.model_dump() for r in routes({"shop_api": api, "blog_api": other}, {"shop_api": [running]})]
    table, vips = table_of(found, "127.0.0.9")
    assert table == {}  # nothing published
    assert vips == {("10.217.0.2", 8000, "tcp"): [("127.0.0.2", 32001)], ("10.217.0.3", 8000, "tcp"): []}
    assert hosts_of(found, "shop") == {"api": "10.217.0.2", "shop_api": "10.217.0.2"}


def test_free_vips_skip_the_network_address_the_first_host_and_those_used() -> None:
    vips = free_vips("10.217.0.0/29", {"10.217.0.3"})
    assert list(vips) == ["10.217.0.2", "10.217.0.4", "10.217.0.5", "10.217.0.6"]


def test_names_carry_every_vip_service_its_networks_and_healthy_tasks_only() -> None:
    from corral.manager.discovery import dns_address, names
    from corral.model import NetworkAttachment

    db = make_service("shop_db", 2, stack="shop").model_copy(update={"vip": "10.217.0.2"})
    joined = make_service("x", 1, networks=[NetworkAttachment(name="shop_default", aliases=["alias"])]).model_copy(update={"vip": "10.217.0.3"})
    no_vip = make_service("dry", 1)
    healthy = make_task(db, 1, state=TaskState.running)
    starting = make_task(db, 2, state=TaskState.starting)
    stopping = make_task(db, 3, state=TaskState.running, desired=DesiredState.shutdown)
    found = names({"shop_db": db, "x": joined, "dry": no_vip}, {"shop_db": [healthy, starting, stopping]})
    assert [(n.service, n.vip, [a.name for a in n.networks], n.tasks) for n in found] == [
        ("shop_db", "10.217.0.2", ["shop_default"], [healthy.id]),
        ("x", "10.217.0.3", ["shop_default"], []),
    ]
    assert found[1].networks[0].aliases == ["alias"]
    assert dns_address("10.217.5.0/24") == "10.217.5.1"


def test_ports_an_image_exposes_get_a_vip_route_from_the_tasks_that_publish_them() -> None:
    img = make_service("img", 1).model_copy(update={"vip": "10.217.0.9"})  # no port in its spec
    running = make_task(img, 1, state=TaskState.running, ports=[published("127.0.0.2", 32100, target=8081)])
    [route] = routes({"img": img}, {"img": [running]})
    assert (route.vip, route.port, route.target, route.backends) == ("10.217.0.9", 8081, 8081, ["127.0.0.2:32100"])
    assert routes({"img": img}, {"img": []}) == []
