"""A real etcd (Debian's etcd-server) for tests: one member, or a cluster, on loopback ports with a temp data dir.

Each member is stopped by the PID this harness started (SIGKILL, then waited for), even when a test failed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def client(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclass
class EtcdCluster:
    members: list[EtcdMember]
    root: Path
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The corral store URL of the whole cluster."""
        return "etcd://" + ",".join(member.client for member in self.members)

    def start(self, member: EtcdMember, new: bool = True) -> None:
        initial = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)
        log = open(self.root / f"{member.name}.log", "ab")
        member.proc = subprocess.Popen(
            [
                "etcd", "--name", member.name, "--data-dir", str(member.data_dir),
                "--listen-client-urls", f"http://{member.client}", "--advertise-client-urls", f"http://{member.client}",
                "--listen-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{member.peer_port}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--heartbeat-interval", "50", "--election-timeout", "500", *self.extra,
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self, members: list[EtcdMember] | None = None, timeout: float = 20.0) -> None:
        """Until each of `members` (default: all) says it is healthy (which needs a quorum)."""
        deadline = time.monotonic() + timeout
        for member in members or self.members:
            while True:
                if member.proc is not None and member.proc.poll() is not None:
                    raise RuntimeError(f"etcd {member.name} exited: see {self.root / (member.name + '.log')}")
                try:
                    if httpx.get(f"http://{member.client}/health", timeout=1).json().get("health") == "true":
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"etcd {member.name} not healthy after {timeout}s")
                time.sleep(0.1)

    def kill(self, member: EtcdMember) -> None:
        if member.proc is not None and member.proc.poll() is None:
            member.proc.kill()
            member.proc.wait(10)

    def stop(self) -> None:
        for member in self.members:
            self.kill(member)
        shutil.rmtree(self.root, ignore_errors=True)


def start_etcd(size: int = 1, extra: list[str] | None = None) -> EtcdCluster:
    """Start `size` members on free loopback ports; the caller stops them (`stop`), in a finally."""
    root = Path(tempfile.mkdtemp(prefix="corral-etcd-"))
    members = [EtcdMember(f"e{i}", _free_port(), _free_port(), root / f"e{i}") for i in range(size)]
    cluster = EtcdCluster(members, root, extra or [])
    try:
        for member in members:
            cluster.start(member)
        cluster.wait_ready()
    except BaseException:
        cluster.stop()
        raise
    return cluster
