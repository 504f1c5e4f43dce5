"""A node agent's process without the command line: `corral agent` checks its options, then becomes this.

`corral agent` is a typer command of corral.cli.daemons, a module it shares with `manager` and `up`. Once the options
are checked the command line has nothing left to do, but its modules (typer and click, the other commands' options,
the CLI's helpers: about 3.4 MiB) would stay in the agent's memory for as long as it runs. So the command writes the
agent's settings into a pipe and `exec`s `python -m corral.agent.process --settings-fd N`: the same process (its id,
its signals, what a supervisor or a test started), a fresh interpreter that loads only the agent. The settings go
through a pipe, not the command line, because they hold the join token (`ps` shows every user the command line).

The agent runs as `corral agent` did in process: it joins, prints one line, serves until SIGTERM or SIGINT, and stops
leaving its containers running. A refusal or a fault (`OSError`, a `CorralError`) is `error: ...` on stderr and exit 1.
"""

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, NoReturn

from corral.agent.settings import AgentSettings
from corral.model import Resources

# A pipe holds this much without a reader; the settings (a token, a few names and labels) are far smaller.
PIPE_ROOM = 60_000


def encode(settings: AgentSettings, hollow_delay: tuple[float, float], secrets_dir: Path, verbose: bool) -> bytes:
    """The agent's settings as the process reads them."""
    data: dict[str, Any] = {f.name: getattr(settings, f.name) for f in fields(settings)}
    data["resources"] = settings.resources.model_dump(mode="json") if settings.resources else None
    data["state_dir"] = str(settings.state_dir) if settings.state_dir else None
    data["dns_upstreams"] = list(settings.dns_upstreams) if settings.dns_upstreams is not None else None
    return json.dumps(
        {"settings": data, "hollow_delay": list(hollow_delay), "secrets_dir": str(secrets_dir), "verbose": verbose}
    ).encode()


def decode(payload: bytes) -> tuple[AgentSettings, tuple[float, float], Path, bool]:
    """`encode`'s inverse."""
    document = json.loads(payload)
    data = dict(document["settings"])
    settings = AgentSettings(**{key: value for key, value in data.items() if key not in ("resources", "state_dir", "dns_upstreams")})
    settings = replace(
        settings,
        resources=Resources.model_validate(data["resources"]) if data["resources"] else None,
        state_dir=Path(data["state_dir"]) if data["state_dir"] else None,
        dns_upstreams=tuple(data["dns_upstreams"]) if data["dns_upstreams"] is not None else None,
    )
    low, high = document["hollow_delay"]
    return settings, (float(low), float(high)), Path(document["secrets_dir"]), bool(document["verbose"])


def become_agent(payload: bytes) -> NoReturn:
    """Replace this process with the agent's own (os.execv), handing it `payload` (from `encode`) through a pipe."""
    if len(payload) > PIPE_ROOM:
        raise ValueError(f"agent settings of {len(payload)} bytes do not fit a pipe")
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "corral.agent.process", "--settings-fd", str(read_end)])


def _read(fd: int) -> bytes:
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


async def _serve(settings: AgentSettings, hollow_delay: tuple[float, float], secrets_dir: Path) -> None:
    from corral.agent.daemon import Agent, EngineFactory
    from corral.agent.engines.hollow import HollowTiming
    from corral.client import ApiError

    node = Agent(settings, EngineFactory(settings.engine, HollowTiming(*hollow_delay), secrets_dir))
    try:
        await node.start()
    except ApiError as err:
        await node.client.close()
        _fail(f"the manager refused node {settings.name}: {err}" if err.status else str(err))
    print(f"corral agent {settings.name} ({settings.address}) joined {settings.manager_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await node.stop(remove_containers=False)


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "--settings-fd" or not argv[1].isdigit():
        _fail("usage: python -m corral.agent.process --settings-fd N (`corral agent` runs it)")
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]  # as the `corral` command: httpcore's fallback
    settings, hollow_delay, secrets_dir, verbose = decode(_read(int(argv[1])))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop

    from corral.model.errors import CorralError

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(settings, hollow_delay, secrets_dir))
    except (OSError, CorralError) as err:  # a port taken, an engine that does not answer...
        _fail(str(err))


if __name__ == "__main__":
    main(sys.argv[1:])
