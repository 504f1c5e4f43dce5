"""`corral agent` becomes the agent's own process (corral/agent/process.py): same process id, no command-line modules.

The settings cross the exec through a pipe; the agent then joins a real manager, serves until SIGTERM and exits 0;
a refusal is an error naming the node, exit 1.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from corral.agent.process import decode, encode
from corral.agent.settings import AgentSettings
from corral.model import Resources
from tests.processes import stop_process
from tests.tls import admin_headers, verify

CORRAL = [sys.executable, "-m", "corral.cli.main"]


def test_settings_cross_the_exec_unchanged() -> None:
    settings = AgentSettings(
        manager_url="https://127.0.0.1:7070", name="n1", address="127.0.0.2", token="SWMTKN-x", engine="hollow",
        resources=Resources(cpus=2.5, memory=3 << 30), labels={"zone": "a"}, state_dir=Path("/tmp/n1"),
        dns=False, dns_upstreams=("127.0.0.53", "10.0.0.1:5353"), node_port=0, metrics_port=None, poll_interval=10.0,
    )
    again, delay, secrets_dir, verbose = decode(encode(settings, (0.01, 0.02), Path("/run/corral"), True))
    assert again == settings
    assert delay == (0.01, 0.02) and secrets_dir == Path("/run/corral") and verbose is True
    plain = AgentSettings(manager_url="u", name="n", address="127.0.0.3", token="t")
    assert decode(encode(plain, (0.05, 0.2), Path("/s"), False))[0] == plain  # the defaults (None, empty) too


# (click is loaded by uvicorn, which the node listener serves with: not the command line.)
PROBE = """
import sys
import corral.agent.process
from corral.agent.daemon import Agent, EngineFactory
import corral.agent.engines.docker, corral.agent.engines.hollow, corral.agent.node_listener, corral.agent.networks.keeper
import corral.client, corral.model.errors, uvloop
print(sorted(n for n in ("typer", "rich", "corral.cli", "corral.cli.daemons", "corral.manager") if sys.modules.get(n)))
"""


def test_the_agent_process_loads_no_command_line() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"the agent's process pulls in {done.stdout.strip()}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_corral_agent_execs_into_the_agent_process(tmp_path: Path) -> None:
    port = _free_port()
    url, data = f"https://127.0.0.1:{port}", tmp_path / "data"
    manager = subprocess.Popen(
        [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry"],
        stdout=(tmp_path / "manager.log").open("wb"), stderr=subprocess.STDOUT,
    )
    agent: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 30
        while not (data / "join-token").exists() or not (data / "ca.pem").exists():
            assert time.monotonic() < deadline and manager.poll() is None, "the manager did not start"
            time.sleep(0.1)
        (tmp_path / "wrong").write_text("SWMTKN-1-nope-nope")
        base = [*CORRAL, "agent", "--manager", url, "--engine", "hollow", "--address", "127.0.0.1", "--node-port", "0", "--metrics-port", "0"]
        refused = subprocess.run([*base, "--name", "p0", "--token-file", str(tmp_path / "wrong")], capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "error:" in refused.stderr, refused.stderr

        agent = subprocess.Popen(
            [*base, "--name", "p1", "--token-file", str(data / "join-token")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert agent.stdout is not None
        line = agent.stdout.readline()  # the process is the agent now: it prints its one line once joined
        assert line.startswith(f"corral agent p1 (127.0.0.1) joined {url}"), line + (agent.stderr.read() if agent.poll() is not None and agent.stderr else "")
        cmdline = Path(f"/proc/{agent.pid}/cmdline").read_text().split("\0")  # the same process id: it exec'd
        assert cmdline[1:4] == ["-m", "corral.agent.process", "--settings-fd"], cmdline
        assert "SWMTKN" not in " ".join(cmdline)
        nodes = httpx.get(url + "/v1/nodes", verify=verify(data), headers=admin_headers(data)).json()
        assert [n["name"] for n in nodes] == ["p1"] and nodes[0]["state"] == "ready"
        agent.terminate()
        assert agent.wait(20) == 0
    finally:
        if agent is not None:
            stop_process(agent, 10)
        stop_process(manager, 10)
