"""The three kinds of health probe: a command in the container, an HTTP GET, a TCP connect.

The HTTP and TCP probes reach the container from outside, at its address on
the engine's network, so they need nothing inside the image.
"""

import asyncio
import os
from urllib.parse import urlsplit

from corral.agent.engines.base import ContainerInfo, Engine
from corral.agent.health import Probe, ProbeResult
from corral.model.service import HealthCheck


def probe_for(check: HealthCheck, engine: Engine, container: ContainerInfo) -> Probe:
    """The probe `check` asks for, aimed at `container`."""
    if check.http is not None:
        url = f"http://{_host(container)}:{check.http.port}{check.http.path}"
        return lambda: http_probe(url, check.timeout)
    if check.tcp is not None:
        host, port = _host(container), check.tcp.port
        return lambda: tcp_probe(host, port)
    assert check.test is not None
    command = check.test[1:] if check.test[0] == "CMD" else ["/bin/sh", "-c", check.test[1]]
    return lambda: exec_probe(engine, container.id, command, check.timeout)


def _host(container: ContainerInfo) -> str:
    return container.ip or "127.0.0.1"


async def http_probe(url: str, timeout: float) -> ProbeResult:
    """GET `url` (always plain http) on a connection of its own; a 2xx or 3xx status passes (redirects not followed).

    Spoken over asyncio streams rather than with an httpx client: a client per probe cost ~2.5 ms of CPU (~0.3 ms
    this way), and with 20 replicas probed every 5 s that was 1% of a core for an idle agent."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: corral-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request.encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return ProbeResult(False, f"GET {url}: timed out after {timeout:g}s")
    except OSError as err:
        reason = os.strerror(err.errno).lower() if err.errno else (str(err) or type(err).__name__)
        return ProbeResult(False, f"GET {url}: {reason}")
    finally:
        if writer is not None:
            writer.close()
    version, _, rest = status_line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        return ProbeResult(False, f"GET {url}: not an HTTP answer: {status_line[:80]!r}")
    ok = 200 <= int(code) < 400
    return ProbeResult(ok, f"GET {url}: HTTP {code}")


async def tcp_probe(host: str, port: int) -> ProbeResult:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError as err:
        reason = os.strerror(err.errno).lower() if err.errno else str(err)
        return ProbeResult(False, f"connect {host}:{port}: {reason}")
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ProbeResult(True, f"connect {host}:{port}: ok")


async def exec_probe(engine: Engine, container_id: str, command: list[str], timeout: float) -> ProbeResult:
    code, output = await engine.exec(container_id, command, timeout)
    return ProbeResult(code == 0, output if output.strip() else f"exit code {code}")
