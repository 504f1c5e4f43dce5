"""Running a manager: open the store, start the cache and the control loop, serve the API."""

import asyncio
import logging
import secrets
import time
from typing import Any

import uvicorn

from corral.manager import data_dir, keys, managers
from corral.manager.access.encryption import open_data_key
from corral.manager.api import create_app
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases, load_or_create_token
from corral.manager.autoscaler import Autoscaler, cpu_reader, mesh_reader
from corral.manager.compaction import Compactor
from corral.manager.context import ManagerContext
from corral.manager.registry_server import RegistryServer
from corral.manager.controller import Controller
from corral.manager.leadership import Leadership
from corral.manager.metrics import ManagerMetrics
from corral.manager.access import tokens
from corral.manager.peer_certs import PeerCertificateProtocol
from corral.manager.registry_access import registry_authorizer
from corral.manager.registry_peers import peer_registries
from corral.manager.loop_watch import LoopLag, StallSampler
from corral.manager.runtime import keep_old_objects_out_of_collections
from corral.manager.settings import ManagerSettings
from corral.manager.shared_identity import check_cluster_ca
from corral.manager.stalls import StallWatch
from corral.manager.node_streams import NodeStreams
from corral.pki import ClusterCA, client_context, load_or_create_ca, load_or_create_server_certificate, uvicorn_ssl_options
from corral.pki.manager_certs import issue_manager_client_certificate
from corral.store import Store, open_store
from corral.store.measured import MeasuredStore

log = logging.getLogger(__name__)


async def _cluster_id(store: Store) -> str:
    found = await store.get(keys.CLUSTER)
    if found:
        return str(found.value["id"])
    cluster_id = secrets.token_hex(6)
    try:
        await store.put(keys.CLUSTER, {"id": cluster_id, "created_at": time.time()}, expect=0)
    except Exception:
        found = await store.get(keys.CLUSTER)
        assert found is not None
        return str(found.value["id"])
    return cluster_id


class Manager:
    """A running manager; `start` returns once the API is serving."""

    def __init__(self, settings: ManagerSettings) -> None:
        self.settings = settings
        self.context: ManagerContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self._registry: RegistryServer | None = None
        self._stall_sampler: StallSampler | None = None

    async def start(self) -> ManagerContext:
        settings = self.settings
        data_dir.prepare(settings.data_dir, settings.sqlite_file)
        ca = load_or_create_ca(settings.data_dir, time.time())
        token = load_or_create_token(settings.data_dir, ca.certificate)
        tls_options = self._tls_options(ca)
        data_dir.prepare(settings.data_dir)  # the certificates just written are private too (the dir is 0700 anyway)
        store = await open_store(settings.store)
        await check_cluster_ca(store, ca)  # several managers on one store must share one CA
        await tokens.ensure_admin_token(store, settings.data_dir, time.time())  # DATA_DIR/admin-token: what `docker login` takes
        cache = StateCache(store)
        metrics = ManagerMetrics(cache)
        leases = Leases()
        stalls = StallWatch(leases, time.time, settings.stall_threshold)
        ctx = ManagerContext(
            settings=settings, store=MeasuredStore(store, metrics.observe_write), cache=cache, metrics=metrics, leases=leases, join_token=token, cluster_id=await _cluster_id(store),
            data_key=await open_data_key(store, settings.data_dir, settings.unlock_key),
            ca=ca, node_streams=self._node_streams(ca),
        )
        self.context = ctx
        cache.busy = ctx.users_first.busy  # users' requests first: the cache applies smaller batches while one is answered
        await managers.announce(ctx)
        self._tasks.append(asyncio.create_task(stalls.run(), name="stalls"))
        self._tasks.append(asyncio.create_task(keep_old_objects_out_of_collections(), name="gc"))
        self._tasks.append(asyncio.create_task(LoopLag(metrics.loop_lag.observe).run(), name="loop-lag"))
        if settings.log_loop_stalls is not None:
            self._stall_sampler = StallSampler(asyncio.get_running_loop(), settings.log_loop_stalls)
            self._stall_sampler.start()
        self._tasks.append(asyncio.create_task(cache.run(), name="cache"))
        await cache.synced.wait()

        async def lead(fenced: Store) -> None:
            """The leader's work, through the store fenced by its term: the controller (with node health), compaction,
            autoscaling."""
            leases.clear()  # the controller seeds a fresh lease for every node: no node is down because the leader changed
            fenced = MeasuredStore(fenced, metrics.observe_write)
            controller = Controller(
                fenced, cache, leases, settings, stalls=stalls, on_pass=metrics.observe_pass, users_turn=ctx.users_first.wait_turn
            )
            compactor = Compactor(fenced, settings.store_history, settings.compact_interval)
            autoscaler = Autoscaler(fenced, cache, cpu_reader(ctx), ctx.clock, read_mesh=mesh_reader(ctx))
            await asyncio.gather(controller.run(), compactor.run(), autoscaler.run())

        ctx.leadership = Leadership(
            store.election(settings.leader_ttl), {"name": settings.name, "url": settings.public_url}, lead
        )
        self._tasks.append(asyncio.create_task(ctx.leadership.run(), name="leadership"))
        config = uvicorn.Config(
            create_app(ctx),
            host=settings.listen_host,
            port=settings.listen_port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            http=PeerCertificateProtocol,
            **tls_options,
        )
        self._server = uvicorn.Server(config)
        # No install_signal_handlers override: uvicorn (>= 0.29) has no such hook; it captures SIGINT/SIGTERM only while
        # serve() runs and raises them again when it returns, so the process's own handlers still see them.
        self._tasks.append(asyncio.create_task(self._server.serve(), name="api"))
        while not self._server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raises why it could not start (port taken...)
            await asyncio.sleep(0.02)
        if settings.registry_listen is not None:
            try:
                self._registry = RegistryServer(
                    settings, registry_authorizer(ctx), self._registry_tls(ca), peer_registries(ctx), metrics.count_registry_bytes
                )
                await self._registry.start()
            except (OSError, ValueError) as err:  # the control plane runs on; deploys from other registries still work
                self._registry = None
                print(f"WARNING: image registry not started: {err}", flush=True)
                log.error("image registry not started: %s", err)
        return ctx

    def _tls_options(self, ca: ClusterCA) -> dict[str, Any]:
        """uvicorn's TLS options: the server certificate (the given one, or the cluster CA's), client certificates optional."""
        settings = self.settings
        if not settings.tls:
            return {}
        if settings.tls_cert is not None and settings.tls_key is not None:
            cert, key = settings.tls_cert, settings.tls_key
        else:
            dns, ips = settings.server_names()
            cert, key = load_or_create_server_certificate(settings.data_dir, ca, dns, ips, time.time())
        # Optional: people's CLIs have no certificate (they bring a token); the agent routes require one (api/deps.py).
        return uvicorn_ssl_options(cert, key, settings.ca_file, client_certs="optional")

    def _node_streams(self, ca: ClusterCA) -> NodeStreams:
        """The client of the agents' node listeners: the manager's client certificate (none without TLS)."""
        if not self.settings.tls:
            return NodeStreams(None)
        cert, key = issue_manager_client_certificate(ca, self.settings.data_dir, time.time())
        return NodeStreams(client_context(ca.certificate_pem, cert, key))

    def _registry_tls(self, ca: ClusterCA) -> dict[str, Any]:
        """The registry's TLS (off loopback): the cluster CA's certificate, valid for the registry's host too."""
        settings = self.settings
        if settings.registry_listen is None:
            return {}
        dns, ips = settings.server_names()
        cert, key = load_or_create_server_certificate(settings.data_dir, ca, dns, ips, time.time())
        return uvicorn_ssl_options(cert, key)

    async def stop(self) -> None:
        if self._stall_sampler is not None:
            self._stall_sampler.stop()
        if self._registry is not None:
            await self._registry.stop()
        if self.context is not None:
            await self.context.cache.close()
            if self.context.node_streams is not None:
                await self.context.node_streams.close()
        if self._server is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._tasks[-1], 3)
            except (TimeoutError, asyncio.CancelledError):
                pass
        leadership = self.context.leadership if self.context is not None else None
        term = leadership.term if leadership is not None else None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if leadership is not None and term is not None:  # another manager leads at once, not after the ttl
            leadership.term = term
            await leadership.resign()
        if self.context is not None:
            await self.context.store.close()
