"""Debian's Firefox (`firefox-esr`), headless, driven over its own WebDriver BiDi: no geckodriver.

Debian packages no geckodriver and nothing here may download one, but Firefox itself speaks WebDriver
BiDi (the W3C protocol, JSON over a websocket) when started with `--remote-debugging-port`: it prints
`WebDriver BiDi listening on ws://HOST:PORT`, and a client opens a session at `/session`. The few commands
the UI tests need (a session that accepts the cluster CA's certificate, navigate, evaluate a script, set
the viewport, take a screenshot) are a handful of messages over the `websockets` library.

The browser runs with a profile of its own in a temporary directory and is stopped by its PID.
"""

import base64
import json
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

# A quiet test profile: no first-run pages, update checks or telemetry (the machine has no internet anyway).
PREFERENCES = {
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class BidiError(Exception):
    """Firefox answered a command with an error."""


class Firefox:
    def __init__(self, binary: str, width: int = 1280, height: int = 800, start_timeout: float = 60.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="corral-firefox-"))
        (self.profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFERENCES.items()))
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--profile", str(self.profile), "--remote-debugging-port", "0", "about:blank"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []  # what the browser printed, for a failure's message
        self._ids = 0
        self._closing = ExitStack()
        try:
            self._socket = self._closing.enter_context(connect(self._address(start_timeout) + "/session", max_size=None, open_timeout=20))
            self.capabilities = self.command("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})["capabilities"]
            self.context = self.command("browsingContext.getTree", {})["contexts"][0]["context"]
            self.set_viewport(width, height)
        except BaseException:
            self.close()
            raise

    def _address(self, timeout: float) -> str:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:  # the browser's output, read until it ends (it must not fill the pipe)
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"firefox exited ({self.proc.wait()}) before serving WebDriver BiDi:\n{''.join(self.output)}")
            self.output.append(line)
            found = LISTENING.search(line)
            if found:
                return found.group(1)
        raise RuntimeError(f"firefox served no WebDriver BiDi within {timeout:g}s:\n{''.join(self.output)}")

    @property
    def socket(self) -> ClientConnection:
        return self._socket

    def command(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> Any:
        """Send one command and return its result (events that arrive meanwhile are dropped: none is subscribed)."""
        self._ids += 1
        self.socket.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != self._ids:
                continue
            if message.get("type") == "error":
                raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    def get(self, url: str) -> None:
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def run(self, body: str) -> Any:
        """Run a function body (`return ...`) in the page; its result through JSON (as Selenium's execute_script)."""
        expression = f"JSON.stringify((() => {{ {body} }})() ?? null)"
        result = self.command("script.evaluate", {"expression": expression, "target": {"context": self.context}, "awaitPromise": True})
        if result.get("type") == "exception":
            raise BidiError(f"the script threw: {result['exceptionDetails'].get('text')}")
        return json.loads(result["result"]["value"])

    @property
    def url(self) -> str:
        return str(self.run("return location.href"))

    def set_viewport(self, width: int, height: int) -> None:
        self.command("browsingContext.setViewport", {"context": self.context, "viewport": {"width": width, "height": height}})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.command("browsingContext.captureScreenshot", {"context": self.context})["data"]))

    def close(self) -> None:
        """End the session, stop the browser by its PID, remove its profile."""
        socket = getattr(self, "_socket", None)
        if socket is not None:
            try:
                self.command("session.end", {}, timeout=5)
            except Exception:  # noqa: BLE001 - the browser may be gone already; it is stopped below either way
                pass
        self._closing.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
