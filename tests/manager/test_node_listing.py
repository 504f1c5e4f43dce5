"""`GET /v1/nodes` encodes each node from a kept template: it must give exactly the JSON of the NodeView models."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter

from corral.manager import keys
from corral.manager.api.app import create_app
from corral.manager.api.views import NodeView
from corral.manager.cache import StateCache
from corral.manager.cluster import Leases
from corral.manager.context import ManagerContext
from corral.manager.health import node_health
from corral.manager.settings import ManagerSettings
from corral.manager.writes import dump
from corral.store import open_store
from tests.tls import new_admin_headers
from corral.model import Node, NodeAvailability, NodeState, Resources, ServiceSpec, Task, TaskState

NOW = 1_795_681_257.25
LEASE = 3.0
VIEWS = TypeAdapter(list[NodeView])


def _spec(name: str, cpus: float, memory: int) -> ServiceSpec:
    return ServiceSpec(name=name, image="img", reservations=Resources(cpus=cpus, memory=memory)).task_shape()


WEB, DB, TINY = _spec("web", 0.25, 64 << 20), _spec("db", 1.5, 1 << 30), _spec("tiny", 0.00001, 1)


class Cluster:
    """A cache fed as the store's watch would feed it, and the manager's API app over it."""

    def __init__(self, tmp_path: Path) -> None:
        self.cache = StateCache(store=None)  # type: ignore[arg-type]
        self.leases = Leases()
        self.ctx = ManagerContext(
            settings=ManagerSettings(data_dir=tmp_path, node_lease=LEASE), store=None,  # type: ignore[arg-type]
            cache=self.cache, leases=self.leases, join_token="t", cluster_id="c", clock=lambda: NOW,
        )
        self.revision = 0
        self.app = create_app(self.ctx)
        self.headers: dict[str, str] = {}

    def put_node(self, name: str, **fields: object) -> Node:
        values: dict = {"address": "10.0.0.1", "resources": Resources(cpus=4, memory=8 << 30), "last_heartbeat": NOW - 1,
                        "registered_at": NOW - 100, **fields}
        node = Node(name=name, **values)
        self.revision += 1
        self.cache._put(keys.node_key(name), dump(node), self.revision)
        return node

    def put_task(self, task_id: str, spec: ServiceSpec, node: str, state: TaskState = TaskState.running) -> None:
        task = Task(id=task_id, service=spec.name, slot=1, spec=spec, node=node, state=state, created_at=1.0, updated_at=1.0)
        self.revision += 1
        self.cache._put(keys.task_key(task_id), dump(task), self.revision)

    def drop_node(self, name: str) -> None:
        self.revision += 1
        self.cache._drop(keys.node_key(name), self.revision)

    def model_views(self) -> list[NodeView]:
        """What the listing must say, made the slow way: a NodeView per node from a scan of its tasks."""
        tasks = [v.obj for v in self.cache.tasks.values()]
        views = []
        for name in sorted(self.cache.nodes):
            node = self.cache.nodes[name].obj
            last = self.leases.last.get(name)
            health = node_health(node, max(last or 0.0, node.last_heartbeat), NOW, LEASE)
            views.append(NodeView.of(node, tasks, last, health))
        return views

    async def listing(self) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://corral", headers=self.headers) as client:
            return await client.get("/v1/nodes")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    made = Cluster(tmp_path)
    made.ctx.store = await open_store(made.ctx.settings.store)  # holds the API token only: the listing reads the cache
    made.headers = await new_admin_headers(made.ctx.store)
    yield made
    await made.ctx.store.close()


async def test_listing_is_the_json_of_the_models_with_reservations_and_health(cluster: Cluster) -> None:
    cluster.put_node("a-ok", labels={"zone": "east"})
    cluster.put_node("b-late", last_heartbeat=NOW - 10)  # lease ran out, and no newer heartbeat in memory
    cluster.put_node("c-down", state=NodeState.down, availability=NodeAvailability.drain, message="no heartbeat for 9.0s")
    cluster.put_node("d-empty", engine="hollow")
    cluster.leases.renew("a-ok", NOW - 0.5)  # newer than its record: the listing shows this one
    cluster.leases.renew("b-late", NOW - 20)  # older than its record: the record's counts
    for i in range(3):
        cluster.put_task(f"web{i}", WEB, "a-ok")
    cluster.put_task("db0", DB, "a-ok")
    cluster.put_task("web-done", WEB, "a-ok", TaskState.complete)  # terminal: reserves nothing
    cluster.put_task("db1", DB, "b-late")
    cluster.put_task("db2", DB, "c-down", TaskState.starting)

    response = await cluster.listing()

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.content == VIEWS.dump_json(cluster.model_views())
    rows = {row["name"]: row for row in response.json()}
    assert list(rows) == ["a-ok", "b-late", "c-down", "d-empty"]
    assert rows["a-ok"]["tasks"] == 4 and rows["a-ok"]["reserved"] == {"cpus": 2.25, "memory": (3 * 64 << 20) + (1 << 30)}
    assert rows["d-empty"]["tasks"] == 0 and rows["d-empty"]["reserved"] == {"cpus": 0.0, "memory": 0}
    assert [rows[n]["health"] for n in rows] == ["ok", "late", "down", "ok"]
    assert rows["a-ok"]["last_heartbeat"] == NOW - 0.5 and rows["b-late"]["last_heartbeat"] == NOW - 10


async def test_values_that_need_escaping_or_odd_number_formats_encode_as_the_model_does(cluster: Cluster) -> None:
    cluster.put_node(
        "odd",
        labels={"100%": "%s %d %%", 'quote"': "back\\slash", "zone": "Zürich ☃", "nul": "\x00\n\t"},
        message='50% of "it" failed\n',
        address="::1",
        resources=Resources(cpus=0.5, memory=0),
        last_heartbeat=0.0,
        registered_at=1e-7,
    )
    cluster.put_task("tiny", TINY, "odd")  # 1e-05 cpus: pydantic writes it 0.00001, not as repr does

    response = await cluster.listing()

    assert response.content == VIEWS.dump_json(cluster.model_views())
    [row] = response.json()
    assert row["labels"]["100%"] == "%s %d %%" and row["message"] == '50% of "it" failed\n'
    assert row["reserved"] == {"cpus": 0.00001, "memory": 1}


async def test_a_changed_node_is_encoded_again_and_a_removed_one_is_gone(cluster: Cluster) -> None:
    cluster.put_node("n1")
    cluster.put_node("n2")
    assert [row["availability"] for row in (await cluster.listing()).json()] == ["active", "active"]

    cluster.put_node("n1", availability=NodeAvailability.drain, labels={"disk": "ssd"})
    cluster.drop_node("n2")
    cluster.put_task("web0", WEB, "n1")
    response = await cluster.listing()

    assert response.content == VIEWS.dump_json(cluster.model_views())
    [row] = response.json()
    assert row["name"] == "n1" and row["availability"] == "drain" and row["labels"] == {"disk": "ssd"}
    assert row["tasks"] == 1 and row["reserved"] == {"cpus": 0.25, "memory": 64 << 20}
    assert set(cluster.app.state.node_templates) == {"n1"}  # what n2 was encoded as is not kept


async def test_inspect_says_what_the_listing_says(cluster: Cluster) -> None:
    cluster.put_node("n1", labels={"zone": "east"})
    cluster.put_node("n2")
    cluster.put_task("web0", WEB, "n1")
    cluster.put_task("db0", DB, "n2")
    listed = (await cluster.listing()).json()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cluster.app), base_url="http://corral", headers=cluster.headers) as client:
        inspected = [(await client.get(f"/v1/nodes/{name}")).json() for name in ("n1", "n2")]
    assert inspected == listed and [row["tasks"] for row in listed] == [1, 1]


async def test_no_nodes_is_an_empty_list(cluster: Cluster) -> None:
    response = await cluster.listing()
    assert response.status_code == 200 and response.json() == []


async def test_openapi_still_documents_the_listing_as_node_views(cluster: Cluster) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cluster.app), base_url="http://corral", headers=cluster.headers) as client:
        schema = (await client.get("/openapi.json")).json()
    answer = schema["paths"]["/v1/nodes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"type": "array", "items": {"$ref": "#/components/schemas/NodeView"}, "title": answer.get("title")}
    assert set(schema["components"]["schemas"]["NodeView"]["properties"]) == set(NodeView.model_fields)


async def test_a_kept_encoding_is_used_only_while_what_it_shows_is_unchanged(cluster: Cluster) -> None:
    for name in ("a", "b", "c", "d"):
        cluster.put_node(name, last_heartbeat=NOW - 1)
        cluster.leases.renew(name, NOW - 1)
    cluster.put_task("web0", WEB, "a")
    first = await cluster.listing()
    assert first.content == VIEWS.dump_json(cluster.model_views())
    kept = {name: encoded.json for name, encoded in cluster.app.state.node_templates.items()}

    cluster.put_task("db0", DB, "a")  # a's totals change
    cluster.leases.renew("b", NOW - 0.25)  # b's heartbeat
    cluster.put_task("web1", WEB, "c", TaskState.complete)  # c: a terminal task reserves nothing: same totals
    second = await cluster.listing()

    assert second.content == VIEWS.dump_json(cluster.model_views())
    encoded = cluster.app.state.node_templates
    assert encoded["c"].json is kept["c"] and encoded["d"].json is kept["d"]  # not filled in again
    assert encoded["a"].json != kept["a"] and encoded["b"].json != kept["b"]

    # The clock alone moves a node from ok to late: a lease of LEASE seconds from NOW - 1 runs out after NOW + 2.
    for later in (NOW + 1.5, NOW + 2.0, NOW + 2.5, NOW + 100):
        cluster.ctx.clock = lambda: later
        listed = await cluster.listing()
        assert listed.content == _model_json(cluster, later)
    assert [row["health"] for row in listed.json()] == ["late"] * 4


def _model_json(cluster: Cluster, now: float) -> bytes:
    """The listing as NodeView models say it at `now`, from templates made afresh."""
    tasks = [v.obj for v in cluster.cache.tasks.values()]
    views = []
    for name in sorted(cluster.cache.nodes):
        node = cluster.cache.nodes[name].obj
        last = cluster.leases.last.get(name)
        views.append(NodeView.of(node, tasks, last, node_health(node, max(last or 0.0, node.last_heartbeat), now, LEASE)))
    return VIEWS.dump_json(views)
