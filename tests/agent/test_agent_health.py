"""agent.health: the healthy/unhealthy rule, the monitor's schedule, and the probes against real sockets."""

import asyncio
import socket
import ssl

import pytest

from corral.agent.clock import FakeClock
from corral.agent.health import HealthMonitor, HealthState, HealthStatus, ProbeResult
from corral.agent.probes import http_probe, tcp_probe
from corral.model.service import HealthCheck

OK, FAIL = ProbeResult(True, "ok"), ProbeResult(False, "connection refused")


def state(**timing: float) -> HealthState:
    return HealthState(HealthCheck(tcp={"port": 80}, **timing), started_at=0.0)


def test_starting_until_the_first_pass() -> None:
    health = state(retries=3)
    assert health.status == HealthStatus.starting
    assert health.record(FAIL, 1.0) is False and health.status == HealthStatus.starting
    assert health.record(OK, 2.0) is True and health.status == HealthStatus.healthy


def test_unhealthy_after_retries_failures_in_a_row() -> None:
    health = state(retries=3)
    health.record(OK, 0.0)
    health.record(FAIL, 1.0)
    health.record(FAIL, 2.0)
    health.record(OK, 3.0)  # a pass resets the count
    health.record(FAIL, 4.0)
    health.record(FAIL, 5.0)
    assert health.status == HealthStatus.healthy
    assert health.record(FAIL, 6.0) is True
    assert health.status == HealthStatus.unhealthy
    assert health.describe() == "health check failed 3 times in a row: connection refused"


def test_failures_in_the_start_period_do_not_count() -> None:
    health = state(retries=1, start_period=10.0, start_interval=0.5, interval=30.0)
    for t in range(9):
        health.record(FAIL, float(t))
    assert health.status == HealthStatus.starting
    assert health.next_delay(9.0) == 0.5  # probed often while starting up
    health.record(FAIL, 11.0)
    assert health.status == HealthStatus.unhealthy
    assert health.next_delay(11.0) == 30.0


def test_a_pass_in_the_start_period_ends_it() -> None:
    health = state(retries=1, start_period=10.0, start_interval=0.5, interval=30.0)
    health.record(OK, 1.0)
    assert health.next_delay(1.0) == 30.0
    health.record(FAIL, 2.0)  # healthy once: failures count now
    assert health.status == HealthStatus.unhealthy


async def test_monitor_probes_on_its_schedule_and_reports_changes() -> None:
    clock = FakeClock()
    results = [OK, FAIL, FAIL]
    probes: list[float] = []
    changes: list[HealthStatus] = []

    async def probe() -> ProbeResult:
        probes.append(clock.now())
        return results.pop(0) if results else FAIL

    monitor = HealthMonitor("c1", HealthCheck(tcp={"port": 80}, interval=5.0, retries=2), probe, lambda: changes.append(monitor.status), clock)
    began = clock.now()
    monitor.start()
    try:
        await clock.sleeping(1)  # the first probe comes at once; then the monitor waits an interval
        assert changes == [HealthStatus.healthy]
        clock.advance(5.0)
        await clock.sleeping(1)  # one failure: not yet unhealthy
        assert changes == [HealthStatus.healthy] and monitor.status == HealthStatus.healthy
        clock.advance(5.0)
        await clock.sleeping(1)
        assert changes == [HealthStatus.healthy, HealthStatus.unhealthy]
        assert monitor.view().reason.startswith("health check failed 2 times in a row")
        assert probes == [began, began + 5.0, began + 10.0]
    finally:
        monitor.cancel()


async def test_monitor_counts_a_slow_probe_as_failed() -> None:
    clock = FakeClock()
    changed = asyncio.Event()
    never = asyncio.Event()

    async def hang() -> ProbeResult:
        await never.wait()
        return OK

    monitor = HealthMonitor("c1", HealthCheck(tcp={"port": 80}, interval=1.0, timeout=3.0, retries=1), hang, changed.set, clock)
    monitor.start()
    try:
        await clock.sleeping(1)  # the probe's timeout runs on the clock
        clock.advance(2.9)
        await asyncio.sleep(0)
        assert not changed.is_set()
        clock.advance(0.1)
        await asyncio.wait_for(changed.wait(), 5)
        assert monitor.view().reason == "health check failed 1 times in a row: timed out after 3s"
    finally:
        monitor.cancel()


@pytest.fixture
def listening() -> tuple[str, int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_tcp_probe_against_real_sockets(listening: tuple[str, int]) -> None:
    assert (await tcp_probe(*listening)).ok
    refused = await tcp_probe("127.0.0.1", closed_port())
    assert not refused.ok and "refused" in refused.output.lower()


async def test_http_probe_wants_2xx_or_3xx() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode()
        status = "200 OK" if " /ok " in request else "503 Service Unavailable"
        writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await http_probe(f"http://127.0.0.1:{port}/ok", 2)).ok
        bad = await http_probe(f"http://127.0.0.1:{port}/broken", 2)
        assert not bad.ok and "HTTP 503" in bad.output
        gone = await http_probe(f"http://127.0.0.1:{closed_port()}/", 2)
        assert not gone.ok
    finally:
        server.close()
        await server.wait_closed()


async def test_http_probe_loads_no_ca_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loading a CA bundle costs ~25 ms of CPU: at every probe of every task, that is what kept an idle agent busy.
    loaded: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loaded.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(3):
            assert (await http_probe(f"http://127.0.0.1:{port}/", 2)).ok
    finally:
        server.close()
        await server.wait_closed()
    assert loaded == []


async def test_http_probe_sends_path_query_and_host_and_judges_the_status_line() -> None:
    seen: list[bytes] = []
    answers = [b"HTTP/1.0 302 Found\r\n\r\n", b"SSH-2.0-OpenSSH\r\n", b""]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        answer = answers.pop(0)
        if answer:
            writer.write(answer)
            await writer.drain()
            writer.close()
        else:
            await asyncio.sleep(5)  # never answers

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await http_probe(f"http://127.0.0.1:{port}/health?deep=1", 2)).ok  # 3xx passes, not followed
        assert seen[0].startswith(b"GET /health?deep=1 HTTP/1.1\r\n") and f"Host: 127.0.0.1:{port}\r\n".encode() in seen[0]
        odd = await http_probe(f"http://127.0.0.1:{port}/", 2)
        assert not odd.ok and "not an HTTP answer" in odd.output
        slow = await http_probe(f"http://127.0.0.1:{port}/", 0.2)
        assert not slow.ok and "timed out after 0.2s" in slow.output
    finally:
        server.close()
        await server.wait_closed()
