"""The agent's settings, with every default in one place."""

from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.mesh.settings import DataPath
from corral.model import Resources


@dataclass(frozen=True)
class AgentSettings:
    manager_url: str
    name: str
    address: str
    token: str
    engine: str = "docker"
    resources: Resources | None = None  # default: what the machine has
    labels: dict[str, str] = field(default_factory=dict)
    poll_interval: float = 1.0  # how often the engine's containers are listed (when the engine cannot tell of changes)
    resync_interval: float = 30.0  # how often they are listed all the same while the engine tells of every change
    register_patience: float = 30.0  # seconds a busy or unreachable manager is retried at start (back-off 0.5 s to 5 s)
    long_poll: float = 20.0  # how long one wait for new tasks may last
    heartbeat_timeout: float = 3.0  # a heartbeat not answered by then is given up (the next one goes on a fresh try)
    mesh: bool = True  # serve the routing mesh (published ports) on `address`
    mesh_data_path: DataPath = "userspace"  # or "kernel": iptables DNAT for TCP (see corral/agent/mesh/kernel.py)
    state_dir: Path | None = None  # the node's key and certificate (default: a private temporary dir)
    volume_poll: float = 2.0  # how often the agent asks which of its volumes are to be removed
    dns: bool = True  # serve service names to containers (DNS responder, per-stack networks, isolation rules)
    dns_upstreams: tuple[str, ...] | None = None  # resolvers for other names, HOST or HOST:PORT (None: /etc/resolv.conf)
    node_port: int | None = 7072  # the node listener (logs, exec for the manager) on `address`; 0: any free port, None: none
    metrics_port: int | None = 7071  # the agent's /metrics (plain HTTP) on `address`; 0: any free port, None: none
    drain_delay: float = 1.0  # seconds between leaving the mesh and SIGTERM, for every node's proxy to let go
