"""What an agent process loads: nothing of httpx's command-line tool, the API server or the Docker SDK with requests and
urllib3 (an agent of hollow nodes needs none of them, and the Docker engine speaks the Engine API over httpx), nor uvicorn and starlette (the node listener and /metrics are imported by an agent
that serves them, at its first connection) nor dnspython (the DNS responder of an agent with real networks, at its first
query), nor prometheus_client (at the first scrape of /metrics), nor cryptography (a child makes the
node's key and requests: corral/pki/node_key.py); and httpx still works."""

import subprocess
import sys

PROBE = """
import sys
import corral.agent.daemon, corral.agent.fleet
import httpx
print(sorted(name for name in ("httpx._main", "pygments", "fastapi", "docker", "corral.manager", "uvicorn", "starlette", "dns", "cryptography", "prometheus_client") if sys.modules.get(name)))
print(httpx.Client().base_url == httpx.URL(""))
"""


def test_agent_imports_leave_out_httpx_cli_server_listeners_dns_and_docker_sdk() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    loaded, works = done.stdout.splitlines()
    assert loaded == "[]", f"an agent pulls in {loaded}"
    assert works == "True"


DOCKER_PROBE = """
import asyncio, ssl, sys, tempfile
loaded = []
original = ssl.SSLContext.load_verify_locations
def counting(self, *args, **kwargs):
    loaded.append(args or kwargs)
    return original(self, *args, **kwargs)
ssl.SSLContext.load_verify_locations = counting
import corral.agent.daemon, corral.agent.networks.keeper
from corral.agent.daemon import EngineFactory
engine = EngineFactory("docker", secrets_dir=__import__("pathlib").Path(tempfile.mkdtemp()))("c1", "n1")
async def main():
    engine._streamer()  # the async client for events, logs and exec
    await engine.close()
asyncio.run(main())
print(sorted(name for name in ("docker", "requests", "urllib3", "charset_normalizer", "fastapi") if sys.modules.get(name)))
print(len(loaded))
"""


def test_an_agent_of_the_docker_engine_loads_no_docker_sdk_requests_or_urllib3_nor_a_ca_bundle() -> None:
    """Nor does it load certifi's CA bundle for its clients of the engine's Unix socket (no TLS there: 0.4-0.6 MiB each)."""
    done = subprocess.run([sys.executable, "-c", DOCKER_PROBE], capture_output=True, text=True, check=True)
    modules, bundles = done.stdout.splitlines()
    assert modules == "[]", f"a Docker agent pulls in {modules}"
    assert bundles == "0", f"the Docker engine's clients loaded CA certificates {bundles} times"


def test_the_agent_command_leaves_out_rich_and_cryptography() -> None:
    """`corral agent` runs from corral.cli.daemons (shared with `manager`, `up`, `join-token`): loading it for the agent
    loads neither rich (the CLI's tables and error printer make their console at first use) nor cryptography."""
    probe = (
        "import sys, corral.cli.main, corral.cli.daemons\n"
        "print(sorted(n for n in ('rich', 'cryptography', 'corral.pki.authority') if sys.modules.get(n)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"corral.cli.daemons pulls in {done.stdout.strip()}"


LISTENER_PROBE = """
import asyncio, sys
from corral.agent.node_listener import NodeListener
from corral.agent.engines.hollow import HollowEngine, HollowTiming

async def main():
    listener = NodeListener("127.0.0.1", 0, "--metrics-port")
    def app():
        from corral.agent.node_api import node_app
        return node_app(lambda: HollowEngine("n1", HollowTiming()))
    await listener.serve_plain(app)
    await asyncio.sleep(0.2)
    before = sorted(n for n in ("uvicorn", "starlette", "corral.agent.node_api") if sys.modules.get(n))
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"GET /v1/tasks/t9/stats HTTP/1.1\\r\\nHost: n1\\r\\nConnection: close\\r\\n\\r\\n")
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    after = sorted(n for n in ("uvicorn", "starlette", "corral.agent.node_api") if sys.modules.get(n))
    await listener.close()
    print(before)
    print(after)
    print(answer.split(b"\\r\\n")[0].decode())
asyncio.run(main())
"""


def test_a_listener_loads_its_server_and_app_at_its_first_connection() -> None:
    """uvicorn, starlette and the node API (about 4 MiB) are loaded when a connection comes, and that one is served."""
    done = subprocess.run([sys.executable, "-c", LISTENER_PROBE], capture_output=True, text=True, check=True, timeout=60)
    before, after, status = done.stdout.splitlines()
    assert before == "[]", f"a listener nobody connected to loaded {before}"
    assert after == "['corral.agent.node_api', 'starlette', 'uvicorn']"
    assert status == "HTTP/1.1 404 Not Found"


DNS_PROBE = """
import asyncio, socket, struct, sys
from corral.agent.dns.records import records_of
from corral.agent.dns.server import DnsResponder, NetworkDirectory
from corral.agent.networks.view import Member, Network, NetworkView

VIEW = NetworkView({"shop_default": Network("shop_default", "n1", "br-1", "127.0.0.0/8", (Member("c", "t1", "127.0.0.1"),))})
NAMES = [{"service": "shop_db", "stack": "shop", "vip": "10.217.0.2", "networks": [{"name": "shop_default"}], "tasks": []}]

def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

def query(name):  # an A query, written by hand (the probe must not load dnspython itself)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + labels + b"\\0" + struct.pack(">HH", 1, 1)

def loaded():
    return sorted(n for n in ("dns", "dns.message", "dns.asyncquery") if sys.modules.get(n))

async def main():
    responder = DnsResponder(NetworkDirectory(lambda: VIEW), [("127.0.0.1", free_udp_port())], forward_timeout=0.2)
    responder.records = records_of(NAMES)
    port = free_udp_port()
    await responder.listen("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        print(loaded())
        for name in ("db", "example.org"):
            await loop.sock_sendto(sock, query(name), ("127.0.0.1", port))
            reply = await asyncio.wait_for(loop.sock_recv(sock, 512), 5)
            answers, rcode = struct.unpack(">H", reply[6:8])[0], reply[3] & 0x0F
            print(name, answers, rcode, loaded())
    await responder.close()
asyncio.run(main())
"""


def test_the_dns_responder_loads_dnspython_at_its_first_query_and_its_client_at_the_first_forward() -> None:
    """An agent whose containers ask nothing keeps no dnspython (about 2 MiB); one whose containers ask only the
    cluster's names keeps no `dns.asyncquery` (0.5 MiB)."""
    done = subprocess.run([sys.executable, "-c", DNS_PROBE], capture_output=True, text=True, check=True, timeout=60)
    before, ours, forwarded = done.stdout.splitlines()
    assert before == "[]"
    assert ours == "db 1 0 ['dns', 'dns.message']"  # one answer, NOERROR
    assert forwarded == "example.org 0 2 ['dns', 'dns.asyncquery', 'dns.message']"  # no resolver answered: SERVFAIL
