"""What an agent process loads: nothing of httpx's command-line tool, the API server or the Docker SDK with requests and
urllib3 (an agent of hollow nodes needs none of them, and the Docker engine speaks the Engine API over httpx), nor uvicorn and starlette (the node listener and /metrics are imported by an agent
that serves them) nor dnspython (the DNS responder of an agent with real networks), nor cryptography (a child makes the
node's key and requests: corral/pki/node_key.py); and httpx still works."""

import subprocess
import sys

PROBE = """
import sys
import corral.agent.daemon, corral.agent.fleet
import httpx
print(sorted(name for name in ("httpx._main", "pygments", "fastapi", "docker", "corral.manager", "uvicorn", "starlette", "dns", "cryptography") if sys.modules.get(name)))
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
