"""The Docker driver: the Docker Engine API through the docker SDK, in a thread pool.

The agent's containers are listed with the engine's plain listing (labels, state, ports and addresses in one call,
no inspect per container; a stopped one is inspected once for its exit code and error, then remembered), and the
agent hears of their changes from the engine's event stream (docker_events.py) rather than listing every second.

A task becomes one container named SERVICE.SLOT.TASKID, labelled with its
task, service, stack, node and cluster, limited by the service's resource
limits, restart policy "no" (corral decides about restarts, not Docker), and
its ports published on the node's address. Its secrets and configs are
files on the host's tmpfs (engines/files.py), bind-mounted read-only: never
in its environment, never in `docker inspect` beyond the host path. Its named
volumes are created on first use, labelled as corral's (cluster, node, stack,
service, slot, volume) and never removed with the container
(`remove_volume` is asked for explicitly, see agent/volumes.py).
"""

import asyncio
import builtins
import logging
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

if "requests" not in sys.modules:
    # The SDK's requests guesses the charset of a body that names none with charset_normalizer: 2.4 MiB of an agent's
    # memory for something the SDK never asks (the engine answers JSON, which requests decodes as UTF-8). Marked absent
    # before requests loads, it takes its documented fallback (UTF-8), warning once that it has no detector.
    sys.modules.setdefault("charset_normalizer", None)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Unable to find acceptable character detection dependency")
        import requests  # noqa: F401

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from corral.agent import labels
from corral.agent.clock import Clock
from corral.agent.engines.base import Attachment, ContainerInfo, ContainerStats, Engine, EngineError, LogOptions, TaskFile
from corral.agent.engines.docker_attach import attach
from corral.agent.engines.docker_events import EventFollower, event_container, event_filters
from corral.agent.engines.docker_options import create_options
from corral.agent.engines.docker_streams import DockerStreams
from corral.agent.engines.frames import Frame, LogLine
from corral.agent.engines.files import DEFAULT_ROOT, TaskFiles
from corral.agent.engines.platforms import check_platform
from corral.agent.networks.engine import EngineNetworks, NetworkError
from corral.model import PublishedPort, Task
from corral.model.volume import volume_name

log = logging.getLogger(__name__)

T = TypeVar("T")
log = logging.getLogger(__name__)
RUNNING_STATES = ("running", "restarting", "paused")  # the listing's State of a container whose process lives


class DockerEngine(Engine):
    takes_files = True

    def __init__(
        self, cluster_id: str, node: str, client: docker.DockerClient | None = None, files_root: Path = DEFAULT_ROOT
    ) -> None:
        self.cluster_id = cluster_id
        self.node = node
        self._client = client or docker.from_env(timeout=120)
        self.files = TaskFiles(files_root, cluster_id, node)
        self.networks: EngineNetworks = EngineNetworks(cluster_id, self._client)
        self.dns = ""
        self._starting: set[str] = set()  # tasks whose files are written but whose container may not be listed yet
        self._registry: tuple[str, str, Callable[[], str | None]] | None = None
        self._registries: tuple[str, ...] = ()
        self._platform: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"docker-{node}")
        self._streams: DockerStreams | None = None  # logs and exec output, async over the engine's socket
        self._events: EventFollower | None = None
        self._stopped: dict[tuple[str, str], ContainerInfo] = {}  # (id, listed status) -> a stopped container, inspected
        self._named: set[str] = set()  # containers an engine event named since the last listing: inspected at the next

    def _streamer(self) -> DockerStreams:
        if self._streams is None:
            self._streams = DockerStreams()
        return self._streams

    def logs(self, container_id: str, options: LogOptions) -> AsyncIterator[Sequence[LogLine]]:
        return self._streamer().logs(container_id, options)

    def exec_stream(self, container_id: str, command: Sequence[str]) -> AsyncIterator[Frame | int]:
        return self._streamer().exec(container_id, command)

    async def stats(self, container_id: str) -> ContainerStats:
        return await self._streamer().stats(container_id)

    async def exec_attach(self, container_id: str, command: Sequence[str], tty: bool, stdin: bool) -> Attachment:
        return await attach(self._streamer(), container_id, command, tty, stdin)

    @property
    def following(self) -> bool:
        return self._events is not None and self._events.live

    async def follow(self, changed: Callable[[], None], clock: Clock) -> None:
        try:
            streams = self._streamer()
        except EngineError as err:  # DOCKER_HOST over TCP: no events, the agent lists on its timer
            log.info("node %s: no engine events (%s): containers are listed on a timer", self.node, err)
            return
        filters = event_filters(self.cluster_id, self.node)

        async def events(opened: Callable[[], None]) -> AsyncIterator[str]:
            async for line in streams.events(filters, opened):
                self._named.add(event_container(line))
                yield line

        self._events = EventFollower(events, clock)
        await self._events.run(changed)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def list(self) -> list[ContainerInfo]:
        starting = set(self._starting)  # before listing: a start that ends meanwhile has a container the list may miss
        named, self._named = self._named, set()
        try:
            found = await self._run(self._list_sync, named)
        except docker.errors.DockerException as err:
            raise EngineError(f"cannot list containers: {err}") from err
        keep = {info.task_id for info in found} | starting | self._starting
        await self._run(self.files.sweep, keep)  # the files of containers removed while the agent was away
        return found

    def _list_sync(self, named: set[str]) -> "builtins.list[ContainerInfo]":
        """One listing call; a stopped container is inspected (exit code, error, OOM) once per status it shows.

        The listing is a snapshot the engine updates a moment after it announces an event (a container that died
        can still show `running`), so the containers an event `named` are inspected, which waits for the engine."""
        summaries = self._client.api.containers(all=True, filters={"label": labels.ownership_filter(self.cluster_id, self.node)})
        found: builtins.list[ContainerInfo] = []
        stopped: dict[tuple[str, str], ContainerInfo] = {}
        for summary in summaries:
            if summary["Id"] in named:
                try:
                    found.append(_inspected(self._client.api.inspect_container(summary["Id"])))
                except docker.errors.NotFound:
                    pass  # removed
                continue
            if summary.get("State") in RUNNING_STATES:
                found.append(_listed(summary))
                continue
            key = (str(summary["Id"]), str(summary.get("Status", "")).partition(")")[0])  # "Exited (137", "Created"
            info = self._stopped.get(key)
            if info is None:
                try:
                    info = _inspected(self._client.api.inspect_container(summary["Id"]))
                except docker.errors.NotFound:
                    continue  # removed since the listing
            stopped[key] = info
            found.append(info)
        self._stopped = stopped
        return found

    async def start(
        self, task: Task, address: str, hosts: Mapping[str, str] | None = None, files: Sequence[TaskFile] = ()
    ) -> ContainerInfo:
        self._starting.add(task.id)
        try:
            return await self._run(self._start_sync, task, address, dict(hosts or {}), tuple(files))
        finally:
            self._starting.discard(task.id)

    def _start_sync(self, task: Task, address: str, hosts: dict[str, str], files: Sequence[TaskFile]) -> ContainerInfo:
        spec = task.spec
        if spec.container.platform:
            check_platform(spec.container.platform, self._engine_platform())
        exposed = self._ensure_image(spec.image, spec.container.platform)
        slot = str(task.slot) if task.slot is not None else (task.node or "")
        container_labels = {
            **spec.labels,
            labels.TASK: task.id,
            labels.SERVICE: task.service,
            labels.STACK: task.stack,
            labels.NODE: self.node,
            labels.CLUSTER: self.cluster_id,
            labels.SLOT: slot,
        }
        ports: dict[str, tuple[str, int | None]] = {}
        for port in spec.ports:
            host_port = port.published if port.mode == "host" else None
            ports[f"{port.target}/{port.protocol}"] = (address, host_port)
        for key in exposed:  # the image's EXPOSE: published too, so its service's VIP reaches them
            ports.setdefault(key, (address, None))
        attachments = spec.attached_networks()
        try:
            network_ids = [self.networks.ensure(attachment) for attachment in attachments]
        except NetworkError as err:
            raise EngineError(str(err)) from err
        options: dict[str, Any] = {
            "name": f"{task.service}.{slot}.{task.id}",
            "labels": container_labels,
            "environment": spec.environment,
            "ports": ports,
            "detach": True,
            "restart_policy": {"Name": "no"},
            **create_options(spec.container, hosts),
            "network": network_ids[0],
        }
        if self.dns:  # the node's DNS responder first (service names), then the service's own dns: servers
            options["dns"] = [self.dns, *options.get("dns", [])]
        if spec.command is not None:
            options["command"] = spec.command
        if spec.entrypoint is not None:
            options["entrypoint"] = spec.entrypoint
        if spec.limits.cpus:
            options["nano_cpus"] = int(spec.limits.cpus * 1e9)
        if spec.limits.memory:
            options["mem_limit"] = spec.limits.memory
        if spec.reservations.memory:
            options["mem_reservation"] = spec.reservations.memory
        mounts = self._volume_mounts(task, slot)
        if files:
            written = self.files.write(task.id, files)
            mounts += [Mount(f.reference.target, str(path), type="bind", read_only=True) for path, f in written]
        if mounts:
            options["mounts"] = mounts
        try:
            container = self._client.containers.create(spec.image, **options)
        except docker.errors.APIError as err:
            if err.status_code == 409:  # created before a crash: adopt it
                container = self._client.containers.get(options["name"])
            else:
                self.files.remove(task.id)
                raise EngineError(f"cannot create container: {err.explanation or err}", permanent=err.status_code == 400) from err
        try:
            self._connect(container, network_ids[1:])
            container.start()
        except docker.errors.APIError as err:
            raise EngineError(f"cannot start container: {err.explanation or err}") from err
        container.reload()
        return _info(container)

    def _volume_mounts(self, task: Task, slot: str) -> "builtins.list[Mount]":
        """The task's volumes, bind mounts and tmpfs as Docker mounts; its named volumes created if missing."""
        mounts: builtins.list[Mount] = []
        for mount in task.spec.volumes:
            if mount.type == "tmpfs":
                mounts.append(Mount(mount.target, None, type="tmpfs", read_only=mount.read_only, tmpfs_size=mount.tmpfs_size))
            elif mount.type == "bind":
                mounts.append(Mount(mount.target, mount.source, type="bind", read_only=mount.read_only))
            else:
                name = volume_name(mount, task.slot, self.node)
                if mount.external:
                    self._external_volume(name)
                else:
                    self._ensure_volume(name, task, slot, mount.source, mount.driver_opts, mount.labels)
                mounts.append(Mount(mount.target, name, type="volume", read_only=mount.read_only, no_copy=mount.nocopy))
        return mounts

    def _ensure_volume(
        self, name: str, task: Task, slot: str, source: str, driver_opts: dict[str, str], extra: dict[str, str]
    ) -> None:
        try:
            found = self._client.volumes.get(name)
        except docker.errors.NotFound:
            found = None
        except docker.errors.APIError as err:
            raise EngineError(f"cannot inspect volume {name}: {err.explanation or err}") from err
        if found is not None:
            if (found.attrs.get("Labels") or {}).get(labels.CLUSTER) != self.cluster_id:
                raise EngineError(f"volume {name} exists on node {self.node} but is not this cluster's: rename or remove it", permanent=True)
            return
        volume_labels = {
            **extra, labels.CLUSTER: self.cluster_id, labels.NODE: self.node, labels.STACK: task.stack,
            labels.SERVICE: task.service, labels.SLOT: slot, labels.VOLUME: source,
        }
        try:
            self._client.volumes.create(name, driver="local", driver_opts=driver_opts or None, labels=volume_labels)
        except docker.errors.APIError as err:
            raise EngineError(f"cannot create volume {name}: {err.explanation or err}") from err

    def _external_volume(self, name: str) -> None:
        try:
            self._client.volumes.get(name)
        except docker.errors.NotFound as err:  # it may be created later: retried with back-off
            raise EngineError(f"external volume {name} not found on node {self.node}: create it there first (docker volume create)") from err
        except docker.errors.APIError as err:
            raise EngineError(f"cannot inspect volume {name}: {err.explanation or err}") from err

    async def remove_volume(self, name: str) -> None:
        def remove_sync() -> None:
            try:
                volume = self._client.volumes.get(name)
            except docker.errors.NotFound:
                return
            owner = volume.attrs.get("Labels") or {}
            if owner.get(labels.CLUSTER) != self.cluster_id:
                raise EngineError(f"volume {name} is not this cluster's: left alone", permanent=True)
            if owner.get(labels.NODE) != self.node:
                return  # nodes sharing one engine (a local cluster): the node that made it removes it
            volume.remove()

        try:
            await self._run(remove_sync)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            raise EngineError(f"cannot remove volume {name}: {err.explanation or err}") from err

    def use_dns(self, address: str) -> None:
        self.dns = address

    def use_registry(self, registry: str, user: str, password: Callable[[], str | None], others: Sequence[str] = ()) -> None:
        self._registry = (registry, user, password)
        self._registries = (registry, *(other for other in others if other != registry))

    def _auth_for(self, repository: str) -> dict[str, str] | None:
        """The node's credentials for an image of the cluster's registries; none for any other (never sent elsewhere)."""
        if self._registry is None or repository.split("/", 1)[0] not in self._registries:
            return None
        secret = self._registry[2]()
        return {"username": self._registry[1], "password": secret} if secret else None

    def _engine_platform(self) -> str:
        """OS/ARCH of the engine (asked once): what a service's `platform` is checked against."""
        if self._platform is None:
            try:
                info = self._client.info()
            except docker.errors.APIError as err:
                raise EngineError(f"cannot ask the engine for its platform: {err.explanation or err}") from err
            self._platform = f"{info.get('OSType', 'linux')}/{info.get('Architecture', '')}"
        return self._platform

    def _connect(self, container: Container, network_ids: Sequence[str]) -> None:
        """Join the container's other networks (before it starts: an adopted one may have them already)."""
        networks = (container.attrs.get("NetworkSettings", {}).get("Networks") or {}).values()
        joined = {n.get("NetworkID") for n in networks}
        for network_id in network_ids:
            if network_id not in joined:
                self._client.api.connect_container_to_network(container.id or "", network_id)

    def _ensure_image(self, image: str, platform: str | None = None) -> tuple[str, ...]:
        """Pull the image if missing; its EXPOSEd ports (`8080/tcp`)."""
        try:
            return _exposed(self._client.images.get(image).attrs)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as err:
            raise EngineError(f"cannot inspect image {image}: {err.explanation or err}") from err
        repository, tag = _split_reference(image)
        candidates = pull_candidates(repository, self._registries) if tag is not None else [repository]
        for i, candidate in enumerate(candidates):  # the image's own registry first, then another manager's
            last = i == len(candidates) - 1
            try:
                pulled = self._client.images.pull(candidate, tag=tag, auth_config=self._auth_for(candidate), platform=platform)
            except docker.errors.NotFound as err:  # it may be pushed later: retried with back-off
                if last:
                    raise EngineError(f"image {image} not found in registry") from err
                continue
            except docker.errors.APIError as err:
                if last:
                    raise EngineError(f"cannot pull image {image}: {err.explanation or err}") from err
                log.info("cannot pull %s from %s (%s): trying another manager's registry", image, candidate, err.explanation or err)
                continue
            if candidate != repository:
                pulled.tag(repository, tag)  # the container is created from the image's own name
            return _exposed(pulled.attrs)
        raise EngineError(f"cannot pull image {image}")

    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        def stop_sync() -> ContainerInfo:
            container = self._client.containers.get(container_id)
            container.stop(timeout=max(0, int(round(grace))))
            container.reload()
            return _info(container)

        try:
            return await self._run(stop_sync)
        except docker.errors.NotFound:
            return ContainerInfo(id=container_id, task_id="", running=False, error="container gone")
        except docker.errors.APIError as err:
            raise EngineError(f"cannot stop container {container_id[:12]}: {err.explanation or err}") from err

    async def exec(self, container_id: str, command: Sequence[str], timeout: float) -> tuple[int, str]:
        def exec_sync() -> tuple[int, str]:
            created = self._client.api.exec_create(container_id, command, stdout=True, stderr=True)
            output = self._client.api.exec_start(created["Id"])
            code = self._client.api.exec_inspect(created["Id"]).get("ExitCode")
            text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
            return (code if code is not None else -1), text

        try:
            return await asyncio.wait_for(self._run(exec_sync), timeout)
        except TimeoutError:
            return -1, f"timed out after {timeout:g}s"
        except docker.errors.APIError as err:
            return -1, f"cannot run {command[0]}: {err.explanation or err}"

    async def remove(self, container_id: str) -> None:
        def remove_sync() -> None:
            task_id = (self._client.api.inspect_container(container_id).get("Config", {}).get("Labels") or {}).get(labels.TASK, "")
            self._client.api.remove_container(container_id, force=True)
            self.files.remove(task_id)  # its secrets and configs go with it

        try:
            await self._run(remove_sync)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            if err.status_code == 409:  # removal already in progress
                return
            raise EngineError(f"cannot remove container {container_id[:12]}: {err.explanation or err}") from err

    async def close(self) -> None:
        if self._streams is not None:
            await self._streams.close()
        self._executor.shutdown(wait=False)
        self._client.close()


def _exposed(attrs: dict[str, Any]) -> tuple[str, ...]:
    """The ports an image's configuration EXPOSEs, as `8080/tcp`."""
    keys = (attrs.get("Config") or {}).get("ExposedPorts") or {}
    return tuple(sorted(key if "/" in key else f"{key}/tcp" for key in keys))


def pull_candidates(repository: str, registries: Sequence[str]) -> list[str]:
    """Where to pull `repository` from: itself, then, for an image of one of the cluster's registries (HOST:PORT of each
    manager's), the same repository on each other one (they hold the same images, registry/replication.py)."""
    host, slash, path = repository.partition("/")
    if not slash or host not in registries:
        return [repository]
    return [repository, *(f"{other}/{path}" for other in registries if other != host)]


def _split_reference(image: str) -> tuple[str, str | None]:
    """'host:5000/app:2' -> ('host:5000/app', '2'); digests stay whole."""
    if "@" in image:
        return image, None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"


def _listed(summary: dict[str, Any]) -> ContainerInfo:
    """A running container as the engine's listing shows it (`GET /containers/json`: no inspect needed)."""
    ports: dict[tuple[int, str], PublishedPort] = {}
    for port in summary.get("Ports") or []:
        if port.get("PublicPort") is None:
            continue  # exposed, not published
        key = (int(port["PrivatePort"]), str(port.get("Type") or "tcp"))
        ports.setdefault(key, PublishedPort(target=key[0], protocol=key[1], host_ip=str(port.get("IP", "")), host_port=int(port["PublicPort"])))
    networks = (summary.get("NetworkSettings") or {}).get("Networks") or {}
    ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
    return ContainerInfo(
        id=str(summary["Id"]),
        task_id=(summary.get("Labels") or {}).get(labels.TASK, ""),
        running=True,
        ports=[ports[key] for key in sorted(ports)],
        ip=ip,
    )


def _info(container: Container) -> ContainerInfo:
    return _inspected(container.attrs)


def _inspected(attrs: dict[str, Any]) -> ContainerInfo:
    """A container as the engine's inspect shows it."""
    state = attrs.get("State", {})
    running = bool(state.get("Running")) or state.get("Status") in ("running", "restarting")
    exit_code = None if running else state.get("ExitCode")
    error = state.get("Error", "") or ""
    if not running and state.get("OOMKilled"):
        error = "killed: out of memory"
    ports: list[PublishedPort] = []
    for key, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
        if not bindings:
            continue
        target, _, protocol = key.partition("/")
        binding = bindings[0]
        ports.append(
            PublishedPort(target=int(target), protocol=protocol or "tcp", host_ip=binding["HostIp"], host_port=int(binding["HostPort"]))
        )
    ports.sort(key=lambda p: (p.target, p.protocol))
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
    return ContainerInfo(
        id=str(attrs.get("Id", "")),
        task_id=((attrs.get("Config") or {}).get("Labels") or {}).get(labels.TASK, ""),
        running=running,
        exit_code=exit_code,
        error=error,
        ports=ports,
        ip=ip,
    )
