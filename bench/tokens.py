"""What the token check costs the API: the same manager's routes with the check and without it, same run.

Starts one real manager in this process (real SQLite store, default
settings), deploys `--services` services (no nodes: listings have content,
nothing runs), and calls it through two FastAPI applications over the same
manager context, in-process (httpx's ASGI transport, so neither network nor
TLS blurs the difference):

- `checked`: the application as served (api/auth.py: the token's record read
  from the store, its hash compared, the role checked; a write also stores
  its audit record, api/audit.py);
- `baseline`: the same application with the check replaced by a no-op (so
  no caller, so no audit record either). Only this benchmark does that:
  the manager has no way to turn the check off.

Each is timed on `GET /v1/services` (a read) and `POST /v1/services/NAME/scale`
to the current count (a write that changes nothing but is stored and, when
checked, audited), interleaved in rounds so both see the same machine load.

    .venv/bin/python bench/tokens.py                  # 2,000 calls of each kind per application
    .venv/bin/python bench/tokens.py --requests 500   # a quick check

Prints a table and, last, one JSON object with p50/p99 in ms.
"""

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corral.manager.api.app import create_app  # noqa: E402
from corral.manager.api.auth import authorize  # noqa: E402
from corral.manager.server import Manager  # noqa: E402
from corral.manager.settings import ManagerSettings  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compose(services: int) -> str:
    lines = ["services:"]
    for i in range(services):
        lines += [f"  s{i}:", "    image: corral-demo:latest", "    deploy: {replicas: 2}"]
    return "\n".join(lines) + "\n"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def no_check() -> None:
    return None


async def run(args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    with tempfile.TemporaryDirectory(prefix="corral-bench-tokens-") as data:
        manager = Manager(ManagerSettings(data_dir=Path(data), listen_port=free_port(), registry_listen=None))
        ctx = await manager.start()
        try:
            headers = {"Authorization": f"Bearer {(Path(data) / 'admin-token').read_text().strip()}"}
            checked, baseline = create_app(ctx), create_app(ctx)
            baseline.dependency_overrides[authorize] = no_check
            clients = {
                name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://corral", headers=headers)
                for name, app in (("checked", checked), ("baseline", baseline))
            }
            (await clients["checked"].post("/v1/stacks/bench/deploy", json={"compose": compose(args.services)})).raise_for_status()
            timings: dict[str, dict[str, list[float]]] = {name: {"read": [], "write": []} for name in clients}
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                for name, client in clients.items():
                    for _ in range(per_round):
                        began = time.perf_counter()
                        (await client.get("/v1/services")).raise_for_status()
                        timings[name]["read"].append(time.perf_counter() - began)
                    for _ in range(per_round):
                        began = time.perf_counter()
                        (await client.post("/v1/services/bench_s0/scale", json={"replicas": 2})).raise_for_status()
                        timings[name]["write"].append(time.perf_counter() - began)
            for client in clients.values():
                await client.aclose()
        finally:
            await manager.stop()
    return {
        name: {kind: {"p50_ms": round(quantile(v, 0.5), 3), "p99_ms": round(quantile(v, 0.99), 3),
                      "mean_ms": round(statistics.fmean(v) * 1000, 3), "n": len(v)} for kind, v in kinds.items()}
        for name, kinds in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="calls of each kind per application")
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10, help="the calls are split in this many interleaved rounds")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(f"in-process (ASGI), {args.services} services; read: GET /v1/services, write: POST /v1/services/bench_s0/scale")
    print(f"{'application':<12}{'call':<8}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, kinds in figures.items():
        for kind, row in kinds.items():
            print(f"{name:<12}{kind:<8}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['mean_ms']:>10}")
    for kind in ("read", "write"):
        ratio = figures["checked"][kind]["p50_ms"] / figures["baseline"][kind]["p50_ms"]
        print(f"{kind}: the check adds {figures['checked'][kind]['p50_ms'] - figures['baseline'][kind]['p50_ms']:.3f} ms at p50 (x{ratio:.2f})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
