"""Benchmark of the routing mesh: HTTP through the mesh against the same load sent directly.

Starts `--containers` corral-demo containers (busybox httpd, published on
127.0.0.1), then runs `wrk` on loopback with fixed threads, connections and
duration against:

- direct:      one container's published port (the baseline);
- mesh-1:      the mesh (`python -m corral.agent.mesh`, its own process) to that one container;
- mesh-N:      the mesh to all N containers (round robin);
- the same two with the uvloop event loop (`--loop uvloop`), when uvloop is installed;
- mesh-1-shortcut, mesh-N-shortcut: uvloop, and each published backend's container
  address given as a shortcut (`--shortcut`), as the agent learns them from the
  engine: the mesh connects to the container on its bridge, not through Docker's
  userland proxy (what the agent runs);
- kernel-1, kernel-N: the mesh's kernel data path (iptables DNAT, chains
  CORRAL-MESH-b<id><n>..., removed when the mesh stops), when run as root, with
  the containers' addresses as shortcuts (as the agent gives them): they
  matter for clients on other hosts only (`--client-netns`);
- kernel-published-1, kernel-published-N: the same without the shortcuts,
  every connection DNATed to the published address (the kernel path before
  it used them).

`--client-netns`: wrk runs in a network namespace the benchmark creates,
joined to this host by a veth pair (tests/netns.py) whose host side,
10.213.X.1, is the node address: the containers publish on it, the meshes
listen on it, and the client is "another host". Then `direct` is Docker's own
PREROUTING DNAT of the published port to the container (no docker-proxy),
and the kernel path DNATs straight to the container too; these two paths
hand the client's own address to the container, so each of their scenarios
gets containers of its own (one client port reaching one container through
two front ports meets the other connection's TIME_WAIT: SYN retransmits,
docs/performance.md). Without it,
everything is on 127.0.0.1 (the local cluster's case): direct and the mesh's
published backends go through docker-proxy.

Each scenario runs loaded (`--threads`, `--connections`: throughput) and
light (one connection: the latency the mesh adds, without the queueing of
a saturated 2-core machine). Every scenario runs `--repeat` times, each run
right after a run of `direct`: on a shared machine whose load swings by a
factor of several within a minute, the ratio and the added p50/p99 are
medians over those adjacent pairs (a median of each scenario's runs against a
median of direct's would compare moments of different load). req/s, p50 and
p99 are medians of each scenario's own runs.
Each run also counts the client's SYN retransmits (`syn_retrans`, printed per
run): wrk times latency from the request's write, so a connection that waited
1 s for a second SYN shows only in req/s.
"relay CPU ms/req" is the user+system CPU of the relays on the path (the mesh
processes and the containers' docker-proxy) per request: the cost a scenario
adds, which the machine's other load does not change the way it changes req/s.

What is measured, honestly: busybox httpd answers `Connection: close` and
forks per connection, so every request is a new TCP connection (wrk
reconnects), and the published port goes through Docker's userland proxy on
loopback; the mesh adds one accept, one connect and one relay per request.

    .venv/bin/python bench/mesh.py
    .venv/bin/python bench/mesh.py --threads 2 --connections 8 --duration 5 --repeat 5
    .venv/bin/python bench/mesh.py --variants uvloop,shortcut,kernel --duration 3 --repeat 5
    .venv/bin/python bench/mesh.py --client-netns --variants shortcut,kernel,kernel-published --repeat 5

The last line printed is one JSON object with the figures.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.netns import client_netns  # noqa: E402

IMAGE = "corral-demo:latest"


@dataclass(frozen=True)
class Run:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    relay_cpu_ms: float = 0.0  # CPU of the relays on the path (mesh processes, docker-proxy) per request
    syn_retrans: int = 0  # SYNs the client's network stack sent again (a 1 s wait wrk's latency does not count)


def start_containers(count: int, label: str, node_ip: str) -> tuple[list[int], list[str]]:
    """Ports published on `node_ip`, and each container's own address on its bridge."""
    ports, own = [], []
    for _ in range(count):
        cid = subprocess.run(
            ["docker", "run", "-d", "-p", f"{node_ip}::8080", "--label", label, IMAGE],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        out = subprocess.run(["docker", "port", cid, "8080"], check=True, capture_output=True, text=True).stdout
        ports.append(int(out.splitlines()[0].rsplit(":", 1)[1]))
        ip = subprocess.run(
            ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        own.append(f"{ip}:8080")
    for port in ports:
        wait_http(f"http://{node_ip}:{port}/")
    return ports, own


def remove_containers(label: str) -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout}s")
        time.sleep(0.1)


def free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def start_mesh(node_ip: str, backends: list[int], *options: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port(node_ip)
    route = f"tcp:{node_ip}:{port}=" + ",".join(f"{node_ip}:{b}" for b in backends)
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral.agent.mesh", *options, route],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise SystemExit(f"mesh did not start: {line}")
    wait_http(f"http://{node_ip}:{port}/")
    return proc, port


def relay_pids(meshes: list[subprocess.Popen[str]], ports: list[int]) -> list[int]:
    """The mesh processes and the docker-proxy of each published port: what relays a request between wrk and httpd."""
    proxies = []
    wanted = {str(port).encode() for port in ports}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"docker-proxy" in argv[0] and any(a == b"-host-port" and v in wanted for a, v in zip(argv, argv[1:])):
                proxies.append(int(entry.name))
        except OSError:
            continue
    return [proc.pid for proc in meshes] + proxies


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def measured(client: list[str], url: str, threads: int, connections: int, duration: int, relays: list[int]) -> Run:
    """One wrk run (`client`: the command prefix that runs it, e.g. in a namespace), with the relays' CPU per request."""
    before, retrans = cpu_ticks(relays), syn_retransmits(client)
    run = wrk(client, url, threads, connections, duration)
    spent_ms = (cpu_ticks(relays) - before) * 1000 / os.sysconf("SC_CLK_TCK")
    return replace(
        run, relay_cpu_ms=round(spent_ms / max(run.requests, 1), 4), syn_retrans=syn_retransmits(client) - retrans
    )


def syn_retransmits(client: list[str]) -> int:
    """TcpExt TCPSynRetrans of the client's network namespace (the whole host's on loopback)."""
    out = subprocess.run([*client, "cat", "/proc/net/netstat"], check=True, capture_output=True, text=True).stdout
    names, values = [line.split() for line in out.splitlines() if line.startswith("TcpExt:")][:2]
    return int(dict(zip(names, values)).get("TCPSynRetrans", 0))


def wrk(client: list[str], url: str, threads: int, connections: int, duration: int) -> Run:
    out = subprocess.run(
        [*client, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=latency_ms(out, "50%"),
        p99_ms=latency_ms(out, "99%"),
        errors=errors + (int(non2xx.group(1)) if non2xx else 0),
    )


def latency_ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    # busybox httpd's listen backlog is small: more connections overflow it and measure SYN retries (1 s)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--variants", default="asyncio,uvloop,shortcut,kernel",
        help="which meshes to measure against direct (comma-separated: asyncio, uvloop, shortcut, kernel, "
        "kernel-published; the kernel ones only as root)",
    )
    parser.add_argument(
        "--client-netns", action="store_true",
        help="run wrk in a network namespace joined by a veth pair whose host side is the node address (root)",
    )
    args = parser.parse_args()
    wanted = set(args.variants.split(","))
    with contextlib.ExitStack() as stack:
        if args.client_netns:
            ns = stack.enter_context(client_netns())
            node_ip, client = ns.host_ip, ns.command()
        else:
            node_ip, client = "127.0.0.1", []
        measure(args, wanted, node_ip, client)


def measure(args: argparse.Namespace, wanted: set[str], node_ip: str, client: list[str]) -> None:
    """Start the containers and meshes on `node_ip`, run every wrk with the `client` prefix, print the figures."""
    label = f"corral.bench.mesh={uuid.uuid4().hex[:8]}"
    loops = ["asyncio", "uvloop"] if has_uvloop() else ["asyncio"]
    meshes: list[subprocess.Popen[str]] = []
    try:
        ports, own = start_containers(args.containers, label, node_ip)
        all_ports = list(ports)

        def own_containers(count: int) -> tuple[list[int], list[str]]:
            """From a namespace, the paths that hand the client's own address to a container (direct, kernel)
            get containers of their own: one client port reaching a container through two front ports
            meets the TIME_WAIT of the other path's connection (SYN retransmits, docs/performance.md)."""
            if not client:
                return ports[:count], own[:count]
            fresh = start_containers(count, label, node_ip)
            all_ports.extend(fresh[0])
            return fresh

        urls = {"direct": f"http://{node_ip}:{own_containers(1)[0][0]}/"}
        variants = {loop: ["--loop", loop] for loop in loops}
        shortcuts = [f"--shortcut={node_ip}:{p}={o}" for p, o in zip(ports, own)]
        variants["shortcut"] = [*variants[loops[-1]], *shortcuts]
        if os.geteuid() == 0 and shutil.which("iptables-restore"):
            variants["kernel"] = ["--data-path", "kernel", *shortcuts]
            variants["kernel-published"] = ["--data-path", "kernel"]
        for variant, options in variants.items():
            if variant not in wanted:
                continue
            for count in (1, len(ports)):
                kernel = variant.startswith("kernel")
                name = f"{variant}-{count}" if kernel else f"mesh-{count}-{variant}"
                backends = ports[:count]
                if kernel:  # one set of chains per mesh process
                    options = [*options, "--cluster", f"b{label[-6:]}{count}{'p' if variant != 'kernel' else ''}"]
                if variant == "kernel":
                    backends, addresses = own_containers(count)
                    options = [
                        *(o for o in options if not o.startswith("--shortcut=")),
                        *(f"--shortcut={node_ip}:{p}={o}" for p, o in zip(backends, addresses)),
                    ]
                proc, port = start_mesh(node_ip, backends, *options)
                meshes.append(proc)
                urls[name] = f"http://{node_ip}:{port}/"
        profiles = {"loaded": (args.threads, args.connections), "light": (1, 1)}
        runs: dict[tuple[str, str], list[Run]] = {(p, name): [] for p in profiles for name in urls}
        paired: dict[tuple[str, str], list[Run]] = {(p, name): [] for p in profiles for name in urls}  # direct just before
        relays = relay_pids(meshes, all_ports)
        for round_ in range(args.repeat):
            for profile, (threads, connections) in profiles.items():
                for name, url in list(urls.items())[1:]:
                    for scenario, target in (("direct", paired), (name, runs)):
                        run = measured(client, urls[scenario], threads, connections, args.duration, relays)
                        target[profile, name].append(run)
                        print(f"round {round_ + 1} {profile:6} {scenario:18} {run}", file=sys.stderr)
                runs[profile, "direct"] = [run for name in urls for run in paired[profile, name]]
    finally:
        for proc in meshes:
            proc.terminate()
            proc.wait(timeout=10)
        remove_containers(label)

    results = {
        profile: summarize({name: runs[profile, name] for name in urls}, {name: paired[profile, name] for name in urls})
        for profile in profiles
    }
    where = f"client in a network namespace, node address {node_ip}" if client else "client on loopback"
    print(f"{args.containers} containers, {where}, wrk -d{args.duration}s, median of {args.repeat} rounds, each scenario's run "
          "right after a run of direct (ratio and added latency: medians over those pairs); "
          "each request is a new connection (busybox httpd closes)")
    for profile, (threads, connections) in profiles.items():
        print(f"\n{profile}: wrk -t{threads} -c{connections}")
        print(
            f"{'scenario':18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'+p50 ms':>8} {'+p99 ms':>8} "
            f"{'errors':>6} {'relay CPU ms/req':>16}"
        )
        for name, f in results[profile].items():
            print(
                f"{name:18} {f['rps']:8.0f} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} {f['throughput_ratio']:6.2f} "
                f"{f['added_p50_ms']:8.2f} {f['added_p99_ms']:8.2f} {f['errors']:6d} {f['relay_cpu_ms']:16.3f}"
            )
    print(json.dumps({
        "benchmark": "mesh", "client_netns": bool(client), "node_ip": node_ip, "duration_s": args.duration, "repeat": args.repeat, "containers": args.containers,
        "profiles": {p: {"threads": t, "connections": c} for p, (t, c) in profiles.items()}, "results": results,
    }))


def summarize(runs: dict[str, list[Run]], paired: dict[str, list[Run]]) -> dict[str, dict]:
    """Medians per scenario, and each compared with the run of `direct` just before each of its runs."""
    results: dict[str, dict] = {}
    for name, rs in runs.items():
        pairs = list(zip(paired[name], rs)) if name != "direct" else [(r, r) for r in rs]
        results[name] = {
            "rps": statistics.median(r.rps for r in rs),
            "p50_ms": statistics.median(r.p50_ms for r in rs),
            "p99_ms": statistics.median(r.p99_ms for r in rs),
            "errors": sum(r.errors for r in rs),
            "relay_cpu_ms": statistics.median(r.relay_cpu_ms for r in rs),
            "throughput_ratio": round(statistics.median(r.rps / d.rps for d, r in pairs), 3),
            "added_p50_ms": round(statistics.median(r.p50_ms - d.p50_ms for d, r in pairs), 3),
            "added_p99_ms": round(statistics.median(r.p99_ms - d.p99_ms for d, r in pairs), 3),
        }
    return results


if __name__ == "__main__":
    main()
