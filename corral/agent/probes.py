"""The three kinds of health probe: a command in the container, an HTTP GET, a TCP connect.

The HTTP and TCP probes reach the container from outside, at its address on
the engine's network, so they need nothing inside the image.
"""

import asyncio
import os

import httpx

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
    try:
        # The URL is always plain http: verify=False keeps httpx from loading the CA bundle, ~25 ms of CPU per probe.
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, verify=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as err:
        return ProbeResult(False, f"GET {url}: {err or type(err).__name__}")
    ok = 200 <= response.status_code < 400
    return ProbeResult(ok, f"GET {url}: HTTP {response.status_code}")


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
