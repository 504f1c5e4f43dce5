"""The manager's settings, with every default in one place."""

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from corral.model.limits import Limits
from corral.pki import CA_CERT_FILE, DEFAULT_NODE_CERT_LIFETIME


@dataclass(frozen=True)
class ManagerSettings:
    data_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 7070
    store_url: str = ""  # default: sqlite in data_dir
    # Several managers on one etcd store: each has a name and the URL the others, agents and the CLI reach it at;
    # one leads (runs the controller), elected through the store with a term of `leader_ttl` seconds.
    name: str = "manager"
    advertise_url: str = ""  # default: `url`
    leader_ttl: float = 2.0  # etcd's smallest lease with its default election timeout
    node_lease: float = 3.0  # a heartbeat renews a node's lease for this long
    service_network: str = "10.217.0.0/16"  # services' virtual IPs (service-to-service by name) come from here
    node_grace: float = 2.0  # past its lease a node is `late`; this much later it is down and its tasks replaced
    heartbeat_interval: float = 1.0  # what agents are told to use
    stall_threshold: float = 0.5  # the event loop not running this long is a stall: leases are extended by it
    reconcile_interval: float = 1.0  # a reconcile pass at least this often
    schedule_sample: int | None = None  # candidate nodes examined per placement (None: all)
    # Replicas a pass starts at most (fresh slots of deploys and scale-ups; the rest the next pass): bounds
    # the memory of a deploy of a million replicas (replication.reconcile's `new_slots`).
    new_slots_per_pass: int = 20_000
    registry_listen: str | None = None  # HOST:PORT of the image registry (None: no registry; the CLI defaults to 127.0.0.1:5000)
    # Store revisions kept for watches and `corral events --since` (about a day of normal operation,
    # see docs/architecture.md); older ones are compacted every `compact_interval` seconds.
    store_history: int = 100_000
    compact_interval: float = 10.0
    task_history: int = 5  # ended tasks kept per slot, with their containers (`service ps`, `service logs`), as Swarm
    limits: Limits = field(default_factory=Limits)  # how large a request body, a compose file and a spec may be
    parse_budget: float = 10.0  # seconds a compose file may take to read before it is refused
    tls: bool = True  # the API over HTTPS; False (`--insecure`) only on a loopback address
    tls_cert: Path | None = None  # the API's certificate and key (default: issued by the cluster CA, in the data dir)
    tls_key: Path | None = None
    advertise: tuple[str, ...] = ()  # more names and addresses the server certificate is valid for
    cert_expiry: float = DEFAULT_NODE_CERT_LIFETIME  # seconds a node certificate is valid
    allow_bind: tuple[str, ...] = ()  # host directories a service may bind-mount (under); none by default
    allow_privileged: bool = False  # privileged, host namespaces, devices, capabilities (compose/privileges.py)
    # `--autolock`: the passphrase the key-encryption key is derived from (access/encryption.py); None: DATA_DIR/kek
    unlock_key: str | None = field(default=None, repr=False)

    @property
    def registry_root(self) -> Path:
        return self.data_dir / "registry"

    @property
    def down_after(self) -> float:
        """Seconds without a heartbeat before a node is down: lease plus grace."""
        return self.node_lease + self.node_grace

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite://{self.data_dir / 'store.db'}"

    @property
    def sqlite_file(self) -> Path | None:
        """The file of a SQLite store, or None for another store."""
        return Path(self.store.removeprefix("sqlite://")) if self.store.startswith("sqlite://") else None

    @property
    def public_url(self) -> str:
        """Where the other managers, agents and the CLI reach this manager."""
        return self.advertise_url or self.url

    @property
    def ca_file(self) -> Path:
        return self.data_dir / CA_CERT_FILE

    @property
    def url(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{'https' if self.tls else 'http'}://{host}:{self.listen_port}"

    def server_names(self) -> tuple[list[str], list[str]]:
        """The DNS names and IP addresses the server certificate must cover: the listen address, loopback, --advertise,
        the registry's host."""
        dns, ips = ["localhost"], ["127.0.0.1"]
        registry = [self.registry_listen.rpartition(":")[0].strip("[]")] if self.registry_listen else []
        for name in (self.listen_host, *self.advertise, *registry):
            if name in ("0.0.0.0", "::", ""):
                continue
            try:
                ipaddress.ip_address(name)
                ips.append(name)
            except ValueError:
                dns.append(name)
        return list(dict.fromkeys(dns)), list(dict.fromkeys(ips))
