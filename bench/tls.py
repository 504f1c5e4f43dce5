"""What TLS costs the API: `GET /v1/services` on a manager over HTTPS and on one over plain HTTP, same run.

Starts two real managers (subprocesses, loopback, each its own temporary
data dir): one as by default (HTTPS with the cluster CA's certificate), one
with `--insecure` (plain HTTP, allowed on loopback only) as the baseline.
Deploys the same stack (`--services` services, no nodes: the listing has
content, nothing runs) to both, then times `--requests` calls of
`GET /v1/services` on each, interleaved in rounds so that both see the
same machine load:

- `kept`: one client keeping its connection open (a CLI session, a UI
  polling; the handshake is paid once);
- `new`: a new connection per call (one `corral service ls`: a TLS
  handshake each time).

    .venv/bin/python bench/tls.py                 # 2,000 calls of each kind per manager
    .venv/bin/python bench/tls.py --requests 500  # a quick check

Prints a table and, last, one JSON object with p50/p99 in ms per manager and kind.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from corral.pki import client_context

CORRAL = [sys.executable, "-m", "corral.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compose(services: int) -> str:
    lines = ["services:"]
    for i in range(services):
        lines += [f"  s{i}:", "    image: corral-demo:latest", "    deploy: {replicas: 2}"]
    return "\n".join(lines) + "\n"


class Served:
    """One manager subprocess, and how to call it."""

    def __init__(self, workdir: Path, insecure: bool) -> None:
        self.name = "http (--insecure)" if insecure else "https"
        self.data = workdir / ("plain" if insecure else "tls")
        port = free_port()
        self.url = f"{'http' if insecure else 'https'}://127.0.0.1:{port}"
        command = [*CORRAL, "manager", "--data-dir", str(self.data), "--listen", f"127.0.0.1:{port}", "--no-registry"]
        self.proc = subprocess.Popen(command + (["--insecure"] if insecure else []), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.insecure = insecure

    def verify(self) -> object:
        # Plain HTTP verifies nothing: False spares httpx loading the system's CAs for each new client.
        return False if self.insecure else client_context((self.data / "ca.pem").read_bytes())

    def headers(self) -> dict[str, str]:
        """Every call carries the admin token the manager wrote in its data dir."""
        return {"Authorization": f"Bearer {(self.data / 'admin-token').read_text().strip()}"}

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v1/info", verify=self.verify(), headers=self.headers(), timeout=2).status_code == 200:  # type: ignore[arg-type]
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"the {self.name} manager did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="calls of each kind per manager")
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10, help="the calls are split in this many interleaved rounds")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-tls-"))
    managers = [Served(workdir, insecure=False), Served(workdir, insecure=True)]
    try:
        for served in managers:
            served.wait()
            reply = httpx.post(served.url + "/v1/stacks/bench/deploy", json={"compose": compose(args.services)},
                               verify=served.verify(), headers=served.headers(), timeout=60)  # type: ignore[arg-type]
            reply.raise_for_status()
        timings: dict[str, dict[str, list[float]]] = {m.name: {"kept": [], "new": []} for m in managers}
        clients = {m.name: httpx.Client(base_url=m.url, verify=m.verify(), headers=m.headers(), timeout=30) for m in managers}  # type: ignore[arg-type]
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for served in managers:
                client, kept, new = clients[served.name], timings[served.name]["kept"], timings[served.name]["new"]
                context = served.verify()
                for _ in range(per_round):
                    began = time.perf_counter()
                    client.get("/v1/services").raise_for_status()
                    kept.append(time.perf_counter() - began)
                for _ in range(per_round):
                    began = time.perf_counter()
                    with httpx.Client(verify=context, headers=served.headers(), timeout=30) as once:  # type: ignore[arg-type]
                        once.get(served.url + "/v1/services").raise_for_status()
                    new.append(time.perf_counter() - began)
        for client in clients.values():
            client.close()
    finally:
        for served in managers:
            served.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        name: {kind: {"p50_ms": round(quantile(v, 0.5), 2), "p99_ms": round(quantile(v, 0.99), 2),
                      "mean_ms": round(statistics.fmean(v) * 1000, 2), "n": len(v)} for kind, v in kinds.items()}
        for name, kinds in timings.items()
    }
    print(f"GET /v1/services ({args.services} services), {os.cpu_count()} CPUs")
    print(f"{'manager':<20}{'connection':<12}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, kinds in figures.items():
        for kind, row in kinds.items():
            print(f"{name:<20}{kind:<12}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['mean_ms']:>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
