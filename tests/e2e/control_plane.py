"""A control plane on etcd for end-to-end tests: a real etcd, `corral manager --store etcd://...` and
`corral agent` processes apart, as on real servers.

Every process is stopped by the PID this harness started; every container the cluster ran is removed by
its cluster-id label; the etcd members and temp dirs go too, even when a test failed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.cluster import CORRAL, free_port, private_service_network, remove_containers, stop_process, wait_until
from tests.etcd_server import EtcdCluster, start_etcd
from tests.tls import admin_headers, admin_token, ca_file, verify


from corral.cli.ha_up import SHARED_FILES  # what every manager of one cluster holds alike


@dataclass
class ManagerProcess:
    name: str
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@dataclass
class ControlPlane:
    root: Path
    etcd: EtcdCluster
    network: str = field(default_factory=private_service_network)
    managers: list[ManagerProcess] = field(default_factory=list)
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cluster_id: str = ""

    @staticmethod
    def create(root: Path, etcd_members: int = 1) -> "ControlPlane":
        root.mkdir(parents=True, exist_ok=True)
        return ControlPlane(root, start_etcd(etcd_members))

    def _log(self, name: str) -> Any:
        return (self.root / f"{name}.log").open("ab")

    def start_manager(
        self, name: str = "m1", port: int | None = None, data_dir: Path | None = None, seed: ManagerProcess | None = None,
        registry: str | None = None, store: str | None = None,
    ) -> ManagerProcess:
        """Start `corral manager NAME` on the etcd store; `seed`: a manager whose cluster identity (CA, join token,
        key-encryption key) is copied into this one's data dir first, as an operator joining a manager does;
        `registry`: HOST:PORT of its image registry (none without); `store`: another way to the same etcd (e.g.
        through a proxy the test cuts)."""
        manager = ManagerProcess(name, data_dir or self.root / name, port or free_port())
        if seed is not None:
            manager.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for file in SHARED_FILES:
                shutil.copy2(seed.data_dir / file, manager.data_dir / file)
        log = self._log(name)
        manager.proc = subprocess.Popen(
            [*CORRAL, "manager", "--data-dir", str(manager.data_dir), "--listen", f"127.0.0.1:{manager.port}",
             "--store", store or self.etcd.url, *(["--registry-listen", registry] if registry else ["--no-registry"]),
             "--service-network", self.network,
             "--name", name, "--advertise", manager.url],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        self.managers = [m for m in self.managers if m.name != name] + [manager]  # before the wait: stopped even if it fails
        wait_until(lambda: self._answers(manager), 30, what=f"manager {name}'s API")
        self.cluster_id = self.cluster_id or self.api(manager, "GET", "/v1/info")["cluster_id"]
        return manager

    def _answers(self, manager: ManagerProcess) -> bool:
        if manager.proc is not None and manager.proc.poll() is not None:
            raise AssertionError(f"manager {manager.name} exited: {(self.root / (manager.name + '.log')).read_text()[-2000:]}")
        if not (ca_file(manager.data_dir).exists() and (manager.data_dir / "admin-token").exists()):
            return False
        answer = httpx.get(manager.url + "/v1/info", headers=admin_headers(manager.data_dir), verify=verify(manager.data_dir), timeout=2)
        return answer.status_code == 200

    def start_agent(self, manager: ManagerProcess, name: str, address: str, managers: list[ManagerProcess] | None = None) -> None:
        """An agent of `manager`'s cluster, told every manager of `managers` (comma-separated) when given."""
        token = (manager.data_dir / "join-token").read_text().strip()
        urls = ",".join(m.url for m in managers) if managers else manager.url
        log = self._log(name)
        self.agents.append(subprocess.Popen(
            [*CORRAL, "agent", "--manager", urls, "--name", name, "--address", address, "--token", token],
            stdout=log, stderr=subprocess.STDOUT,
        ))
        log.close()

    def kill(self, manager: ManagerProcess, sig: int = signal.SIGKILL) -> None:
        if manager.proc is not None and manager.proc.poll() is None:
            manager.proc.send_signal(sig)
            manager.proc.wait(30)

    def api(self, manager: ManagerProcess, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, manager.url + path, json=body, timeout=10, verify=verify(manager.data_dir), headers=admin_headers(manager.data_dir)
        )
        response.raise_for_status()
        return response.json()

    def cli(self, manager: ManagerProcess | list[ManagerProcess], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`corral ARGS` against one manager, or a list of them (CORRAL_MANAGER=URL1,URL2,...)."""
        managers = manager if isinstance(manager, list) else [manager]
        env = {
            **os.environ, "CORRAL_MANAGER": ",".join(m.url for m in managers), "CORRAL_CA": str(ca_file(managers[0].data_dir)),
            "CORRAL_TOKEN": admin_token(managers[0].data_dir),
        }
        done = subprocess.run([*CORRAL, *args], env=env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"corral {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def etcd_keys(self, prefix: str = "/corral/") -> list[str]:
        """The keys etcd holds under prefix, read from etcd itself (not through corral)."""
        import base64

        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        with self.etcd.client() as client:
            reply = client.post(
                f"{self.etcd.scheme}://{self.etcd.members[0].client}/v3/kv/range",
                json={"key": base64.b64encode(prefix.encode()).decode(), "range_end": base64.b64encode(end.encode()).decode(), "keys_only": True},
            ).json()
        return [base64.b64decode(kv["key"]).decode() for kv in reply.get("kvs", [])]

    def cleanup(self) -> None:
        for proc in [*self.agents, *(m.proc for m in self.managers if m.proc is not None)]:
            stop_process(proc)
        if self.cluster_id:
            remove_containers(self.cluster_id)
        self.etcd.stop()
