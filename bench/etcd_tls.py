"""What TLS to etcd costs the store: the same calls against one etcd member on plain HTTP (the baseline, first)
and one on TLS with client certificates required (as `corral up --managers N` runs it), in the same run.

Per member, `--rounds` rounds of: `--writes` single-key puts one after another (the latency of
an API write's store call), `--writes` reads (`get`), and a `txn_each` batch of `--batch` puts (an agents' batch
of status reports). Prints each round; the last line is a JSON object with the medians and the TLS/plain ratios.

    flock /tmp/corral-bench.lock .venv/bin/python bench/etcd_tls.py [--rounds 5] [--writes 300] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.store import Op, Store, open_store  # noqa: E402
from tests.etcd_server import start_etcd  # noqa: E402


async def one_round(store: Store, writes: int, batch: int, round_no: int) -> dict[str, float]:
    started = time.perf_counter()
    revision = 0
    for i in range(writes):
        revision = await store.put(f"r{round_no}/k{i % 10}", {"i": i, "pad": "x" * 200})
    put_ms = (time.perf_counter() - started) / writes * 1000
    started = time.perf_counter()
    for i in range(writes):
        await store.get(f"r{round_no}/k{i % 10}")
    get_ms = (time.perf_counter() - started) / writes * 1000
    started = time.perf_counter()
    await store.txn_each([Op.put(f"r{round_no}/b{i}", {"i": i, "pad": "x" * 200}, 0) for i in range(batch)])
    batch_s = time.perf_counter() - started
    assert revision > 0
    return {"put_ms": put_ms, "get_ms": get_ms, "batch_s": batch_s}


async def measure(url: str, args: argparse.Namespace, label: str) -> dict[str, float]:
    store = await open_store(url)
    rows = []
    try:
        await one_round(store, 50, 100, -1)  # warm: connections, etcd's first compactions of nothing
        for round_no in range(args.rounds):
            row = await one_round(store, args.writes, args.batch, round_no)
            print(f"{label} round {round_no + 1}: put {row['put_ms']:.2f} ms, get {row['get_ms']:.2f} ms, batch of {args.batch} {row['batch_s']:.3f} s", flush=True)
            rows.append(row)
    finally:
        await store.close()
    return {name: statistics.median(row[name] for row in rows) for name in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    results = {}
    for label, tls in (("plain", False), ("tls", True)):
        etcd = start_etcd(1, tls=tls)
        try:
            results[label] = asyncio.run(measure(etcd.url, args, label))
        finally:
            etcd.stop()
    plain, tls = results["plain"], results["tls"]
    figures = {f"{label}_{name}": round(value, 4) for label, row in results.items() for name, value in row.items()}
    figures.update({f"ratio_{name}": round(tls[name] / plain[name], 3) for name in plain})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
