"""depends_on on real containers: the web containers start after the db's health check first passed (engine start
times against the moment the db became ready), wait pending with the reason until then, and keep running when the db
fails later."""

import datetime
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.e2e.cluster import Cluster, wait_until

COMPOSE = """
services:
  db:
    image: corral-demo:latest
    command: ["sh", "-c", "sleep 5; touch /www/ready; exec httpd -f -p 8080 -h /www"]
    healthcheck: {test: ["CMD", "test", "-f", "/www/ready"], interval: 1s, timeout: 2s, retries: 3, start_period: 15s, start_interval: 1s}
  web:
    image: corral-demo:latest
    deploy: {replicas: 2}
    depends_on:
      db: {condition: service_healthy}
"""


def _engine_time(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds, as seconds since the epoch."""
    head, _, fraction = text.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc).timestamp() + float(f"0.{fraction or 0}")


def test_web_starts_after_the_db_is_healthy_and_outlives_its_failure(cluster: Cluster, compose_file: Callable[..., Path]) -> None:
    cluster.cli("deploy", "-c", str(compose_file(COMPOSE)), "-n", "dep", "--detach")

    def web_waiting() -> bool:
        tasks = cluster.cli_json("service", "ps", "dep_web")
        return len(tasks) == 2 and all(t["state"] == "pending" and t["error"] == "waiting for db: no healthy replica yet" for t in tasks)

    wait_until(web_waiting, 15, 0.3, what="the web tasks pending, waiting for db")
    assert not cluster.containers(service="dep_web")  # nothing started meanwhile

    cluster.wait_running("dep_web", 2, timeout=60)
    [db] = [c for c in cluster.containers(service="dep_db") if c.status == "running"]
    ready = subprocess.run(["docker", "exec", db.id, "stat", "-c", "%Y", "/www/ready"], capture_output=True, text=True, timeout=30)
    ready_at = int(ready.stdout.strip())  # the first moment the health check could pass (whole seconds)
    [db_task] = cluster.running_tasks("dep_db")
    healthy_at = db_task["updated_at"]  # its last change: the agent's report that it is running, i.e. healthy
    webs = [c for c in cluster.containers(service="dep_web") if c.status == "running"]
    for web in webs:
        started = _engine_time(web.attrs["State"]["StartedAt"])
        assert started >= ready_at and started >= healthy_at - 0.5, (started, ready_at, healthy_at)
        assert started > _engine_time(db.attrs["State"]["StartedAt"]) + 4.5  # the db slept 5 s before it was ready

    # a later failure of the db does not stop its dependents (as compose)
    db.kill()
    wait_until(lambda: not any(t["state"] == "running" for t in cluster.cli_json("service", "ps", "dep_db") if t["id"] == db_task["id"]),
               20, 0.3, what="the db task to end")
    live = [c for c in cluster.containers(service="dep_web") if c.status == "running"]
    assert {c.id for c in live} == {c.id for c in webs}
