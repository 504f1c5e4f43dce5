"""How fast a container gets a service name answered, and how soon a new service's name resolves.

Starts a local cluster (`corral up`, 2 nodes on loopback), deploys a stack with a client container and
a `db` service, then, from inside the client container's network namespace (a Python process entered
with `nsenter -n`, so each lookup is what the container's own resolver library would send):

- latency of --lookups sequential A lookups (p50/p99, ms) of
  - `db` through Docker's embedded resolver 127.0.0.11, which forwards it to corral's responder (the
    path every container uses),
  - `db` asked of corral's responder directly,
  - baseline, the same run: a container name Docker's embedded resolver answers itself, and the
    node's own resolver (first `nameserver` of the host's /etc/resolv.conf), asked directly and
    through Docker's and corral's resolvers (forwarded), for a name it does not know (any answer
    counts; --upstream-lookups, 1,000 by default, since it is not on loopback);
- deploy-to-resolves: seconds from starting `corral deploy` of a stack with one more service to its
  name resolving in the running client (polled every 10 ms), median of --deploys.

Prints a table, then one JSON line.

    .venv/bin/python bench/dns.py [--lookups 10000] [--deploys 5]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.cluster import Cluster, wait_until  # noqa: E402

STACK = """
services:
  db:
    image: corral-demo:latest
    command: ["httpd", "-f", "-p", "9090"]
    expose: [9090]
  client:
    image: corral-demo:latest
    command: ["sleep", "3600"]
{more}
"""
MORE = """
  late{n}:
    image: corral-demo:latest
    command: ["sleep", "3600"]
"""

# Run inside the container's network namespace: N lookups of NAME at SERVER, one latency (ms) a line.
PROBE = """
import sys, time
import dns.exception, dns.message, dns.query, dns.rcode
server, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
any_answer = len(sys.argv) > 4  # an NXDOMAIN is an answer too (the node's resolver knows no name of ours)
query = dns.message.make_query(name, "A")
out = []
lost = 0
for _ in range(count):
    began = time.perf_counter()
    try:
        reply = dns.query.udp(query, server, timeout=2)
    except dns.exception.Timeout:
        if not any_answer:
            raise
        lost += 1  # a resolver off loopback may drop some (rate limits): counted, not timed
        continue
    out.append((time.perf_counter() - began) * 1000)
    if not any_answer and (reply.rcode() != dns.rcode.NOERROR or not reply.answer):
        print("FAIL", dns.rcode.to_text(reply.rcode()), flush=True)
        sys.exit(1)
print(f"lost {lost}", file=sys.stderr)
print("\\n".join(f"{v:.4f}" for v in out))
"""

# Until NAME resolves at SERVER (every 10 ms): seconds since the time given.
WAIT = """
import sys, time
import dns.message, dns.query, dns.rcode
server, name, since = sys.argv[1], sys.argv[2], float(sys.argv[3])
query = dns.message.make_query(name, "A")
while True:
    try:
        reply = dns.query.udp(query, server, timeout=1)
        if reply.rcode() == dns.rcode.NOERROR and reply.answer:
            print(time.time() - since)
            break
    except Exception:
        pass
    time.sleep(0.01)
"""


def in_container(pid: int, script: str, *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe failed: {done.stdout[-300:]} {done.stderr[-500:]}")
    return done.stdout


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def host_resolver() -> str:
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return parts[1]
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--deploys", type=int, default=5)
    parser.add_argument("--upstream-lookups", type=int, default=1000, help="lookups sent to the node's resolver (not loopback)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-dns-") as tmp:
        cluster = Cluster(Path(tmp) / "cluster", nodes=2, first_address="127.0.0.92")
        try:
            cluster.start()
            compose = Path(tmp) / "compose.yaml"
            compose.write_text(STACK.format(more=""))
            cluster.cli("deploy", "-c", str(compose), "--name", "bench")
            cluster.wait_running("bench_db", 1)
            cluster.wait_running("bench_client", 1)
            [client] = [c for c in cluster.containers(service="bench_client") if c.status == "running"]
            [db] = [c for c in cluster.containers(service="bench_db") if c.status == "running"]
            pid = int(client.attrs["State"]["Pid"])
            ours = _dns_address(cluster)
            wait_until(lambda: in_container(pid, PROBE, "127.0.0.11", "db", "1"), 30, what="db to resolve")

            rows: list[tuple[str, float, float, int]] = []
            count = str(options.lookups)
            cases = [
                ("db via 127.0.0.11 -> corral", "127.0.0.11", "db", count, ()),
                ("db at corral's responder", ours, "db", count, ()),
                ("baseline: docker's own name", "127.0.0.11", db.name, count, ()),
            ]
            upstream = host_resolver()
            if upstream:  # not on loopback: a gentler count, and any answer (it may know no name at all)
                gentle = str(min(options.lookups, options.upstream_lookups))
                cases.append((f"baseline: node resolver {upstream}", upstream, "nosuchname.invalid.", gentle, ("any",)))
                cases.append(("same name via 127.0.0.11 -> corral -> it", "127.0.0.11", "nosuchname.invalid.", gentle, ("any",)))
            for label, server, name, n, extra in cases:
                try:
                    values = [float(v) for v in in_container(pid, PROBE, server, name, n, *extra).split()]
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    print(f"{label}: not measured ({str(err)[:120]})")
                    continue
                rows.append((label, *percentiles(values), len(values)))

            resolve_times = []
            for n in range(options.deploys):
                compose.write_text(STACK.format(more="".join(MORE.format(n=i) for i in range(n + 1))))
                began = time.time()
                waiter = subprocess.Popen(
                    ["nsenter", "-t", str(pid), "-n", sys.executable, "-c", WAIT, "127.0.0.11", f"late{n}", str(began)],
                    stdout=subprocess.PIPE, text=True,
                )
                cluster.cli("deploy", "-c", str(compose), "--name", "bench")
                out, _ = waiter.communicate(timeout=60)
                resolve_times.append(float(out.strip()))
        finally:
            cluster.cleanup()

    base = next((r for r in rows if r[0].startswith("baseline: docker")), None)
    print("sequential A lookups from inside a container's network namespace")
    print(f"{'case':44} {'lookups':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50/base':>9}")
    for label, p50, p99, n in rows:
        ratio = f"{p50 / base[1]:.2f}" if base else "-"
        print(f"{label:44} {n:8d} {p50:8.3f} {p99:8.3f} {ratio:>9}")
    median = statistics.median(resolve_times)
    print(f"corral deploy of one more service -> its name resolves in a running container: median {median:.3f} s "
          f"(runs: {', '.join(f'{t:.3f}' for t in resolve_times)})")
    print(json.dumps({
        "lookups": options.lookups,
        "latency_ms": {label: {"p50": round(p50, 4), "p99": round(p99, 4), "lookups": n} for label, p50, p99, n in rows},
        "deploy_to_resolve_s": {"median": round(median, 4), "runs": [round(t, 4) for t in resolve_times]},
    }))


def _dns_address(cluster: Cluster) -> str:
    """The responder's address: the first address of the cluster's service network."""
    network = cluster.extra[cluster.extra.index("--service-network") + 1]
    return network.rsplit(".", 1)[0] + ".1"


if __name__ == "__main__":
    main()
