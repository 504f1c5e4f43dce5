"""What a task is written as: read back, it is the same task (its spec stored without defaults)."""

import orjson

from corral.compose import parse_compose
from corral.manager.writes import dump
from corral.model import Task
from corral.model.task import SharedSpecs

COMPOSE = """
services:
  web:
    image: corral-demo:latest
    command: ["httpd", "-f", "-p", "8080"]
    environment: {A: "1"}
    ports: ["8080:8080", "9000:9000/udp"]
    healthcheck: {test: ["CMD", "true"], interval: 2s, retries: 5}
    stop_grace_period: 3s
    deploy:
      replicas: 2
      resources: {reservations: {cpus: "0.5", memory: 64M}, limits: {memory: 128M}}
      placement: {constraints: ["node.labels.zone == a"], max_replicas_per_node: 1}
      restart_policy: {condition: on-failure, delay: 0s, max_attempts: 3}
  plain:
    image: corral-demo:latest
"""


def test_a_written_task_reads_back_equal_and_small() -> None:
    specs = parse_compose(COMPOSE, stack="shop").services
    shared = SharedSpecs()
    for spec in specs:
        shape = spec.task_shape()
        task = Task(id="t1", service=spec.name, stack="shop", slot=1, node="n1", spec=shape, created_at=1.0, updated_at=2.0)
        data = dump(task)
        stored = orjson.loads(orjson.dumps(data))  # as the store keeps it
        assert Task.model_validate(stored) == task
        assert shared.task(stored) == task
    plain = next(s for s in specs if s.name.endswith("plain")).task_shape()
    assert len(orjson.dumps(dump(Task(id="t2", service=plain.name, spec=plain, created_at=1.0, updated_at=1.0))["spec"])) < 120
