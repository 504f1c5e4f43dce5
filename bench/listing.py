"""What one listing costs the manager, whole and paged, at N nodes and T tasks: in process, no network.

Builds the manager's cache (the real StateCache, fed as the store's watch feeds it) with `--nodes`
nodes and `--tasks` tasks over 10 services, and times each listing through the real API app
(httpx's ASGI transport: routing, the paging, encoding; no socket, no TLS, no other work): the whole
list (the baseline, as before paging) and pages of `--limit`: a first page at a revision already
listed, a first page at a new revision (what every first page costs while the cluster is written
to), and a second page. Median of `--rounds`. The bench/cluster.py figures add the rest: waiting
behind the manager's other work while thousands of nodes talk to it.

Then what a whole listing costs the other requests: `GET /v1/info` asked for every 10 ms while a
whole `GET /v1/tasks` is answered, timed from when it was due (a loop held by the listing delays
the ask too); its slowest answer is about how long the listing held the event loop in one go.

    .venv/bin/python bench/listing.py                       # 5,000 nodes, 100,000 tasks

The last line is one JSON object.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager import keys  # noqa: E402
from corral.manager.api.app import create_app  # noqa: E402
from corral.manager.api.auth import authorize  # noqa: E402
from corral.manager.cache import StateCache  # noqa: E402
from corral.manager.cluster import Leases  # noqa: E402
from corral.manager.context import ManagerContext  # noqa: E402
from corral.manager.settings import ManagerSettings  # noqa: E402
from corral.manager.writes import dump  # noqa: E402
from corral.model import Node, Resources, Service, ServiceSpec, Task, TaskState  # noqa: E402
from corral.model.paging import CONTINUE_HEADER  # noqa: E402

LISTINGS = {"nodes": "/v1/nodes", "services": "/v1/services", "tasks": "/v1/tasks", "service_tasks": "/v1/services/s0/tasks"}


def build(nodes: int, tasks: int, data_dir: Path) -> tuple[ManagerContext, StateCache]:
    cache = StateCache(store=None)  # type: ignore[arg-type]  # fed by hand, never reads the store
    now = time.time()
    ctx = ManagerContext(
        settings=ManagerSettings(data_dir=data_dir), store=None,  # type: ignore[arg-type]
        cache=cache, leases=Leases(), join_token="t", cluster_id="bench", clock=lambda: now,
    )
    revision = 0
    for i in range(nodes):
        revision += 1
        node = Node(name=f"node-{i:05d}", address="127.0.0.2", resources=Resources(cpus=4, memory=8 << 30), last_heartbeat=now, registered_at=now)
        cache._put(keys.node_key(node.name), dump(node), revision)
    specs = [ServiceSpec(name=f"s{i}", image="corral-demo:latest", replicas=tasks // 10) for i in range(10)]
    for spec in specs:
        revision += 1
        cache._put(keys.service_key(spec.name), dump(Service(spec=spec, created_at=now, updated_at=now)), revision)
    rng = random.Random(1)
    shapes = [spec.task_shape() for spec in specs]
    for i in range(tasks):
        shape = shapes[i % 10]
        task = Task(id=f"{i:012x}", service=shape.name, slot=i // 10 + 1, spec=shape, node=f"node-{rng.randrange(nodes):05d}",
                    state=TaskState.running, created_at=now, updated_at=now)
        revision += 1
        cache._put(keys.task_key(task.id), dump(task), revision)
    cache.revision = revision
    return ctx, cache


async def timed(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = await client.get(path, params=params)
    took = time.perf_counter() - began
    response.raise_for_status()
    return took, response


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="corral-bench-listing-") as tmp:
        began = time.perf_counter()
        ctx, cache = build(args.nodes, args.tasks, Path(tmp))
        print(f"cache of {args.nodes} nodes and {args.tasks} tasks built in {time.perf_counter() - began:.1f}s")
        app = create_app(ctx)
        app.dependency_overrides[authorize] = lambda: None  # the token check is not what this measures
        figures: dict[str, Any] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://corral", timeout=600) as client:
            for name, path in LISTINGS.items():
                rows: dict[str, list[float]] = {"whole": [], "page1_same_revision": [], "page1_new_revision": [], "page2": []}
                for _ in range(args.rounds if name != "tasks" else max(1, args.rounds // 3)):  # 100,000 whole: seconds each
                    rows["whole"].append((await timed(client, path, {}))[0])
                for _ in range(args.rounds):
                    cache.revision += 1  # as a write would: the snapshot of the revision before does not serve
                    took, first = await timed(client, path, {"limit": args.limit})
                    rows["page1_new_revision"].append(took)
                    rows["page1_same_revision"].append((await timed(client, path, {"limit": args.limit}))[0])
                    token = first.headers.get(CONTINUE_HEADER)
                    if token:
                        rows["page2"].append((await timed(client, path, {"limit": args.limit, "continue": token}))[0])
                figures[name] = {k: round(statistics.median(v) * 1000, 1) if v else None for k, v in rows.items()}
                whole, paged = figures[name]["whole"], figures[name]["page1_new_revision"]
                figures[name]["whole_vs_page1_new"] = round(whole / paged, 1) if whole and paged else None
                print(f"{path:<24} whole {whole} ms | page of {args.limit}: first (new revision) {paged} ms, first (same revision) "
                      f"{figures[name]['page1_same_revision']} ms, second {figures[name]['page2']} ms")
            figures["info_during_whole_tasks"] = await info_during(client, "/v1/tasks", max(1, args.rounds // 3))
            during = figures["info_during_whole_tasks"]
            print(f"GET /v1/info while GET /v1/tasks (whole) is answered: max {during['max_ms']} ms, p50 {during['p50_ms']} ms "
                  f"({during['samples']} answers in {during['rounds']} listings of {during['listing_ms']} ms median)")
    return {"nodes": args.nodes, "tasks": args.tasks, "limit": args.limit, "rounds": args.rounds, "median_ms": figures}


async def info_during(client: httpx.AsyncClient, path: str, rounds: int) -> dict[str, Any]:
    """`GET /v1/info` every 10 ms while the whole `path` is answered, `rounds` times: its answers' times (ms) from when due."""
    answers: list[float] = []
    listings: list[float] = []
    for _ in range(rounds):
        listing = asyncio.create_task(timed(client, path, {}))
        await asyncio.sleep(0)  # the listing starts first
        while not listing.done():
            due = time.perf_counter() + 0.01  # asked for then: a loop held meanwhile delays the ask itself
            await asyncio.sleep(0.01)
            await timed(client, "/v1/info", {})
            answers.append(time.perf_counter() - due)
        listings.append((await listing)[0])
    answers.sort()
    return {
        "rounds": rounds, "samples": len(answers), "listing_ms": round(statistics.median(listings) * 1000, 1),
        "max_ms": round(answers[-1] * 1000, 1), "p50_ms": round(statistics.median(answers) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if args.nodes < 1 or args.tasks < 10 or not 1 <= args.limit <= 5000 or args.rounds < 1:
        parser.error("--nodes at least 1, --tasks at least 10, --limit 1 to 5000, --rounds at least 1")
    figures = asyncio.run(run(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
