"""`corral up --managers N`: a local control plane that survives losing a manager.

What it starts, each a process of its own (so that any one can be killed, as on real servers) and each stopped by
the PID it started, in the reverse order, when `corral up` stops:

- an etcd cluster of N members (Debian's etcd-server) on loopback ports, data in DATA_DIR/etcd/eN (ports kept in
  DATA_DIR/etcd/members.json, so the next `corral up` brings the same cluster back); skipped with --store etcd://...;
  over TLS, clients and peers alike, with an etcd CA of its own and certificates in DATA_DIR/etcd/tls (the managers'
  store URL names the CA and their client certificate);
- N managers on that etcd (`corral manager --store etcd://... --name mI --advertise URL`) on the --listen port and
  the N-1 ports after it: m1's data dir is DATA_DIR itself (where the CLI looks for the admin token and CA), mI's is
  DATA_DIR/managers/mI, given m1's cluster CA, join token and key-encryption key before its first start;
- the agents (in this process, as `corral up` runs them), each given every manager's URL.

Logs: DATA_DIR/logs/mI.log, DATA_DIR/etcd/eI.log.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHARED_FILES = ("ca.pem", "ca-key.pem", "join-token", "kek")  # what every manager of one cluster holds alike
READY_TIMEOUT = 60.0  # seconds for a manager to answer after its start


@dataclass
class ManagerProcess:
    name: str
    data_dir: Path
    url: str
    args: list[str]
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class HaPlan:
    """What `corral up --managers N` runs."""

    managers: int
    data_dir: Path
    host: str
    port: int
    scheme: str  # https, or http with --insecure
    registry: tuple[str, int] | None  # the first manager's registry; the others' on the ports after it
    store: str  # an operator's etcd:// URL, or "" to run a local etcd cluster
    manager_args: list[str]  # options every manager gets alike (leases, limits, ...)

    def processes(self, store_url: str) -> list[ManagerProcess]:
        rows = []
        for i in range(self.managers):
            name = f"m{i + 1}"
            data_dir = self.data_dir if i == 0 else self.data_dir / "managers" / name
            url = f"{self.scheme}://{self.host}:{self.port + i}"
            registry = ["--registry-listen", f"{self.registry[0]}:{self.registry[1] + i}"] if self.registry else ["--no-registry"]
            args = [
                "manager", "--data-dir", str(data_dir), "--listen", f"{self.host}:{self.port + i}", "--store", store_url,
                "--name", name, "--advertise", url, *registry, *self.manager_args,
            ]
            rows.append(ManagerProcess(name, data_dir, url, args))
        return rows


def run(plan: HaPlan, serve: Callable[[str, str], None], say: Callable[[str], None]) -> None:
    """Start etcd and the managers, then `serve(manager_urls, join_token)` (the agents, until a signal); stop all after."""
    from corral.model.etcd_tls import EtcdTlsFiles
    from corral.pki.etcd_certs import ensure_etcd_certificates
    from corral.store.etcd.local import EtcdCluster

    etcd = None
    if not plan.store:
        tls = ensure_etcd_certificates(EtcdTlsFiles(plan.data_dir / "etcd" / "tls"), time.time())
        etcd = EtcdCluster.at(plan.data_dir / "etcd", plan.managers, tls=tls)
    managers: list[ManagerProcess] = []
    try:
        if etcd is not None:
            say(f"starting etcd: {plan.managers} members ({etcd.url}), data in {etcd.root}")
            etcd.start_all()
        managers = plan.processes(plan.store or (etcd.url if etcd else ""))
        logs = plan.data_dir / "logs"
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        first, *others = managers
        _start(first, logs)
        _wait_ready(first)
        for manager in others:
            _share_identity(first.data_dir, manager.data_dir)
            _start(manager, logs)
        for manager in others:
            _wait_ready(manager)
        say(f"managers: {', '.join(f'{m.name} {m.url}' for m in managers)} (logs in {logs})")
        serve(",".join(m.url for m in managers), (first.data_dir / "join-token").read_text().strip())
    finally:
        say("stopping: the managers, then etcd")
        for manager in managers:
            _stop(manager.proc)
        if etcd is not None:
            etcd.stop(signal.SIGTERM)


def _start(manager: ManagerProcess, logs: Path) -> None:
    manager.log = logs / f"{manager.name}.log"
    with manager.log.open("ab") as log:
        manager.proc = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", *manager.args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C reaches `corral up` alone, which stops the agents first, then this
        )


def _share_identity(seed: Path, data_dir: Path) -> None:
    """What an operator copies from a running manager into a joining one (see manager/shared_identity.py)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for file in SHARED_FILES:
        if not (data_dir / file).exists():
            shutil.copy2(seed / file, data_dir / file)


def _wait_ready(manager: ManagerProcess) -> None:
    """Until the manager answers GET /v1/info with its own admin token and CA; its exit is an error naming its log."""
    from corral.client import ApiError, ManagerClient
    from corral.pki import client_context

    async def answers() -> bool:
        ca = manager.data_dir / "ca.pem"
        token = manager.data_dir / "admin-token"
        if not (ca.exists() and token.exists()):
            return False
        verify = client_context(ca.read_bytes()) if manager.url.startswith("https") else False
        async with ManagerClient(manager.url, token=token.read_text().strip(), timeout=2, verify=verify) as client:
            try:
                await client.get("/v1/info")
            except ApiError:
                return False
        return True

    deadline = time.monotonic() + READY_TIMEOUT
    while not asyncio.run(answers()):
        if manager.proc is not None and manager.proc.poll() is not None:
            raise ManagerFailed(f"manager {manager.name} exited ({manager.proc.returncode}): see {manager.log}")
        if time.monotonic() > deadline:
            raise ManagerFailed(f"manager {manager.name} did not answer at {manager.url} within {READY_TIMEOUT:g}s (see {manager.log})")
        time.sleep(0.2)


class ManagerFailed(RuntimeError):
    """A manager of `corral up --managers N` did not come up."""


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (a clean stop: a leader resigns), SIGKILL after 15 s; by the PID this module started."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
