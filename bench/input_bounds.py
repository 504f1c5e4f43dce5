"""How fast the manager refuses oversized input, and whether it keeps answering meanwhile (issue 12 #2).

Starts a manager (real SQLite store, uvicorn, no agents) in this process and
sends, one at a time, with `GET /v1/info` sent back to back beside each:

- the 607-byte YAML alias bomb (9**8 strings in deploy.resources.limits.cpus);
- the 1.9 MB file of 100,000 services, as a dry run;
- a large file within the limits (600 services of 150 variables, about 3 MB);
- a 100 MB body (Content-Length declared).

For each: status, seconds to the answer, and the slowest and median
`/v1/info` while it ran (the baseline row: `/v1/info` alone). Last line JSON.

    .venv/bin/python bench/input_bounds.py
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from corral.pki import client_context

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.manager.server import Manager  # noqa: E402
from corral.manager.settings import ManagerSettings  # noqa: E402
from tests.manager.factories import alias_bomb, many_services  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def large_valid() -> str:
    environment = "".join(f"      V{j}: value{j}\n" for j in range(150))
    return "services:\n" + "".join(f"  s{i}:\n    image: x\n    environment:\n{environment}" for i in range(600))


async def _timed(client: httpx.AsyncClient, send: "asyncio.Task[int]") -> dict[str, float | int]:
    start = time.perf_counter()
    pings: list[float] = []
    while not send.done():
        began = time.perf_counter()
        await client.get("/v1/info")
        pings.append(time.perf_counter() - began)
    status = await send
    return {
        "status": status,
        "seconds": round(time.perf_counter() - start, 3),
        "info_max_ms": round(max(pings) * 1000, 1) if pings else 0.0,
        "info_median_ms": round(statistics.median(pings) * 1000, 1) if pings else 0.0,
        "info_requests": len(pings),
    }


async def _deploy(client: httpx.AsyncClient, text: str) -> int:
    return (await client.post("/v1/stacks/bench/deploy", json={"compose": text, "dry_run": True})).status_code


async def _raw_100mb(host: str, port: int) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /v1/stacks/bench/deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = ManagerSettings(data_dir=Path(data), listen_port=_free_port())
        manager = Manager(settings)
        await manager.start()
        results: dict[str, dict[str, float | int]] = {}
        try:
            async with httpx.AsyncClient(base_url=settings.url, timeout=120, verify=client_context(settings.ca_file.read_bytes()),
                                         headers={"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}) as client:
                pings = []
                for _ in range(50):
                    began = time.perf_counter()
                    await client.get("/v1/info")
                    pings.append(time.perf_counter() - began)
                results["baseline /v1/info"] = {"info_max_ms": round(max(pings) * 1000, 1), "info_median_ms": round(statistics.median(pings) * 1000, 1)}
                cases: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
                    f"alias bomb ({len(alias_bomb())} B)": lambda: _deploy(client, alias_bomb()),
                    f"100,000 services ({len(many_services(100_000)) / 1e6:.1f} MB)": lambda: _deploy(client, many_services(100_000)),
                    f"600 services x 150 env ({len(large_valid()) / 1e6:.1f} MB, valid)": lambda: _deploy(client, large_valid()),
                    "100 MB body (declared)": lambda: _raw_100mb(settings.listen_host, settings.listen_port),
                }
                for name, send in cases.items():
                    results[name] = await _timed(client, asyncio.create_task(send()))
        finally:
            await manager.stop()
    for name, row in results.items():
        print(f"{name:45} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
