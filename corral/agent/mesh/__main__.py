"""Run a mesh alone, with its table on the command line (for benchmarks and trying it out).

    python -m corral.agent.mesh tcp:127.0.0.5:9000=127.0.0.1:32768,127.0.0.1:32769 [--loop uvloop]
        [--shortcut 127.0.0.1:32768=172.17.0.2:8080 ...]

Prints `ready` (and any listener error) once listening; stops on SIGTERM or Ctrl-C.
"""

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from corral.agent.mesh.balancing import STRATEGIES
from corral.agent.mesh.mesh import Mesh
from corral.agent.mesh.settings import MeshSettings
from corral.agent.mesh.table import Backend
from corral.model.errors import InvalidSpec


def parse_route(text: str) -> tuple[tuple[str, int, str], list[tuple[str, int]]]:
    """`tcp:IP:PORT=IP:PORT,IP:PORT` -> ((ip, port, protocol), [(ip, port), ...])."""
    try:
        front, _, back = text.partition("=")
        protocol, address = front.split(":", 1)
        ip, port = address.rsplit(":", 1)
        backends = [(b.rsplit(":", 1)[0], int(b.rsplit(":", 1)[1])) for b in back.split(",") if b]
        return (ip, int(port), protocol), backends
    except ValueError:
        raise InvalidSpec(text, "a route is PROTOCOL:IP:PORT=IP:PORT[,IP:PORT...]") from None


def parse_shortcut(text: str) -> tuple[Backend, Backend]:
    """`IP:PORT=IP:PORT` (published address = the container's own) -> (published, container)."""
    published, _, container = text.partition("=")
    try:
        (front, back) = [Backend(ip, int(port)) for ip, _, port in (a.rpartition(":") for a in (published, container))]
    except ValueError:
        raise InvalidSpec(text, "a shortcut is IP:PORT=IP:PORT (published address = the container's)") from None
    if not front.ip or not back.ip:
        raise InvalidSpec(text, "a shortcut is IP:PORT=IP:PORT (published address = the container's)")
    return front, back


async def serve(routes: list[str], settings: MeshSettings, shortcuts: Sequence[str] = ()) -> int:
    mesh = Mesh(settings)
    mesh.set_shortcuts(dict(parse_shortcut(text) for text in shortcuts))
    errors = await mesh.apply(dict(parse_route(route) for route in routes))
    for message in errors.values():
        print(f"error: {message}", flush=True)
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await mesh.close()
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m corral.agent.mesh", description=__doc__.splitlines()[0])
    parser.add_argument("routes", nargs="+", metavar="PROTOCOL:IP:PORT=IP:PORT[,IP:PORT...]")
    parser.add_argument("--strategy", choices=STRATEGIES, default="round-robin")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--data-path", choices=("userspace", "kernel"), default="userspace")
    parser.add_argument("--cluster", default="corral", help="names the iptables chains (kernel data path)")
    parser.add_argument(
        "--shortcut", action="append", default=[], metavar="IP:PORT=IP:PORT",
        help="a published backend's container address, tried first (what the agent learns from the engine)",
    )
    args = parser.parse_args()
    settings = MeshSettings(strategy=args.strategy, data_path=args.data_path, cluster=args.cluster)
    try:
        if args.loop == "uvloop":
            import uvloop

            return uvloop.run(serve(args.routes, settings, args.shortcut))
        return asyncio.run(serve(args.routes, settings, args.shortcut))
    except InvalidSpec as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
