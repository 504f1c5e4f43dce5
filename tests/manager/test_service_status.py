"""A service's row beyond running/desired: replicas that ran to completion and rest, and published ports some
node's mesh could not open. Pure rules, the API on a real manager, and the CLI's columns."""

import asyncio
import socket
from pathlib import Path

import httpx

from corral.cli.services import ports_column, replicas_column
from corral.manager import keys
from corral.manager.server import Manager
from corral.manager.service_status import completed_slots, unbound_ports
from corral.manager.settings import ManagerSettings
from corral.manager.writes import dump
from corral.model import PortSpec, ServiceMode, TaskState
from corral.model.task import DesiredState
from factories import make_service, make_task
from tests.tls import admin_headers


def test_completed_slots_count_each_slots_newest_task_when_the_policy_rests_it() -> None:
    batch = make_service("b", replicas=3, restart={"condition": "none"})
    tasks = [
        make_task(batch, 1, id="old", state=TaskState.failed, created_at=1),
        make_task(batch, 1, id="new", state=TaskState.complete, desired=DesiredState.shutdown, created_at=2),
        make_task(batch, 2, state=TaskState.complete, desired=DesiredState.shutdown, created_at=1),
        make_task(batch, 3, state=TaskState.running),
    ]
    assert completed_slots(batch, tasks) == 2
    redone = [*tasks, make_task(batch, 2, id="again", state=TaskState.running, created_at=5)]
    assert completed_slots(batch, redone) == 1  # slot 2 runs again (a redeploy): its completion is history
    always = make_service("w", replicas=3)  # condition any: a completed task is restarted, never resting
    assert completed_slots(always, [make_task(always, 1, state=TaskState.complete)]) == 0
    job = make_service("j", replicas=3, restart={"condition": "none"}, mode=ServiceMode.replicated_job)
    assert completed_slots(job, [make_task(job, 1, state=TaskState.complete)]) == 0  # a job counts its own run


def test_unbound_ports_are_the_published_ones_nodes_reported() -> None:
    web = make_service("web", ports=[PortSpec(target=80, published=8080), PortSpec(target=53, published=53, protocol="udp")])
    errors = {
        "node-3": {"8080/tcp": "address already in use", "9999/tcp": "another service's"},
        "node-1": {"8080/tcp": "address already in use", "10.217.0.5:80/tcp": "a VIP listener"},
        "node-2": {},
    }
    assert unbound_ports(web, errors) == {"8080/tcp": ["node-1", "node-3"]}
    assert unbound_ports(web, {}) == {}


def test_the_columns_say_it() -> None:
    row = {"running": 0, "replicas": 2, "completed": 2, "ports": ["8080:80/tcp"], "unbound_ports": {"8080/tcp": ["node-3"]}}
    assert replicas_column(row) == "2/2 completed"
    assert replicas_column({**row, "running": 1, "completed": 1}) == "1/2, 1 completed"
    assert replicas_column({**row, "running": 2, "completed": 0}) == "2/2"
    assert replicas_column({**row, "job": "3/3 completed"}) == "3/3 completed"
    assert ports_column(row) == "8080:80/tcp (8080/tcp not bound on node-3)"
    many = {**row, "unbound_ports": {"8080/tcp": ["n1", "n2", "n3", "n4"]}}
    assert ports_column(many) == "8080:80/tcp (8080/tcp not bound on 4 nodes)"
    assert ports_column({"ports": []}) == "-"


BATCH = """
services:
  batch:
    image: corral-demo:latest
    ports: ["8080:80"]
    deploy: {replicas: 2, restart_policy: {condition: none}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_batch_that_completed_and_a_port_a_node_could_not_open_show_in_the_list(tmp_path: Path) -> None:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=_free_port(), tls=False))
    ctx = await manager.start()
    try:
        async with httpx.AsyncClient(base_url=manager.settings.url, headers=admin_headers(tmp_path)) as api:
            assert (await api.post("/v1/stacks/b/deploy", json={"compose": BATCH})).status_code == 200
            [row] = (await api.get("/v1/services")).json()
            assert (row["running"], row["completed"], row["unbound_ports"]) == (0, 0, {})
            for _ in range(100):  # the controller makes the tasks after the deploy's answer
                if len(ctx.cache.tasks_of("b_batch")) == 2:
                    break
                await asyncio.sleep(0.05)
            assert len(ctx.cache.tasks_of("b_batch")) == 2
            for task in ctx.cache.tasks_of("b_batch"):  # the agents report: both exited 0
                done = task.model_copy(update={"state": TaskState.complete, "node": "node-1", "exit_code": 0})
                await ctx.store.put(keys.task_key(task.id), dump(done))
            ctx.mesh_errors["node-2"] = {"8080/tcp": "cannot listen on 127.0.0.3:8080/tcp: address already in use"}
            for _ in range(100):
                [row] = (await api.get("/v1/services")).json()
                if row["completed"] == 2:
                    break
                await asyncio.sleep(0.05)
            assert row["completed"] == 2 and row["running"] == 0, row
            assert replicas_column(row) == "2/2 completed"
            assert row["unbound_ports"] == {"8080/tcp": ["node-2"]}
            inspected = (await api.get("/v1/services/b_batch")).json()
            assert inspected["completed"] == 2 and inspected["unbound_ports"] == {"8080/tcp": ["node-2"]}
            for _ in range(100):  # the controller lets them rest (desired shutdown), and makes no new task
                tasks = ctx.cache.tasks_of("b_batch")
                if all(t.desired_state == DesiredState.shutdown for t in tasks):
                    break
                await asyncio.sleep(0.05)
            assert len(tasks) == 2 and all(t.desired_state == DesiredState.shutdown for t in tasks)  # resting, not restarted
    finally:
        await manager.stop()
