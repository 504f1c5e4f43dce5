"""Benchmark of the store under status reports, with compaction on: write rate and file size.

10,000 tasks (real `Task` JSON, placed on 1,000 nodes) get `--reports` status
reports, written as the agents' batched status route writes them: batches of
`--batch` reports, each one store transaction (`txn_each`) of puts with
compare-and-swap on the revision the writer last saw, `--writers` batches in
flight at once (several agent processes). Each report rewrites one task (its
state, container id and `updated_at`), so every report is one revision.

Meanwhile the manager's `Compactor` runs as the manager runs it (keeps the
last `--history` revisions, every `--interval` seconds, defaults from
`ManagerSettings`). Printed: the write rate, the batch latency (p50, p99,
max: compaction must not stall writers), the store file size (database and
WAL) sampled through the run and at the end.

Baseline, in the same run first: `--baseline` reports (default 100,000) into
another file without compaction, with its rate and its bytes per report
(what the file grows by without compaction).

    .venv/bin/python bench/store.py                    # 1,000,000 reports
    .venv/bin/python bench/store.py --reports 100000   # smaller

The last line printed is one JSON object with the figures.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager import keys  # noqa: E402
from corral.manager.compaction import Compactor  # noqa: E402
from corral.manager.settings import ManagerSettings  # noqa: E402
from corral.manager.writes import dump  # noqa: E402
from corral.model import Resources, Service, ServiceSpec, Task, TaskState  # noqa: E402
from corral.store import Op  # noqa: E402
from corral.store.sqlite import SqliteStore  # noqa: E402

STATES = (TaskState.starting, TaskState.running)


def make_tasks(count: int, nodes: int, services: int) -> list[dict[str, Any]]:
    tasks = []
    for s in range(services):
        spec = ServiceSpec(  # type: ignore[call-arg]
            name=f"shop_svc{s}", image=f"registry.example.com/shop/svc{s}:1.4.{s}", replicas=count // services,
            environment={"LOG_LEVEL": "info", "REGION": "eu-west-1"}, labels={"com.example.team": "shop"},
            reservations=Resources(cpus=0.25, memory=128 << 20),
        )
        service = Service(spec=spec, version=1, created_at=1e9, updated_at=1e9)
        for slot in range(1, count // services + 1):
            task = Task(
                id=f"{spec.name}.{slot}.{s:04d}{slot:06d}", service=service.name, stack="shop", slot=slot,
                node=f"node-{(s * count + slot) % nodes + 1}", desired_state="running", state=TaskState.assigned,
                spec=spec.task_shape(), spec_version=1, created_at=1e9, updated_at=1e9,
            )
            tasks.append(dump(task))
    return tasks


async def write_reports(store: SqliteStore, tasks: list[dict[str, Any]], reports: int, batch: int, writers: int) -> dict[str, Any]:
    """`reports` status reports from `writers` concurrent writers, each owning a share of the tasks."""
    revisions = {task["id"]: 0 for task in tasks}
    created = await store.txn_each([Op.put(keys.task_key(t["id"]), t, expect=0) for t in tasks])
    first = created[0] - len(tasks) + 1
    for at, task in enumerate(tasks):
        revisions[task["id"]] = first + at
    latencies: list[float] = []
    per_writer = reports // writers
    shares = [tasks[w::writers] for w in range(writers)]

    async def writer(share: list[dict[str, Any]], count: int) -> None:
        done, turn = 0, 0
        while done < count:
            size = min(batch, count - done, len(share))
            start = (turn * batch) % len(share)
            chosen = [share[(start + i) % len(share)] for i in range(size)]
            ops = []
            for task in chosen:
                turn_state = STATES[turn % 2]
                task["state"] = turn_state.value
                task["container_id"] = f"{turn:08x}{task['id'][-10:]}" * 3
                task["updated_at"] = 1e9 + turn
                ops.append(Op.put(keys.task_key(task["id"]), task, expect=revisions[task["id"]]))
            began = time.perf_counter()
            revision, skipped = await store.txn_each(ops)
            latencies.append(time.perf_counter() - began)
            assert not skipped, "a writer's own tasks changed under it"
            for at, task in enumerate(chosen):  # the applied ops got consecutive revisions, in order
                revisions[task["id"]] = revision - (size - 1 - at)
            done += size
            turn += 1

    began = time.perf_counter()
    await asyncio.gather(*(writer(shares[w], per_writer) for w in range(writers)))
    elapsed = time.perf_counter() - began
    written = per_writer * writers
    for task in tasks:  # every current value is the last one written
        kv = await store.get(keys.task_key(task["id"]))
        assert kv is not None and kv.mod_revision == revisions[task["id"]] and kv.value == task
    ms = sorted(x * 1000 for x in latencies)
    return {
        "reports": written,
        "seconds": round(elapsed, 2),
        "writes_per_s": round(written / elapsed),
        "batch_ms": {"p50": round(statistics.median(ms), 1), "p99": round(ms[int(len(ms) * 0.99)], 1), "max": round(ms[-1], 1)},
    }


def file_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def baseline(args: argparse.Namespace, workdir: Path, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    path = workdir / "baseline.db"
    store = await SqliteStore(path).open()
    try:
        empty = file_bytes(path)
        figures = await write_reports(store, [dict(t) for t in tasks], args.baseline, args.batch, args.writers)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await store.close()
    size = file_bytes(path)
    figures["db_bytes"] = size
    figures["bytes_per_report"] = round((size - empty) / (figures["reports"] + len(tasks)))
    return figures


async def with_compaction(args: argparse.Namespace, workdir: Path, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    path = workdir / "store.db"
    store = await SqliteStore(path).open()
    compactor = Compactor(store, args.history, args.interval)
    sizes: list[tuple[float, int, int]] = []
    began = time.perf_counter()

    async def sample() -> None:
        while True:
            await asyncio.sleep(args.interval)
            sizes.append((time.perf_counter() - began, await store.revision(), file_bytes(path)))

    background = [asyncio.create_task(compactor.run()), asyncio.create_task(sample())]
    try:
        figures = await write_reports(store, tasks, args.reports, args.batch, args.writers)
        for job in background:
            job.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        before_last = file_bytes(path)
        oldest = await compactor.once()  # what the next round leaves, as the manager's would
        figures.update(
            revision=await store.revision(), oldest_revision=oldest, db_bytes=file_bytes(path),
            db_bytes_before_last_round=before_last, peak_bytes=max([before_last] + [s[2] for s in sizes]),
            log_rows=store.db.execute("SELECT count(*) FROM log").fetchone()[0],
            sizes=[(round(t), rev, size) for t, rev, size in sizes],
        )
    finally:
        await store.close()
    return figures


async def main(args: argparse.Namespace) -> None:
    tasks = make_tasks(args.tasks, args.nodes, args.services)
    print(f"{len(tasks)} tasks of {statistics.mean(len(json.dumps(t)) for t in tasks):.0f} bytes of JSON on {args.nodes} nodes; "
          f"{args.writers} writers, batches of {args.batch}; history {args.history} revisions, compaction every {args.interval:g}s")
    with tempfile.TemporaryDirectory(prefix="corral-bench-store-") as tmp:
        workdir = Path(tmp)
        base = None
        if args.baseline:
            base = await baseline(args, workdir, tasks)
            print(f"baseline without compaction: {base['reports']} reports in {base['seconds']}s, {base['writes_per_s']} writes/s, "
                  f"batch p50/p99/max {base['batch_ms']['p50']}/{base['batch_ms']['p99']}/{base['batch_ms']['max']} ms; "
                  f"file {base['db_bytes'] / 1e6:.1f} MB, {base['bytes_per_report']} bytes per report "
                  f"(1,000,000 reports would be {base['bytes_per_report'] * 1e6 / 1e9:.2f} GB)")
        run = await with_compaction(args, workdir, tasks)
    print(f"with compaction: {run['reports']} reports in {run['seconds']}s, {run['writes_per_s']} writes/s, "
          f"batch p50/p99/max {run['batch_ms']['p50']}/{run['batch_ms']['p99']}/{run['batch_ms']['max']} ms")
    print("file size through the run (s, revision, MB): " + " ".join(f"{t}:{rev}:{size / 1e6:.0f}" for t, rev, size in run["sizes"]))
    print(f"store file at the end: {run['db_bytes'] / 1e6:.1f} MB ({run['db_bytes_before_last_round'] / 1e6:.1f} MB before the "
          f"last round, peak {run['peak_bytes'] / 1e6:.1f} MB); revision {run['revision']}, history kept after {run['oldest_revision']}, "
          f"{run['log_rows']} log rows")
    result = {"reports": run["reports"], "db_bytes": run["db_bytes"], "writes_per_s": run["writes_per_s"],
              "peak_db_bytes": run["peak_bytes"], "batch_ms": run["batch_ms"], "history": args.history, "tasks": len(tasks)}
    if base is not None:
        result["baseline"] = {key: base[key] for key in ("reports", "writes_per_s", "db_bytes", "bytes_per_report", "batch_ms")}
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500, help="reports per transaction (one agent batch)")
    parser.add_argument("--writers", type=int, default=4, help="batches in flight at once")
    parser.add_argument("--history", type=int, default=ManagerSettings.store_history, help="revisions kept")
    parser.add_argument("--interval", type=float, default=ManagerSettings.compact_interval, help="seconds between compactions")
    parser.add_argument("--baseline", type=int, default=100_000, help="reports written first without compaction (0: none)")
    asyncio.run(main(parser.parse_args()))
