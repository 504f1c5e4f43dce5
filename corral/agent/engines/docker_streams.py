"""Logs and command output of Docker containers, streamed over the engine's Unix socket without buffering.

The docker SDK reads streams with blocking calls (a thread per stream) and
hides which of stdout and stderr a log frame came from; this module speaks
the Engine API over its socket with httpx instead: async, one chunk at a
time, frames decoded by `frames.py`. Nothing is read from the engine until
the consumer asks for more, so a slow reader slows the engine's sender
(back-pressure) and no process holds more than a chunk.
"""

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx

from corral.agent.engines.base import ContainerStats, EngineError, LogOptions
from corral.agent.engines.docker_api import BASE, engine_error, engine_socket
from corral.agent.engines.frames import Frame, FrameDecoder, LineSplitter, LogLine


class DockerStreams:
    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or engine_socket()
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.socket_path, verify=False), base_url=BASE,  # no TLS: no CA bundle
            timeout=httpx.Timeout(30, read=None),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[Sequence[LogLine]]:
        """The container's log lines, stdout and stderr apart, each with the engine's timestamp: the lines each chunk
        from the engine completes, together (one write per chunk downstream, not one per line)."""
        params: dict[str, Any] = {
            "stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(options.follow),
            "tail": "all" if options.tail is None else str(options.tail),
        }
        if options.since is not None:
            params["since"] = f"{options.since:.9f}"
        splitter = LineSplitter()
        async for frames in self._chunks("GET", f"/containers/{container_id}/logs", params=params):
            lines = [line for frame in frames for line in splitter.feed(frame)]
            if lines:
                yield lines
        rest = splitter.flush()
        if rest:
            yield rest

    async def exec(self, container_id: str, command: Sequence[str]) -> AsyncIterator[Frame | int]:
        """Run `command` in the container: its output frames as they come, then its exit code."""
        created = await self._call(
            "POST", f"/containers/{container_id}/exec",
            {"AttachStdout": True, "AttachStderr": True, "AttachStdin": False, "Tty": False, "Cmd": list(command)},
        )
        exec_id = str(created["Id"])
        async for frame in self._frames("POST", f"/exec/{exec_id}/start", json={"Detach": False, "Tty": False}):
            yield frame
        inspected = await self._call("GET", f"/exec/{exec_id}/json")
        code = inspected.get("ExitCode")
        yield int(code) if code is not None else -1

    async def stats(self, container_id: str) -> ContainerStats:
        """One sample of the container's resource use (`one-shot`: no wait for a second CPU sample)."""
        return stats_of(await self._call("GET", f"/containers/{container_id}/stats?stream=false&one-shot=true"))

    async def events(self, filters: dict[str, list[str]], opened: Callable[[], None]) -> AsyncIterator[str]:
        """The engine's events that pass `filters`, one JSON line each, as they happen (never ends by itself);
        `opened()` once the engine has accepted the subscription (every later event will come)."""
        try:
            async with self._http.stream("GET", "/events", params={"filters": json.dumps(filters)}) as response:
                if response.status_code >= 400:
                    raise engine_error(response.status_code, await response.aread())
                opened()
                async for line in response.aiter_lines():
                    if line.strip():
                        yield line
        except httpx.TransportError as err:
            raise EngineError(f"lost the Docker engine's events: {err or type(err).__name__}") from err


    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One Engine API call: its JSON answer (None when it has no body); EngineError when refused."""
        return await self._call(method, path, body, params)

    async def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as err:
            raise EngineError(f"cannot reach the Docker engine: {err or type(err).__name__}") from err
        if response.status_code >= 400:
            raise engine_error(response.status_code, response.content)
        return response.json() if response.content else None

    async def _frames(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[Frame]:
        async for frames in self._chunks(method, path, **kwargs):
            for frame in frames:
                yield frame

    async def _chunks(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[list[Frame]]:
        """The frames each chunk read from the engine completes."""
        decoder = FrameDecoder()
        try:
            async with self._http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    raise engine_error(response.status_code, await response.aread())
                async for chunk in response.aiter_raw():
                    yield decoder.feed(chunk)
        except httpx.TransportError as err:
            raise EngineError(f"lost the Docker engine's stream: {err or type(err).__name__}") from err


def stats_of(raw: dict[str, Any]) -> ContainerStats:
    """The figures of one Docker stats sample (cgroup v1 or v2)."""
    memory = raw.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    inactive = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    networks = (raw.get("networks") or {}).values()
    return ContainerStats(
        cpu_seconds=((raw.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0) / 1e9,
        memory_working_set=max(0, int(memory.get("usage", 0)) - int(inactive)),
        rx_bytes=sum(int(n.get("rx_bytes", 0)) for n in networks),
        tx_bytes=sum(int(n.get("tx_bytes", 0)) for n in networks),
    )

