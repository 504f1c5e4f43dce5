"""The mesh routes every agent long-polls are computed once per change of the cache, not once per agent and look
(three agents of a local cluster each looked at every change, and answered with it: six computations of every
route of the cluster per change). A change the cache applies under the revision it already had (etcd gives all of
a transaction's changes one) is a change too."""

from pathlib import Path
from unittest import mock

from corral.manager import discovery, keys
from corral.manager.api import discovery as api_discovery
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases
from corral.manager.context import ManagerContext
from corral.manager.settings import ManagerSettings
from corral.manager.writes import dump
from corral.model import PortSpec, PublishedPort, TaskState
from corral.store import WatchEvent

from factories import make_service, make_task

WEB = make_service("web", 1, ports=[PortSpec(target=8080, published=18080)])


def test_routes_are_computed_once_per_change_and_follow_every_change(tmp_path: Path) -> None:
    cache = StateCache(store=None)  # type: ignore[arg-type]
    ctx = ManagerContext(
        settings=ManagerSettings(data_dir=tmp_path), store=None, cache=cache, leases=Leases(),  # type: ignore[arg-type]
        join_token="t", cluster_id="c",
    )
    cache._apply(WatchEvent(1, keys.service_key("web"), dump(WEB), None))
    with mock.patch.object(discovery, "routes", wraps=discovery.routes) as computed:
        first = api_discovery._mesh(ctx)
        for _ in range(5):  # every agent's long poll looks, then answers
            assert api_discovery._mesh(ctx) is first
        assert computed.call_count == 1
        assert [r.backends for r in first.routes] == [[]]

        task = make_task(WEB, 1, state=TaskState.starting, node="n1")
        cache._apply(WatchEvent(2, keys.task_key(task.id), dump(task), None))
        running = task.model_copy(update={"state": TaskState.running, "ports": [PublishedPort(
            target=8080, protocol="tcp", host_ip="127.0.0.2", host_port=32001)]})
        assert api_discovery._mesh(ctx).fingerprint == first.fingerprint  # starting: not an endpoint yet
        cache._apply(WatchEvent(2, keys.task_key(task.id), dump(running), dump(task)))  # the same revision
        now = api_discovery._mesh(ctx)
        assert now.fingerprint != first.fingerprint and [r.backends for r in now.routes] == [["127.0.0.2:32001"]]
        assert computed.call_count == 3
