"""What the API routes and the loops share inside one manager process."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.manager.priority import UsersFirst
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases
from corral.manager.leadership import Leadership
from corral.manager.metrics import ManagerMetrics
from corral.manager.node_streams import NodeStreams
from corral.manager.settings import ManagerSettings
from corral.model.errors import CorralError
from corral.pki import ClusterCA
from corral.store import Store


@dataclass
class ManagerContext:
    settings: ManagerSettings
    store: Store
    cache: StateCache
    leases: Leases
    join_token: str
    cluster_id: str
    ca: ClusterCA | None = None  # signs node certificates (None: a context made by hand in a test)
    clock: Callable[[], float] = field(default=time.time)
    mesh_errors: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> listener -> why it cannot serve it
    # What every node's mesh serves, as last computed (api/discovery.py), with the `cache.changes` it was computed at:
    # the agents' long polls all read it at every change of the cache.
    mesh_routes: tuple[int, object] | None = None
    # One batch of many nodes' work (a watch reply, a status batch) worked on at a time: the others
    # wait off the event loop's ready queue, so a user's request queues behind one batch, not all.
    agent_batches: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    users_first: UsersFirst = field(default_factory=UsersFirst)  # and they wait while users are answered
    node_streams: NodeStreams | None = None  # the agents' log and exec streams (None: no CA, no TLS)
    data_key: bytes | None = None  # the cluster's data-encryption key, which seals secret values (access/encryption.py)
    leadership: Leadership | None = None  # whether this manager leads the control plane (None: a context made by hand)
    metrics: ManagerMetrics | None = None  # its Prometheus metrics (made by the API's install when not given)

    def secrets_key(self) -> bytes:
        """The data key; a manager started without one cannot read or store secrets."""
        if self.data_key is None:
            raise CorralError("this manager has no data key: secrets cannot be stored or read")
        return self.data_key
