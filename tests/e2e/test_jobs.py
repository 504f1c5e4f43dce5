"""Jobs and cron jobs on real containers: completions, the back-off limit, `job run`, `@every 10s` with forbid."""

import time

from tests.e2e.cluster import Cluster, wait_until

JOBS = """
services:
  batch:
    image: corral-demo:latest
    command: ["sh", "-c", "sleep 1; exit 0"]
    deploy: {mode: replicated-job, replicas: 3}
    x-corral-job: {parallelism: 2}
  broken:
    image: corral-demo:latest
    command: ["sh", "-c", "exit 3"]
    deploy: {mode: replicated-job, replicas: 1, restart_policy: {delay: 0s}}
    x-corral-job: {backoff_limit: 2}
  tick:
    image: corral-demo:latest
    command: ["sh", "-c", "sleep 1"]
    deploy: {mode: replicated-job}
    x-corral-schedule: "@every 10s"
  slow:
    image: corral-demo:latest
    command: ["sh", "-c", "sleep 13"]
    deploy: {mode: replicated-job}
    x-corral-schedule: "@every 10s"
    x-corral-job: {concurrency_policy: forbid}
"""


def _live(tasks: list[dict]) -> list[dict]:
    return [t for t in tasks if t["desired_state"] == "running" and t["state"] not in ("complete", "failed", "shutdown", "lost")]


def test_jobs_complete_fail_at_their_limit_run_again_and_cron_jobs_run_on_schedule(cluster: Cluster, compose_file) -> None:
    cluster.cli("deploy", "-c", str(compose_file(JOBS)), "--name", "ops")
    began = time.monotonic()
    most_live = {"ops_batch": 0, "ops_slow": 0}
    while time.monotonic() - began < 36:  # watch every service while the cron jobs tick
        for name in most_live:
            live = _live(cluster.api("GET", f"/v1/services/{name}/tasks"))
            most_live[name] = max(most_live[name], len(live))
        time.sleep(0.3)
    services = {s["name"]: s for s in cluster.cli_json("service", "ls")}

    # A replicated job of 3 completions, 2 at a time: complete, and no task ran again.
    assert services["ops_batch"]["job"] == "3/3 completed"
    assert most_live["ops_batch"] == 2, "parallelism 2"
    batch_tasks = cluster.cli_json("service", "ps", "ops_batch", "--all")
    assert sorted(t["state"] for t in batch_tasks) == ["complete"] * 3

    # A failing job stops at its back-off limit: 1 + 2 retries, then no more.
    assert services["ops_broken"]["job"].startswith("failed: backoff limit reached")
    broken_tasks = cluster.cli_json("service", "ps", "ops_broken", "--all")
    assert [t["state"] for t in broken_tasks] == ["failed"] * 3
    assert all(t["exit_code"] == 3 for t in broken_tasks)

    # @every 10s: at least 3 runs in the 36 s since the deploy, each completed.
    tick = cluster.api("GET", "/v1/services/ops_tick")["job_status"]
    ran = [*tick["history"], tick]
    assert tick["run"] >= 3, ran
    assert [r["state"] for r in ran[:3]] == ["completed"] * 3
    # forbid: a 13 s run of a job due every 10 s never runs beside another; the time due meanwhile waits.
    assert most_live["ops_slow"] == 1
    slow = cluster.api("GET", "/v1/services/ops_slow")["job_status"]
    runs = [*slow["history"], slow]
    assert slow["run"] >= 2, runs
    for earlier, later in zip(runs, runs[1:]):
        assert earlier["ended_at"] is not None and earlier["ended_at"] <= later["started_at"], runs

    # `service ls` and `service ps` as people read them.
    table = cluster.cli("service", "ls").stdout
    assert "3/3 completed" in table and "failed: backoff limit reached" in table
    history = cluster.cli("service", "ps", "ops_tick", "--all").stdout
    assert "OUTCOME" in history and history.count("completed") >= 3

    # `corral job run` runs it again: a new run, 3 more completions; the first in the history.
    assert "run 2 started" in cluster.cli("job", "run", "ops_batch").stdout
    wait_until(lambda: cluster.api("GET", "/v1/services/ops_batch")["job"] == "3/3 completed"
               and cluster.api("GET", "/v1/services/ops_batch")["job_status"]["run"] == 2, 30, what="run 2 of ops_batch")
    status = cluster.api("GET", "/v1/services/ops_batch")["job_status"]
    assert [(r["run"], r["state"], r["completed"]) for r in status["history"]] == [(1, "completed", 3)]
    refused = cluster.cli("job", "run", "ops_nosuch", check=False)
    assert refused.returncode == 1 and "not found" in refused.stderr
