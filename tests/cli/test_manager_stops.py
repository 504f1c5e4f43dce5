"""`corral manager` stops on SIGTERM even with a fleet's long polls open (they once kept its loop spinning)."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CORRAL = [sys.executable, "-m", "corral.cli.main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_manager_exits_on_sigterm_with_a_fleet_watching(tmp_path: Path) -> None:
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        manager = subprocess.Popen(
            [*CORRAL, "manager", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{port}", "--no-registry"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        procs.append(manager)
        token_file = tmp_path / "join-token"
        assert _wait_for(token_file.exists, 30), "the manager did not start"
        fleet = subprocess.Popen(
            [*CORRAL, "agent", "--manager", url, "--token", token_file.read_text().strip(), "--engine", "hollow",
             "--count", "20", "--name-prefix", "stop-", "--address", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        procs.append(fleet)
        assert fleet.stdout is not None
        assert "joined" in fleet.stdout.readline(), "the fleet did not join"
        time.sleep(1.0)  # its watch is now a long poll waiting in the manager
        manager.send_signal(signal.SIGTERM)
        assert _wait_for(lambda: manager.poll() is not None, 10), "the manager did not stop within 10 s of SIGTERM"
    finally:
        for proc in reversed(procs):  # by PID, whatever happened
            if proc.poll() is None:
                proc.kill()
                proc.wait()
