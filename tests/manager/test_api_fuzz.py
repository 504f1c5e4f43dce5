"""A schema-driven fuzzer (schemathesis) against a real `corral manager` process (SQLite store, no agent).

Every operation of the OpenAPI document is sent generated requests, valid and
not, plus requests with methods the paths lack; every check schemathesis has
must pass: no 5xx, every status code documented, every body (errors too)
matching its schema, the `Allow` header of a 405 naming the path's methods,
bad input refused. Two runs: the user routes with the admin token the manager
wrote (DATA_DIR/admin-token), the agent routes with the join token (so it
registers nodes too).

Left out: `GET /v1/events`, an endless stream a fuzzer cannot read to its end.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CORRAL = [sys.executable, "-m", "corral.cli.main"]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "15"))  # per operation; ~30 s on 2 cores


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_api_keeps_to_its_openapi_document(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    log = (tmp_path / "manager.log").open("wb")
    manager = subprocess.Popen(
        # Plain HTTP (on loopback): this checks the routes against their document, not the transport; over TLS
        # every agent route would answer 401 for the missing node certificate before its body is read.
        [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry", "--insecure"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (data / "admin-token").exists() and httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert manager.poll() is None and time.monotonic() < deadline, (tmp_path / "manager.log").read_text()
            time.sleep(0.1)
        join, admin = ((data / name).read_text().strip() for name in ("join-token", "admin-token"))
        for token, paths in ((admin, ["--exclude-path-regex", "^/v1/(agent|events)"]), (join, ["--include-path-regex", "^/v1/agent"])):
            fuzz = subprocess.run(
                [
                    str(SCHEMATHESIS), "--no-color", "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
                    "--checks", "all", "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing",
                    *paths, "--request-timeout", "10", "--workers", "1", "--seed", "1",  # 2 workers: ast.parse races in hypothesis (CPython 3.11 "AST constructor recursion depth mismatch")
                    "--header", f"Authorization: Bearer {token}",
                ],
                capture_output=True, text=True, timeout=240, cwd=tmp_path,
            )
            assert fuzz.returncode == 0, fuzz.stdout[-20000:] + fuzz.stderr[-5000:]
        assert manager.poll() is None, "the manager died under the fuzzer"
    finally:
        manager.terminate()
        manager.wait(10)
        log.close()
