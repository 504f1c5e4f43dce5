"""Leader failover: 3 managers on a 3-member etcd, hollow nodes and tasks in steady state, a stream of writes.

Each round SIGKILLs the leader and measures the time until another manager leads (its controller starts
in the same step as its term), while a client keeps deploying small stacks through all three managers
(`ManagerClient` with the comma-separated list, as the CLI and agents do). The killed manager is started
again before the next round. At the end every acknowledged deploy must be stored.

Prints per round, then a JSON object as its last line:
{"failovers": N, "takeover_p50_s": ..., "takeover_max_s": ..., "write_gap_max_s": ..., "lost_writes": 0}

    .venv/bin/python bench/failover.py [--rounds 10] [--nodes 50] [--replicas 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.client import ApiError, ManagerClient  # noqa: E402
from corral.pki import client_context  # noqa: E402
from tests.e2e.cluster import CORRAL, wait_until  # noqa: E402
from tests.e2e.control_plane import ControlPlane, ManagerProcess  # noqa: E402

IDLE = "services:\n  idle:\n    image: corral-demo:latest\n    deploy: {replicas: 0}\n"
STEADY = "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: %d}\n"


def leader_of(plane: ControlPlane, through: list[ManagerProcess]) -> str | None:
    for manager in through:
        try:
            rows = plane.api(manager, "GET", "/v1/managers")
        except Exception:  # noqa: BLE001 - a manager being killed or started
            continue
        leaders = [r["name"] for r in rows if r["leader"] and r["healthy"]]
        if len(leaders) == 1:
            return leaders[0]
    return None


class Writer:
    """Deploys `bench{i}` stacks one after another through every manager; records when each was acknowledged."""

    def __init__(self, urls: str, ca: Path) -> None:
        self.urls, self.ca = urls, ca
        self.acked: list[tuple[float, str]] = []
        self.failed = 0
        self.errors: dict[str, int] = {}  # why writes failed (a manager killed mid-call, no leader yet...)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        token = (self.ca.parent / "admin-token").read_text().strip()  # the API needs a token: the data dir's admin one
        async with ManagerClient(self.urls, token=token, timeout=10, verify=client_context(self.ca.read_bytes())) as client:
            i = 0
            while not self.stop.is_set():
                name = f"bench{i}"
                try:
                    await client.post(f"/v1/stacks/{name}/deploy", {"compose": IDLE})
                    self.acked.append((time.monotonic(), name))
                except ApiError as err:
                    self.failed += 1
                    why = str(err)[:120]
                    self.errors[why] = self.errors.get(why, 0) + 1
                    await asyncio.sleep(0.05)
                i += 1

    def longest_gap(self, since: float) -> float:
        times = [at for at, _ in self.acked if at >= since]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=50, help="hollow nodes (one agent process)")
    parser.add_argument("--replicas", type=int, default=200, help="tasks in steady state")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="corral-failover-"))
    plane = ControlPlane.create(root, etcd_members=3)
    plane.network = "10.219.0.0/16"  # a VIP per deployed service: hundreds of writes outgrow the tests' /24
    fleet: subprocess.Popen[bytes] | None = None
    try:
        first = plane.start_manager("m1")
        managers = [first, plane.start_manager("m2", seed=first), plane.start_manager("m3", seed=first)]
        wait_until(lambda: leader_of(plane, managers), 20, 0.1, what="a leader")
        token = (first.data_dir / "join-token").read_text().strip()
        urls = ",".join(m.url for m in managers)
        with (root / "fleet.log").open("ab") as log:
            fleet = subprocess.Popen(
                [*CORRAL, "agent", "--manager", urls, "--engine", "hollow", "--count", str(args.nodes), "--name-prefix", "h",
                 "--address", "127.0.0.90", "--token", token], stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(lambda: len(plane.api(first, "GET", "/v1/nodes")) == args.nodes, 60, 0.5, what="hollow nodes")
        steady = root / "steady.yaml"
        steady.write_text(STEADY % args.replicas)
        plane.cli(managers, "deploy", "-c", str(steady), "--name", "steady")
        wait_until(
            lambda: sum(t["state"] == "running" for t in plane.api(first, "GET", "/v1/services/steady_web/tasks")) == args.replicas,
            120, 0.5, what="steady state",
        )
        writer = Writer(urls, first.data_dir / "ca.pem")
        writer.thread.start()
        wait_until(lambda: len(writer.acked) >= 5, 30, 0.1, what="writes")
        takeovers: list[float] = []
        started = time.monotonic()
        for round_ in range(1, args.rounds + 1):
            name = leader_of(plane, managers)
            leader = next(m for m in managers if m.name == name)
            survivors = [m for m in managers if m is not leader]
            plane.kill(leader)
            killed = time.monotonic()
            wait_until(lambda: leader_of(plane, survivors), 20, 0.02, what="a new leader")
            takeovers.append(time.monotonic() - killed)
            print(f"round {round_}: killed {leader.name}, new leader after {takeovers[-1]:.2f}s", flush=True)
            managers[managers.index(leader)] = plane.start_manager(leader.name, port=leader.port, data_dir=leader.data_dir)
            wait_until(lambda: leader_of(plane, managers), 20, 0.05, what="three healthy managers")
            time.sleep(1.0)
        writer.stop.set()
        writer.thread.join(30)
        stored = {s["name"] for s in plane.api(managers[0], "GET", "/v1/services")}
        lost = [name for _, name in writer.acked if f"{name}_idle" not in stored]
        print(f"{len(writer.acked)} writes acknowledged, {writer.failed} refused or unanswered (not retried), {len(lost)} lost")
        for why, count in sorted(writer.errors.items(), key=lambda item: -item[1])[:5]:
            print(f"  {count} x {why}")
        print(json.dumps({
            "failovers": len(takeovers),
            "takeover_p50_s": round(statistics.median(takeovers), 3),
            "takeover_max_s": round(max(takeovers), 3),
            "write_gap_max_s": round(writer.longest_gap(started), 3),
            "lost_writes": len(lost),
        }))
    finally:
        if fleet is not None and fleet.poll() is None:
            fleet.terminate()
            fleet.wait(30)
        plane.cleanup()


if __name__ == "__main__":
    main()
