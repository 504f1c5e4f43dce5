"""The join token and the node credentials are in no output or log of `corral manager` and `corral agent`,
and not on the agent's command line (`--token-file`, `CORRAL_JOIN_TOKEN`)."""

import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.processes import stop_process
from tests.tls import admin_headers, ca_file, verify
from typer.testing import CliRunner

from corral.cli.main import app

from test_manager_stops import CORRAL, _free_port


def _wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (httpx.TransportError, FileNotFoundError):  # not serving yet, or its CA not written yet
            pass
        time.sleep(0.1)
    return False


def test_token_options_are_checked(tmp_path: Path) -> None:
    base = ["agent", "--manager", "http://127.0.0.1:9", "--address", "127.0.0.1", "--name", "n1"]
    runner = CliRunner()
    both = runner.invoke(app, [*base, "--token", "t", "--token-file", str(tmp_path / "f")])
    assert both.exit_code != 0 and "--token and --token-file" in both.output
    missing = runner.invoke(app, [*base, "--token-file", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "--token-file: cannot read" in " ".join(missing.output.split())
    none = runner.invoke(app, base, env={"CORRAL_JOIN_TOKEN": ""})
    assert none.exit_code != 0 and "missing join token" in " ".join(none.output.split())


def test_no_secret_in_the_output_of_manager_and_agents(tmp_path: Path) -> None:
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    data = tmp_path / "data"
    procs: list[subprocess.Popen] = []
    logs = {name: (tmp_path / f"{name}.log") for name in ("manager", "one", "fleet")}
    try:
        procs.append(subprocess.Popen(
            [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry", "-v"],
            stdout=logs["manager"].open("wb"), stderr=subprocess.STDOUT,
        ))
        assert _wait_for(lambda: httpx.get(url + "/v1/info", verify=verify(data), headers=admin_headers(data)).status_code == 200, 30), "the manager did not start"
        token = (data / "join-token").read_text().strip()
        procs.append(subprocess.Popen(
            [*CORRAL, "agent", "--manager", url, "--token-file", str(data / "join-token"), "--engine", "hollow",
             "--name", "one", "--address", "127.0.0.1", "-v"],
            stdout=logs["one"].open("wb"), stderr=subprocess.STDOUT,
        ))
        procs.append(subprocess.Popen(
            [*CORRAL, "agent", "--manager", url, "--engine", "hollow", "--count", "3", "--name-prefix", "f-",
             "--address", "127.0.0.1", "-v"],
            stdout=logs["fleet"].open("wb"), stderr=subprocess.STDOUT, env={**os.environ, "CORRAL_JOIN_TOKEN": token},
        ))
        assert _wait_for(lambda: len(httpx.get(url + "/v1/nodes", verify=verify(data), headers=admin_headers(data)).json()) == 4, 30), "the agents did not join"
        time.sleep(2.0)  # heartbeats, watches: whatever they log
        for proc in procs[1:]:
            assert token not in " ".join(Path(f"/proc/{proc.pid}/cmdline").read_text().split("\0"))
    finally:
        for proc in reversed(procs):
            stop_process(proc, 10)
    for name, log in logs.items():
        text = log.read_text()
        assert token not in text and "corral-node-" not in text, name
    assert "--token-file" in logs["manager"].read_text()  # it says where the token is instead
