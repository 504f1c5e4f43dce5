"""Service names through real DNS, and stacks kept apart by their networks, with real containers.

One cluster, two stacks. From a container of `shop`: every service resolves by name and answers on its
virtual IP, whether its port comes from `expose:` or from its image's EXPOSE, also one deployed after the
container started; `tasks.web` lists the healthy replicas. From a container of `other`: none of it
resolves, and neither shop's container addresses nor its VIPs answer; one of `other`'s services that
joins shop's network on purpose (`external: true`) reaches what is on it. A service on an `internal`
network still resolves names and is reached on it. Removing the stacks leaves no network and no
firewall rule behind.
"""

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.cluster import Cluster, wait_until

EXPOSING_IMAGE = "corral-dns-expose:e2e"
SERVE = 'hostname > /www/id.txt; exec httpd -f -p {port} -h /www'

SHOP = """
services:
  web:
    image: corral-demo:latest
    command: ["sh", "-c", "{web}"]
    expose: [8080]
    networks:
      default: {{}}
      shared: {{aliases: [www]}}
    deploy: {{replicas: 2}}
  db:
    image: corral-demo:latest
    command: ["sh", "-c", "{db}"]
    expose: ["9090"]
  img:
    image: {image}
    command: ["sh", "-c", "{img}"]
  vault:
    image: corral-demo:latest
    command: ["sh", "-c", "{vault}"]
    expose: [6060]
    networks: [back]
  client:
    image: corral-demo:latest
    command: ["sleep", "3600"]
    networks: [default, back]
{late}
networks:
  shared: {{}}
  back: {{internal: true}}
"""

LATE = """
  late:
    image: corral-demo:latest
    command: ["sh", "-c", "{late}"]
    expose: [7070]
"""

OTHER = """
services:
  lone:
    image: corral-demo:latest
    command: ["sleep", "3600"]
  joined:
    image: corral-demo:latest
    command: ["sleep", "3600"]
    networks: [default, shop]
networks:
  shop: {external: true, name: shop_shared}
"""


def shop(with_late: bool) -> str:
    late = LATE.format(late=SERVE.format(port=7070)) if with_late else ""
    return SHOP.format(
        web=SERVE.format(port=8080), db=SERVE.format(port=9090), img=SERVE.format(port=8081), image=EXPOSING_IMAGE, late=late,
        vault=SERVE.format(port=6060),
    )


@pytest.fixture
def exposing_image(tmp_path: Path) -> Iterator[str]:
    """corral-demo with `EXPOSE 8081`: a port that only the image declares."""
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "Dockerfile").write_text("FROM corral-demo:latest\nEXPOSE 8081\n")
    subprocess.run(["docker", "build", "-q", "-t", EXPOSING_IMAGE, str(tmp_path / "image")], check=True, capture_output=True)
    try:
        yield EXPOSING_IMAGE
    finally:
        subprocess.run(["docker", "image", "rm", "-f", EXPOSING_IMAGE], capture_output=True)


@pytest.fixture
def dns_cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path / "cluster", nodes=2, first_address="127.0.0.72")
    try:
        yield running.start()
    finally:
        running.cleanup()


def container(cluster: Cluster, service: str):  # type: ignore[no-untyped-def]
    [found] = [c for c in cluster.containers(service=service) if c.status == "running"]
    return found


def run(box, command: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code, out = box.exec_run(["sh", "-c", command])
    return code, out.decode(errors="replace")


def lookup(box, name: str) -> list[str] | None:  # type: ignore[no-untyped-def]
    """The addresses `nslookup NAME` prints in the container, None when it fails."""
    code, out = run(box, f"nslookup {name}")
    if code != 0:
        return None
    answer = out.split("Name:", 1)[1] if "Name:" in out else ""
    return sorted(line.split()[-1] for line in answer.splitlines() if line.startswith("Address"))


def fetch(box, url: str) -> str | None:  # type: ignore[no-untyped-def]
    code, out = run(box, f"timeout 5 wget -qO- {url}")
    return out.strip() if code == 0 else None


def vip(cluster: Cluster, service: str) -> str:
    return str(json.loads(cluster.cli("service", "inspect", service).stdout)["vip"])


def ip_on(box, network_suffix: str) -> str:  # type: ignore[no-untyped-def]
    box.reload()
    networks = box.attrs["NetworkSettings"]["Networks"]
    [ip] = [n["IPAddress"] for name, n in networks.items() if name.endswith(network_suffix)]
    return str(ip)


def test_service_names_resolve_within_a_stack_and_stacks_stay_apart(dns_cluster: Cluster, compose_file, exposing_image) -> None:
    cluster = dns_cluster
    cluster.cli("deploy", "-c", str(compose_file(shop(False))), "--name", "shop")
    for service, count in (("shop_web", 2), ("shop_db", 1), ("shop_img", 1), ("shop_vault", 1), ("shop_client", 1)):
        cluster.wait_running(service, count)
    client = container(cluster, "shop_client")
    ids = {c.attrs["Config"]["Hostname"] for c in cluster.containers(service="shop_web")}

    # a service with only `expose:`, by its short and full names: its VIP, and its port answers there
    assert wait_until(lambda: lookup(client, "db") == [vip(cluster, "shop_db")], 20, what="db to resolve")
    assert lookup(client, "shop_db") == [vip(cluster, "shop_db")]
    assert fetch(client, "http://db:9090/id.txt") == container(cluster, "shop_db").attrs["Config"]["Hostname"]
    # a port that only the image EXPOSEs
    assert lookup(client, "img") == [vip(cluster, "shop_img")]
    assert wait_until(lambda: fetch(client, "http://img:8081/id.txt"), 20, what="the image's EXPOSEd port on the VIP")
    # replicas behind the VIP, and tasks.web: the healthy replicas' own addresses
    assert {fetch(client, "http://web:8080/id.txt") for _ in range(8)} == ids
    web_ips = sorted(ip_on(c, "shop_default") for c in cluster.containers(service="shop_web"))
    assert lookup(client, "tasks.web") == web_ips
    # names that are no service's are not answered as one
    assert lookup(client, "nosuchservice") is None
    # an internal network: its services resolve and answer (on it), and see only what is on it
    assert fetch(client, "http://vault:6060/id.txt") == container(cluster, "shop_vault").attrs["Config"]["Hostname"]
    vault = container(cluster, "shop_vault")
    assert lookup(vault, "vault") == [vip(cluster, "shop_vault")]
    assert lookup(vault, "client") == [vip(cluster, "shop_client")] and lookup(vault, "db") is None

    # a service deployed after the client started resolves in it, and answers
    began = time.monotonic()
    cluster.cli("deploy", "-c", str(compose_file(shop(True))), "--name", "shop")
    assert wait_until(lambda: lookup(client, "late"), 20, 0.1, what="late to resolve") == [vip(cluster, "shop_late")]
    resolved_after = time.monotonic() - began
    assert wait_until(lambda: fetch(client, "http://late:7070/id.txt"), 30, what="late to answer")
    assert resolved_after < 10, resolved_after

    # another stack: shop's names do not resolve, and neither its containers nor its VIPs answer
    cluster.cli("deploy", "-c", str(compose_file(OTHER)), "--name", "other")
    cluster.wait_running("other_lone", 1)
    cluster.wait_running("other_joined", 1)
    lone = container(cluster, "other_lone")
    assert lookup(lone, "db") is None and lookup(lone, "shop_db") is None and lookup(lone, "tasks.web") is None
    assert lookup(lone, "lone") == [vip(cluster, "other_lone")]  # its own stack does resolve
    db_ip = ip_on(container(cluster, "shop_db"), "shop_default")
    assert fetch(lone, f"http://{vip(cluster, 'shop_db')}:9090/id.txt") is None
    assert fetch(lone, f"http://{db_ip}:9090/id.txt") is None
    assert fetch(lone, f"http://{vip(cluster, 'shop_web')}:8080/id.txt") is None
    assert fetch(client, f"http://{db_ip}:9090/id.txt")  # the same address answers within its stack

    # joined on purpose: what is on shop_shared is reachable (by name, alias, VIP), the rest of shop is not
    joined = container(cluster, "other_joined")
    assert lookup(joined, "web") == [vip(cluster, "shop_web")]
    assert lookup(joined, "www") == [vip(cluster, "shop_web")]
    assert fetch(joined, "http://www:8080/id.txt") in ids
    assert lookup(joined, "db") is None
    assert fetch(joined, f"http://{vip(cluster, 'shop_db')}:9090/id.txt") is None
    assert lookup(joined, "lone") == [vip(cluster, "other_lone")]

    # nothing is left behind: networks and their isolation rules go with the stacks
    engine = docker.from_env()
    label = f"corral.cluster={cluster.cluster_id}"
    names = {n.attrs["Labels"]["corral.network"] for n in engine.networks.list(filters={"label": label})}
    assert names == {"shop_default", "shop_shared", "shop_back", "other_default"}
    other_bridge = f"br-{engine.networks.list(filters={'label': [label, 'corral.network=other_default']})[0].id[:12]}"
    cluster.cli("stack", "rm", "other")
    wait_until(
        lambda: {n.attrs["Labels"]["corral.network"] for n in engine.networks.list(filters={"label": label})}
        == {"shop_default", "shop_shared", "shop_back"},
        45, 0.5, what="other's network to go",
    )
    chain = f"CORRAL-NET-{cluster.cluster_id[:8]}"
    wait_until(lambda: other_bridge not in _rules(chain), 10, what="other's rules to go")
    assert fetch(client, "http://db:9090/id.txt")  # shop carries on
    cluster.cli("stack", "rm", "shop")
    wait_until(lambda: not engine.networks.list(filters={"label": label}), 60, 0.5, what="every network to go")
    assert "-i br-" not in _rules(chain).replace("-i br-+", "")


def _rules(chain: str) -> str:
    return subprocess.run(["iptables", "-w", "-S", chain], capture_output=True, text=True).stdout
