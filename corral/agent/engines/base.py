"""The interface every engine driver implements, and what it reports about a container."""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from corral.agent.engines.frames import Frame, LogLine
from corral.model import FileReference, PublishedPort, Task

if TYPE_CHECKING:
    from corral.agent.clock import Clock
    from corral.agent.networks.engine import EngineNetworks


class EngineError(Exception):
    """The engine could not do what was asked; `permanent` when retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    task_id: str
    running: bool
    exit_code: int | None = None
    error: str = ""
    ports: list[PublishedPort] = field(default_factory=list)
    ip: str = ""  # its address on the engine's network (for probes from outside)


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False  # go on with new lines until the container stops
    tail: int | None = None  # only the last N lines (None: all)
    since: float | None = None  # only lines from then on (epoch seconds)


@dataclass(frozen=True)
class ContainerStats:
    """A running container's resource use, as the engine counts it (the agent's /metrics)."""

    cpu_seconds: float
    memory_working_set: int  # bytes: usage less inactive page cache
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class TaskFile:
    """A secret or config value a task's container sees as a file at `reference.target`."""

    kind: Literal["secret", "config"]
    reference: FileReference
    data: bytes = field(repr=False)  # never in a log line or a traceback


class Attachment(ABC):
    """A command running in a container with its streams attached (engines/docker_attach.py)."""

    @abstractmethod
    async def read(self) -> Frame | None:
        """The next output (stdout only with a tty), None at its end."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Send `data` to the command's stdin (once the previous write drained)."""

    @abstractmethod
    async def close_stdin(self) -> None:
        """The command's stdin is at its end."""

    @abstractmethod
    async def resize(self, rows: int, cols: int) -> None:
        """The terminal's new size (a tty only)."""

    @abstractmethod
    async def exit_code(self) -> int:
        """The command's exit code, once its output ended."""

    @abstractmethod
    async def close(self) -> None:
        """Let go of the streams (the command may still run: its stdin ends)."""


class Engine(ABC):
    """Runs the containers of one node's tasks; every method is safe to call again."""

    takes_files = False  # whether `start` puts secrets and configs in containers (the agent fetches them only then)
    networks: "EngineNetworks | None" = None  # the engine's per-stack networks, if it has real ones

    @property
    def following(self) -> bool:
        """Whether `follow` hears of every change of this agent's containers right now: the agent then lists them
        only when woken (and on a slow resync), else on a fast timer."""
        return False

    async def follow(self, changed: Callable[[], None], clock: "Clock") -> None:
        """Call `changed()` whenever one of this agent's containers may have changed by itself (started, died, gone),
        until cancelled. An engine that cannot tell returns at once (`following` stays False)."""

    def use_registry(self, registry: str, user: str, password: Callable[[], str | None], others: Sequence[str] = ()) -> None:
        """Pull images of the cluster's registry (HOST:PORT) as `user` (the node) with `password()` (its credential).
        `others`: the registries of the other managers (several managers): an image of any of them is pulled from
        the next one when its own does not answer. An engine that pulls nothing ignores it."""

    def use_dns(self, address: str) -> None:
        """Give containers started from now on the resolver at `address` (the node's DNS responder).
        An engine without real containers ignores it."""

    @abstractmethod
    async def list(self) -> list[ContainerInfo]:
        """The containers this agent started (running or not)."""

    @abstractmethod
    async def start(
        self, task: Task, address: str, hosts: Mapping[str, str] | None = None, files: Sequence[TaskFile] = ()
    ) -> ContainerInfo:
        """Create and start the task's container, publishing its ports on `address`; `hosts` go into its
        /etc/hosts; `files` (its secrets and configs) are mounted read-only, never put in its environment."""

    @abstractmethod
    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        """SIGTERM, then SIGKILL after `grace` seconds."""

    @abstractmethod
    async def remove(self, container_id: str) -> None: ...

    async def remove_volume(self, name: str) -> None:
        """Remove this node's named volume `name` (made for a task); gone already is done. EngineError while a
        container uses it. An engine that makes no volumes has nothing to remove."""

    async def exec(self, container_id: str, command: Sequence[str], timeout: float) -> tuple[int, str]:
        """Run `command` in the container: its exit code and output (health checks)."""
        raise EngineError(f"{type(self).__name__} cannot run commands in containers")

    def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[Sequence[LogLine]]:
        """The container's output lines as they are read from the engine (streamed, never gathered whole), in the
        batches the engine's chunks bring."""
        raise EngineError(f"{type(self).__name__} keeps no container logs")

    async def stats(self, container_id: str) -> ContainerStats:
        """The container's resource use now."""
        raise EngineError(f"{type(self).__name__} keeps no container statistics")

    def exec_stream(self, container_id: str, command: Sequence[str]) -> AsyncIterator[Frame | int]:
        """Run `command` in the container: its output as it comes, then its exit code (`corral exec`)."""
        raise EngineError(f"{type(self).__name__} cannot run commands in containers")

    async def exec_attach(self, container_id: str, command: Sequence[str], tty: bool, stdin: bool) -> "Attachment":
        """Start `command` in the container attached both ways: stdin in, output out, a terminal when `tty` (`corral exec -it`)."""
        raise EngineError(f"{type(self).__name__} cannot run commands in containers")

    async def close(self) -> None:
        return None
