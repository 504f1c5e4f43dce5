"""A local etcd cluster of Debian's `etcd` (etcd-server) on loopback ports: for `corral up --managers N` and the tests.

Every member serves its clients and peers over TLS when given the files of `corral.model.etcd_tls.EtcdTlsFiles`
(made by `corral.pki.etcd_certs`): client certificates required of both (`--client-cert-auth`,
`--peer-client-cert-auth`), and `url` names those files, so a store opened from it presents the client certificate.
Without them (`tls=None`) the members speak plain HTTP, for an operator's own setups and the tests that compare.

Each member has its data dir under one root (ROOT/eN), its log beside it (ROOT/eN.log), and ports chosen once and
kept in ROOT/members.json: a member's peer URL is part of the cluster's membership, so a cluster started again from
the same root (`corral up` after `corral up`, a test restarting killed members) must use the same ports. Every
member is stopped by the PID this module started, never by name.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from corral.model.etcd_tls import EtcdTlsFiles
from corral.store.etcd.tls import client_context

MEMBERS_FILE = "members.json"
# Short raft timings: every member is on this machine. The leader lease (2 s) is longer than an etcd election.
TIMINGS = ("--heartbeat-interval", "50", "--election-timeout", "500")
# Above etcd's defaults (128 ops, 1.5 MiB), so that a batch of the manager's writes (corral/manager/plan.py BATCH: 2,000
# tasks of 1-2 KB) is one Txn, one raft round and one fsync, not sixteen one after the other (docs/performance.md,
# "The etcd backend's write batches"); below etcd's advice of 10 MB per request. The store learns them from `url`.
MAX_TXN_OPS = 2048
MAX_REQUEST_BYTES = 8 * 1024 * 1024


class EtcdNotInstalled(RuntimeError):
    """No `etcd` binary on PATH."""


def free_port() -> int:
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

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class EtcdCluster:
    members: list[EtcdMember]
    root: Path
    extra: list[str] = field(default_factory=list)
    max_txn_ops: int = MAX_TXN_OPS
    max_request_bytes: int = MAX_REQUEST_BYTES
    tls: EtcdTlsFiles | None = None

    @staticmethod
    def at(root: Path, size: int, extra: list[str] | None = None, tls: EtcdTlsFiles | None = None) -> "EtcdCluster":
        """The cluster of ROOT: its members and ports as first chosen (ROOT/members.json), or `size` new ones."""
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        recorded = root / MEMBERS_FILE
        scheme = "https" if tls else "http"
        if recorded.exists():
            rows = json.loads(recorded.read_text())
        else:
            rows = [
                {"name": f"e{i + 1}", "client_port": free_port(), "peer_port": free_port(), "scheme": scheme} for i in range(size)
            ]
            recorded.write_text(json.dumps(rows, indent=2) + "\n")
        if len(rows) != size:
            raise ValueError(f"{recorded} holds an etcd cluster of {len(rows)} members, not {size}")
        # The peer URLs, scheme included, are part of the membership etcd keeps in its data dirs: a cluster made
        # without TLS cannot be started again with it (its members would call each other at http:// URLs).
        was = {str(row.get("scheme", "http")) for row in rows}
        if was != {scheme}:
            raise ValueError(
                f"the etcd cluster in {root} was made with {'/'.join(sorted(was))} peer URLs, and is now asked for {scheme}:"
                f" remove {root} to start a new one (the cluster's state in it is lost), or keep using the corral that made it"
            )
        members = [EtcdMember(r["name"], int(r["client_port"]), int(r["peer_port"]), root / r["name"]) for r in rows]
        return EtcdCluster(members, root, extra or [], tls=tls)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """The corral store URL of the whole cluster, with its members' limits (and the client certificate's options under TLS)."""
        return self.store_url()

    def store_url(self, prefix: str = "", through: list[str] | None = None) -> str:
        """A store URL of this cluster: its keys under /PREFIX, its members reached at `through` HOST:PORTs (a proxy)."""
        plain = "etcd://" + ",".join(through or [member.client for member in self.members]) + (f"/{prefix}" if prefix else "")
        options = f"max-txn-ops={self.max_txn_ops}&max-request-bytes={self.max_request_bytes}"
        return f"{plain}?{options}&{self.tls.store_options()}" if self.tls else f"{plain}?{options}"

    def client(self, timeout: float = 5.0) -> httpx.Client:
        """A client of the members' HTTP endpoints (`/health`, `/v3/...`), with the client certificate under TLS."""
        if self.tls is None:
            return httpx.Client(timeout=timeout)
        context = client_context(str(self.tls.ca), str(self.tls.client_cert), str(self.tls.client_key))
        return httpx.Client(timeout=timeout, verify=context)

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        files = self.tls
        pair = ["--cert-file", str(files.member_cert), "--key-file", str(files.member_key)]
        peer = ["--peer-cert-file", str(files.member_cert), "--peer-key-file", str(files.member_key)]
        return [
            *pair, "--client-cert-auth", "--trusted-ca-file", str(files.ca),
            *peer, "--peer-client-cert-auth", "--peer-trusted-ca-file", str(files.ca),
        ]

    def start(self, member: EtcdMember) -> None:
        """Start one member (again, with its data dir, if it ran before: etcd then ignores the --initial-* flags)."""
        binary = shutil.which("etcd")
        if binary is None:
            raise EtcdNotInstalled("no `etcd` on PATH: install Debian's etcd-server package (scripts/setup.sh does)")
        scheme = self.scheme
        initial = ",".join(f"{m.name}={scheme}://127.0.0.1:{m.peer_port}" for m in self.members)
        with (self.root / f"{member.name}.log").open("ab") as log:
            member.proc = subprocess.Popen(
                [
                    binary, "--name", member.name, "--data-dir", str(member.data_dir),
                    "--listen-client-urls", f"{scheme}://{member.client}", "--advertise-client-urls", f"{scheme}://{member.client}",
                    "--listen-peer-urls", f"{scheme}://127.0.0.1:{member.peer_port}",
                    "--initial-advertise-peer-urls", f"{scheme}://127.0.0.1:{member.peer_port}",
                    "--initial-cluster", initial, "--initial-cluster-state", "new", *TIMINGS, *self._tls_args(),
                    "--max-txn-ops", str(self.max_txn_ops), "--max-request-bytes", str(self.max_request_bytes), *self.extra,
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # a Ctrl-C reaches `corral up`, which stops it
            )

    def start_all(self, timeout: float = 30.0) -> None:
        """Start every member and wait until each is healthy; on failure, stop what was started."""
        try:
            for member in self.members:
                self.start(member)
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, members: list[EtcdMember] | None = None, timeout: float = 20.0) -> None:
        """Until each of `members` (default: all) says it is healthy (which needs a quorum)."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=1) as client:
            for member in members or self.members:
                self._wait_healthy(client, member, deadline, timeout)

    def _wait_healthy(self, client: httpx.Client, member: EtcdMember, deadline: float, timeout: float) -> None:
        while True:
            if member.proc is not None and member.proc.poll() is not None:
                raise RuntimeError(f"etcd {member.name} exited: see {self.root / (member.name + '.log')}")
            try:
                if client.get(f"{self.scheme}://{member.client}/health").json().get("health") == "true":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd {member.name} not healthy after {timeout}s (see {self.root / (member.name + '.log')})")
            time.sleep(0.1)

    def kill(self, member: EtcdMember, sig: int = signal.SIGKILL) -> None:
        """Signal one member by its PID and wait for it to exit (SIGKILL after 10 s if `sig` did not end it)."""
        if member.proc is not None and member.proc.poll() is None:
            member.proc.send_signal(sig)
            try:
                member.proc.wait(10)
            except subprocess.TimeoutExpired:
                member.proc.kill()
                member.proc.wait(10)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop every member this object started (SIGTERM: a clean stop, the data dirs kept as they are)."""
        for member in self.members:
            self.kill(member, sig)
