"""The manager's settings, with every default in one place."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManagerSettings:
    data_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 7070
    store_url: str = ""  # default: sqlite in data_dir
    node_lease: float = 5.0  # seconds without a heartbeat before a node is down
    heartbeat_interval: float = 1.0  # what agents are told to use
    reconcile_interval: float = 1.0  # a reconcile pass at least this often
    schedule_sample: int | None = None  # candidate nodes examined per placement (None: all)

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite://{self.data_dir / 'store.db'}"

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"
