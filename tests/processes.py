"""Stopping the processes a test started: by their PID, never by name."""

import signal
import subprocess
from typing import Any


def stop_process(proc: "subprocess.Popen[Any]", timeout: float = 20) -> None:
    """SIGTERM a process this test started, SIGKILL it if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
