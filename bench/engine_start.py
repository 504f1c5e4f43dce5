"""The engine's part of a deploy: the Docker agent's start of a new stack's first container, call by call.

`bench/startup.py --trace` shows that most of a one-by-one deploy's wait, and its tail, is the step `starting` ->
`running`: the engine's start, the stack's own network's creation included. This bench takes that step alone, on
the real engine and without a cluster, alternating three ways per round so that all see the same machine:

- `corral`: `DockerEngine.start` of a task of a new stack (its network made, the container created and started, its
  published port read back), every Engine API call counted and timed by kind;
- `network_create_start`: the same work asked of the Engine API by hand, as `docker network create` + `docker run
  --network` asks it (the network, the container's create, its start: 3 calls);
- `network_ahead`: the container's create and start on a network made seconds before (what a pool of networks made
  ahead of the stacks would leave on the path).

Each container is removed after its round; the networks at the end. Everything carries the label
`corral.bench.engine-start` and goes, whatever happens.

    flock /tmp/corral-e2e.lock .venv/bin/python bench/engine_start.py --rounds 20

The last line printed is one JSON object with the figures.
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.agent.engines.docker import DockerEngine  # noqa: E402
from corral.agent.engines.docker_api import EngineAPI  # noqa: E402
from corral.model import PortSpec, ServiceSpec, Task, TaskState  # noqa: E402

IMAGE = "corral-demo:latest"
COMMAND = ["httpd", "-f", "-p", "8080"]
LABEL = "corral.bench.engine-start"
POOL = "10.221"  # the /24s of the baselines' networks (corral's own pool is 10.218.0.0/16)


class CountingAPI(EngineAPI):
    """The real engine; each call's time kept by its kind (METHOD PATH, ids as ID)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[str, list[float]] = {}
        self.count = 0

    def call(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return super().call(method, path, *args, **kwargs)
        finally:
            kind = f"{method} " + "/".join("ID" if len(part) == 64 else part for part in path.split("/"))
            self.times.setdefault(kind, []).append(time.perf_counter() - began)
            self.count += 1


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 4),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }


class Baseline:
    """Network and container through the Engine API by hand."""

    def __init__(self, api: EngineAPI, tag: str) -> None:
        self.api = api
        self.tag = tag
        self.made = 0

    def network(self) -> str:
        self.made += 1
        body = {
            "Name": f"enginestart-{self.tag}-{self.made}", "Driver": "bridge", "CheckDuplicate": True,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": f"{POOL}.{self.made}.0/24"}]}, "Labels": {LABEL: self.tag},
        }
        return str(self.api.call("POST", "/networks/create", body)["Id"])

    def container(self, network: str) -> str:
        body = {
            "Image": IMAGE, "Cmd": COMMAND, "Labels": {LABEL: self.tag}, "ExposedPorts": {"8080/tcp": {}},
            "HostConfig": {
                "NetworkMode": network, "RestartPolicy": {"Name": "no"},
                "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
            },
        }
        container = str(self.api.call("POST", "/containers/create", body)["Id"])
        self.api.call("POST", f"/containers/{container}/start")
        return container


async def measure(rounds: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    cluster = f"bench-{tag}"
    counting = CountingAPI()
    engine = DockerEngine(cluster, "n1", api=counting, files_root=Path(tempfile.mkdtemp(prefix="engine-start-")))
    baseline = Baseline(EngineAPI(), tag)
    walls: dict[str, list[float]] = {"corral": [], "network_create_start": [], "network_ahead": []}
    calls: list[int] = []
    try:
        ahead = [baseline.network() for _ in range(rounds)]
        time.sleep(2)
        for i in range(rounds):
            spec = ServiceSpec(name="web", stack=f"s{i}", image=IMAGE, command=COMMAND, ports=[PortSpec(target=8080)])
            task = Task(
                id=f"t{i}", service=f"s{i}_web", stack=f"s{i}", slot=1, node="n1", state=TaskState.assigned, spec=spec,
                created_at=0.0, updated_at=0.0,
            )
            before = counting.count
            began = time.perf_counter()
            info = await engine.start(task, "127.0.0.1")
            walls["corral"].append(time.perf_counter() - began)
            calls.append(counting.count - before)
            if not (info.running and info.ports):
                raise SystemExit(f"corral's start of {task.id} did not run: {info}")
            await engine.remove(info.id)
            for way, network in (("network_create_start", None), ("network_ahead", ahead[i])):
                began = time.perf_counter()
                container = baseline.container(network or baseline.network())
                walls[way].append(time.perf_counter() - began)
                baseline.api.call("DELETE", f"/containers/{container}", params={"force": 1})
            time.sleep(0.2)
    finally:
        await engine.close()
        for kind, owner in (("container", f"corral.cluster={cluster}"), ("container", f"{LABEL}={tag}")):
            found = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={owner}"], capture_output=True, text=True).stdout.split()
            if found:
                subprocess.run(["docker", "rm", "-f", *found], capture_output=True)
        for owner in (f"corral.cluster={cluster}", f"{LABEL}={tag}"):
            found = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label={owner}"], capture_output=True, text=True).stdout.split()
            if found:
                subprocess.run(["docker", "network", "rm", *found], capture_output=True)
    start_kinds = {kind: quantiles(times) for kind, times in counting.times.items() if not kind.startswith("DELETE")}
    return {
        "benchmark": "engine_start", "rounds": rounds, "engine_calls_per_first_start": statistics.median(calls),
        **{way: quantiles(times) for way, times in walls.items()}, "corral_calls": start_kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(measure(args.rounds))
    print(f"the engine's start of a new stack's first container, {args.rounds} rounds (seconds)")
    print(f"{'':44s} {'p50':>7s} {'p90':>7s} {'max':>7s}")
    for way in ("corral", "network_create_start", "network_ahead"):
        q = result[way]
        print(f"{way:44s} {q['p50']:7.3f} {q['p90']:7.3f} {q['max']:7.3f}")
    print(f"corral's engine calls per start: {result['engine_calls_per_first_start']:g}, by kind (p50 ms):")
    for kind, q in result["corral_calls"].items():
        print(f"  {kind:42s} {q['p50'] * 1000:8.1f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
