"""Compose's engine keys (user, hostname, ulimits, tmpfs, logging...) reach real containers, checked with `docker inspect`
and from inside the container; a change of one is rolled out like an image change."""

import ipaddress
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.cluster import Cluster, wait_until

COMPOSE = """
services:
  web:
    image: corral-demo:latest
    restart: on-failure:4
    user: "{user}"
    working_dir: /www
    hostname: web1
    domainname: example.test
    cap_drop: [NET_RAW]
    cap_add: [CHOWN]
    sysctls: {{net.core.somaxconn: "512"}}
    ulimits: {{nofile: {{soft: 1024, hard: 2048}}, nproc: 300}}
    init: true
    tmpfs: ["/cache:size=1m"]
    read_only: true
    stop_signal: SIGUSR1
    stop_grace_period: 3s
    shm_size: 8m
    extra_hosts: ["db.test:10.1.2.3"]
    dns: [10.0.0.53]
    dns_search: [example.test]
    labels: {{team: web}}
    logging: {{driver: json-file, options: {{max-size: 1m, max-file: "2"}}}}
    stdin_open: true
    tty: true
    pids_limit: 64
    security_opt: ["no-new-privileges:true"]
    mem_limit: 64m
    cpus: 0.5
    platform: linux/amd64
    container_name: ignored
"""


def _exec(container_id: str, *command: str) -> str:
    done = subprocess.run(["docker", "exec", container_id, *command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_engine_key_reaches_the_container_and_a_change_rolls_out(
    cluster: Cluster, compose_file: Callable[..., Path]
) -> None:
    done = cluster.cli("deploy", "-c", str(compose_file(COMPOSE.format(user="1000:1000"))), "-n", "keys", "--detach")
    assert "container_name is ignored" in done.stderr
    cluster.wait_running("keys_web", 1)
    [container] = [c for c in cluster.containers(service="keys_web") if c.status == "running"]
    attrs = container.attrs
    config, host = attrs["Config"], attrs["HostConfig"]
    assert (config["User"], config["WorkingDir"], config["Hostname"], config["Domainname"]) == ("1000:1000", "/www", "web1", "example.test")
    assert (config["StopSignal"], config["Tty"], config["OpenStdin"], config["Labels"]["team"]) == ("SIGUSR1", True, True, "web")
    assert host["CapDrop"] == ["NET_RAW"] and host["CapAdd"] == ["CHOWN"]
    assert host["Sysctls"] == {"net.core.somaxconn": "512"}
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]} == {"nofile": (1024, 2048), "nproc": (300, 300)}
    assert host["Init"] is True and host["ReadonlyRootfs"] is True and host["Tmpfs"] == {"/cache": "size=1m"}
    assert host["ShmSize"] == 8 * 1024**2 and host["PidsLimit"] == 64 and host["SecurityOpt"] == ["no-new-privileges:true"]
    assert "db.test:10.1.2.3" in host["ExtraHosts"]
    # the node's DNS responder (service names) first, on the service network's first address; the file's servers after it
    responder = str(next(ipaddress.ip_network(cluster.service_network).hosts()))
    assert host["Dns"] == [responder, "10.0.0.53"] and host["DnsSearch"] == ["example.test"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert host["Memory"] == 64 * 1024**2 and host["NanoCpus"] == 500_000_000
    assert host["RestartPolicy"]["Name"] == "no"  # corral decides restarts, by the service's policy:
    service = cluster.api("GET", "/v1/services/keys_web")
    assert service["spec"]["restart_policy"]["condition"] == "on-failure" and service["spec"]["restart_policy"]["max_attempts"] == 4

    # ...and inside the container, as the application sees them
    assert _exec(container.id, "id", "-u") == "1000"
    assert _exec(container.id, "hostname") == "web1"
    assert _exec(container.id, "sh", "-c", "ulimit -n") == "1024"
    assert "10.1.2.3\tdb.test" in _exec(container.id, "cat", "/etc/hosts")
    resolv = _exec(container.id, "cat", "/etc/resolv.conf")  # on a stack network: the engine's resolver, which asks them
    assert "nameserver 127.0.0.11" in resolv and "example.test" in resolv
    assert _exec(container.id, "sh", "-c", "touch /www/x 2>&1 || echo read-only").endswith("read-only")
    assert _exec(container.id, "sh", "-c", "touch /cache/x && echo written") == "written"
    assert _exec(container.id, "cat", "/proc/1/comm") != "httpd"  # docker-init is pid 1

    # a changed key is a new version: the container is replaced by one with the new value
    cluster.cli("deploy", "-c", str(compose_file(COMPOSE.format(user="1001"))), "-n", "keys", "--detach")

    def replaced() -> bool:
        live = [c for c in cluster.containers(service="keys_web") if c.status == "running"]
        return len(live) == 1 and live[0].id != container.id and live[0].attrs["Config"]["User"] == "1001"

    wait_until(replaced, 60, 0.5, what="the container with user 1001")
    assert cluster.api("GET", "/v1/services/keys_web")["version"] == 2
