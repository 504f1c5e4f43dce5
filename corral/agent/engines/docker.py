"""The Docker driver: the Docker Engine API over the engine's socket (docker_api.py), blocking calls in a thread pool.

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
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corral.agent import labels
from corral.agent.clock import Clock
from corral.agent.engines.base import Attachment, ContainerInfo, ContainerStats, Engine, EngineError, LogOptions, TaskFile
from corral.agent.engines.docker_api import TIMEOUT, EngineAPI, EngineAPIError, config_credentials, registry_auth
from corral.agent.engines.docker_attach import attach
from corral.agent.engines.docker_events import EventFollower, event_container, event_filters
from corral.agent.engines.docker_options import create_body
from corral.agent.engines.docker_streams import DockerStreams
from corral.agent.engines.frames import Frame, FrameDecoder, LogLine
from corral.agent.engines.files import DEFAULT_ROOT, TaskFiles
from corral.agent.engines.platforms import check_platform
from corral.agent.networks.engine import EngineNetworks, NetworkError
from corral.model import PublishedPort, Task
from corral.model.volume import volume_name

T = TypeVar("T")
log = logging.getLogger(__name__)
RUNNING_STATES = ("running", "restarting", "paused")  # the listing's State of a container whose process lives


class DockerEngine(Engine):
    takes_files = True

    def __init__(self, cluster_id: str, node: str, api: EngineAPI | None = None, files_root: Path = DEFAULT_ROOT) -> None:
        self.cluster_id = cluster_id
        self.node = node
        self._api = api or EngineAPI()
        self.files = TaskFiles(files_root, cluster_id, node)
        self.networks: EngineNetworks = EngineNetworks(cluster_id, self._api)
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

    def _inspect(self, container_id: str) -> dict[str, Any] | None:
        """The engine's inspect of a container; None when it is gone."""
        try:
            attrs: dict[str, Any] = self._api.call("GET", f"/containers/{container_id}/json")
        except EngineAPIError as err:
            if err.missing:
                return None
            raise
        return attrs

    async def list(self) -> list[ContainerInfo]:
        starting = set(self._starting)  # before listing: a start that ends meanwhile has a container the list may miss
        named, self._named = self._named, set()
        try:
            found = await self._run(self._list_sync, named)
        except EngineError as err:
            raise EngineError(f"cannot list containers: {err}") from err
        keep = {info.task_id for info in found} | starting | self._starting
        await self._run(self.files.sweep, keep)  # the files of containers removed while the agent was away
        return found

    def _list_sync(self, named: set[str]) -> "builtins.list[ContainerInfo]":
        """One listing call; a stopped container is inspected (exit code, error, OOM) once per status it shows.

        The listing is a snapshot the engine updates a moment after it announces an event (a container that died
        can still show `running`), so the containers an event `named` are inspected, which waits for the engine."""
        filters = json.dumps({"label": labels.ownership_filter(self.cluster_id, self.node)})
        summaries = self._api.call("GET", "/containers/json", params={"all": 1, "filters": filters})
        found: builtins.list[ContainerInfo] = []
        stopped: dict[tuple[str, str], ContainerInfo] = {}
        for summary in summaries:
            if summary["Id"] in named:
                attrs = self._inspect(summary["Id"])
                if attrs is not None:  # else removed
                    found.append(_inspected(attrs))
                continue
            if summary.get("State") in RUNNING_STATES:
                found.append(_listed(summary))
                continue
            key = (str(summary["Id"]), str(summary.get("Status", "")).partition(")")[0])  # "Exited (137", "Created"
            info = self._stopped.get(key)
            if info is None:
                attrs = self._inspect(summary["Id"])
                if attrs is None:
                    continue  # removed since the listing
                info = _inspected(attrs)
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
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in spec.ports:
            host_port = port.published if port.mode == "host" else None
            bindings[f"{port.target}/{port.protocol}"] = [{"HostIp": address, "HostPort": str(host_port or "")}]
        for key in exposed:  # the image's EXPOSE: published too, so its service's VIP reaches them
            bindings.setdefault(key, [{"HostIp": address, "HostPort": ""}])
        name = f"{task.service}.{slot}.{task.id}"
        body = create_body(spec.container, hosts)
        host_config: dict[str, Any] = body["HostConfig"]
        body.update({"Image": spec.image, "Labels": container_labels, "Env": [f"{k}={v}" for k, v in spec.environment.items()]})
        if bindings:
            body["ExposedPorts"] = {key: {} for key in bindings}
            host_config["PortBindings"] = bindings
        host_config["RestartPolicy"] = {"Name": "no"}
        if self.dns:  # the node's DNS responder first (service names), then the service's own dns: servers
            host_config["Dns"] = [self.dns, *host_config.get("Dns", [])]
        if spec.command is not None:
            body["Cmd"] = list(spec.command)
        if spec.entrypoint is not None:
            body["Entrypoint"] = list(spec.entrypoint)
        if spec.limits.cpus:
            host_config["NanoCpus"] = int(spec.limits.cpus * 1e9)
        if spec.limits.memory:
            host_config["Memory"] = spec.limits.memory
        if spec.reservations.memory:
            host_config["MemoryReservation"] = spec.reservations.memory
        mounts = self._volume_mounts(task, slot)
        if files:
            written = self.files.write(task.id, files)
            mounts += [_mount("bind", f.reference.target, str(path), read_only=True) for path, f in written]
        if mounts:
            host_config["Mounts"] = mounts
        params = {"name": name, **({"platform": spec.container.platform} if spec.container.platform else {})}
        try:
            container_id = self._create_and_start(task, name, body, params)
        except NetworkError as err:
            self.files.remove(task.id)
            raise EngineError(str(err)) from err
        attrs = self._inspect(container_id)
        if attrs is None:
            raise EngineError(f"container {name} was removed as it started")
        return _inspected(attrs)

    def _create_and_start(self, task: Task, name: str, body: dict[str, Any], params: dict[str, str]) -> str:
        """Create the container on the task's networks and start it; its id. The networks' ids are the ones the agent
        knows (networks/engine.py): should one have been removed meanwhile (by another agent of this host), the
        engine creates the container anyway and refuses its start (`network ID not found`), and the container is
        removed and made again on the network looked up afresh, once."""
        for attempt in (1, 2):
            network_ids = [self.networks.ensure(attachment) for attachment in task.spec.attached_networks()]
            body["HostConfig"]["NetworkMode"] = network_ids[0]
            joined: set[str] = {network_ids[0]}
            try:
                container_id = str(self._api.call("POST", "/containers/create", body, params=params)["Id"])
            except EngineAPIError as err:
                if err.status != 409:
                    self.files.remove(task.id)
                    raise EngineError(f"cannot create container: {err.message}", permanent=err.status == 400) from err
                container_id = name  # created before a crash: adopt it, with the networks it has
                networks = ((self._inspect(name) or {}).get("NetworkSettings") or {}).get("Networks") or {}
                joined = {str(n.get("NetworkID")) for n in networks.values()}
            try:
                for network_id in network_ids[1:]:  # its other networks, before it starts
                    if network_id not in joined:
                        self._api.call("POST", f"/networks/{network_id}/connect", {"Container": container_id})
                self._api.call("POST", f"/containers/{container_id}/start")
                return container_id
            except EngineAPIError as err:
                if err.missing:  # something it names is gone: its networks are looked up again at the next start
                    for network_id in network_ids:
                        self.networks.forget(network_id)
                gone = [network_id for network_id in network_ids if err.missing and network_id in err.message]
                if not gone or attempt == 2:
                    raise EngineError(f"cannot start container: {err.message}") from err
                log.info("node %s: network %s is gone: %s made again on the network looked up afresh", self.node, gone[0][:12], name)
                self._api.call("DELETE", f"/containers/{container_id}", params={"force": 1})
        raise AssertionError("unreachable")

    def _volume_mounts(self, task: Task, slot: str) -> "builtins.list[dict[str, Any]]":
        """The task's volumes, bind mounts and tmpfs as the engine's mounts; its named volumes created if missing."""
        mounts: builtins.list[dict[str, Any]] = []
        for mount in task.spec.volumes:
            if mount.type == "tmpfs":
                tmpfs = _mount("tmpfs", mount.target, None, mount.read_only)
                if mount.tmpfs_size:
                    tmpfs["TmpfsOptions"] = {"SizeBytes": mount.tmpfs_size}
                mounts.append(tmpfs)
            elif mount.type == "bind":
                mounts.append(_mount("bind", mount.target, mount.source, mount.read_only))
            else:
                name = volume_name(mount, task.slot, self.node)
                if mount.external:
                    self._external_volume(name)
                else:
                    self._ensure_volume(name, task, slot, mount.source, mount.driver_opts, mount.labels)
                volume = _mount("volume", mount.target, name, mount.read_only)
                if mount.nocopy:
                    volume["VolumeOptions"] = {"NoCopy": True}
                mounts.append(volume)
        return mounts

    def _found(self, kind: str, name: str) -> dict[str, Any] | None:
        """The engine's inspect of the image or volume `name`; None when there is none of that name."""
        try:
            found: dict[str, Any] = self._api.call("GET", f"/images/{name}/json" if kind == "image" else f"/volumes/{name}")
        except EngineAPIError as err:
            if err.missing:
                return None
            raise EngineError(f"cannot inspect {kind} {name}: {err.message}") from err
        return found

    def _ensure_volume(
        self, name: str, task: Task, slot: str, source: str, driver_opts: dict[str, str], extra: dict[str, str]
    ) -> None:
        found = self._found("volume", name)
        if found is not None:
            if (found.get("Labels") or {}).get(labels.CLUSTER) != self.cluster_id:
                raise EngineError(f"volume {name} exists on node {self.node} but is not this cluster's: rename or remove it", permanent=True)
            return
        volume_labels = {
            **extra, labels.CLUSTER: self.cluster_id, labels.NODE: self.node, labels.STACK: task.stack,
            labels.SERVICE: task.service, labels.SLOT: slot, labels.VOLUME: source,
        }
        body = {"Name": name, "Driver": "local", "DriverOpts": dict(driver_opts), "Labels": volume_labels}
        try:
            self._api.call("POST", "/volumes/create", body)
        except EngineAPIError as err:
            raise EngineError(f"cannot create volume {name}: {err.message}") from err

    def _external_volume(self, name: str) -> None:
        if self._found("volume", name) is None:  # it may be created later: retried with back-off
            raise EngineError(f"external volume {name} not found on node {self.node}: create it there first (docker volume create)")

    async def remove_volume(self, name: str) -> None:
        def remove_sync() -> None:
            volume = self._found("volume", name)
            if volume is None:
                return
            owner = volume.get("Labels") or {}
            if owner.get(labels.CLUSTER) != self.cluster_id:
                raise EngineError(f"volume {name} is not this cluster's: left alone", permanent=True)
            if owner.get(labels.NODE) != self.node:
                return  # nodes sharing one engine (a local cluster): the node that made it removes it
            try:
                self._api.call("DELETE", f"/volumes/{name}")
            except EngineAPIError as err:
                if not err.missing:
                    raise EngineError(f"cannot remove volume {name}: {err.message}") from err

        await self._run(remove_sync)

    def use_dns(self, address: str) -> None:
        self.dns = address

    def use_registry(self, registry: str, user: str, password: Callable[[], str | None], others: Sequence[str] = ()) -> None:
        self._registry = (registry, user, password)
        self._registries = (registry, *(other for other in others if other != registry))

    def _auth_for(self, repository: str) -> dict[str, str] | None:
        """The node's credentials for an image of the cluster's registries (never sent elsewhere); for any other, what
        `docker login` on this host saved for its registry, as the docker SDK and CLI do."""
        if self._registry is None or repository.split("/", 1)[0] not in self._registries:
            return config_credentials(repository)
        secret = self._registry[2]()
        return {"username": self._registry[1], "password": secret} if secret else None

    def _engine_platform(self) -> str:
        """OS/ARCH of the engine (asked once): what a service's `platform` is checked against."""
        if self._platform is None:
            try:
                info = self._api.call("GET", "/info")
            except EngineAPIError as err:
                raise EngineError(f"cannot ask the engine for its platform: {err.message}") from err
            self._platform = f"{info.get('OSType', 'linux')}/{info.get('Architecture', '')}"
        return self._platform

    def _ensure_image(self, image: str, platform: str | None = None) -> tuple[str, ...]:
        """Pull the image if missing; its EXPOSEd ports (`8080/tcp`)."""
        present = self._found("image", image)
        if present is not None:
            return _exposed(present)
        repository, tag = _split_reference(image)
        candidates = pull_candidates(repository, self._registries) if tag is not None else [repository]
        for i, candidate in enumerate(candidates):  # the image's own registry first, then another manager's
            last = i == len(candidates) - 1
            reference = f"{candidate}:{tag}" if tag is not None else candidate
            try:
                self._pull(reference, platform)
            except EngineAPIError as err:
                if err.missing:  # it may be pushed later: retried with back-off
                    if last:
                        raise EngineError(f"image {image} not found in registry") from err
                    continue
                if last:
                    raise EngineError(f"cannot pull image {image}: {err.message}") from err
                log.info("cannot pull %s from %s (%s): trying another manager's registry", image, candidate, err.message)
                continue
            pulled = self._found("image", reference)
            if pulled is None:
                if last:
                    raise EngineError(f"image {image} not found in registry")
                continue
            if candidate != repository and tag is not None:  # the container is created from the image's own name
                self._api.call("POST", f"/images/{reference}/tag", params={"repo": repository, "tag": tag})
            return _exposed(pulled)
        raise EngineError(f"cannot pull image {image}")

    def _pull(self, reference: str, platform: str | None) -> None:
        """Pull `reference` (NAME:TAG or NAME@DIGEST); EngineAPIError with the engine's message when it cannot."""
        name, at, digest = reference.partition("@")
        if not at:
            name, _, digest = reference.rpartition(":")
        params = {"fromImage": name, "tag": digest, **({"platform": platform} if platform else {})}
        credentials = self._auth_for(name)
        headers = registry_auth(credentials) if credentials else None
        for event in self._api.progress("POST", "/images/create", params=params, headers=headers):
            if event.get("error"):  # the engine had begun to answer: the refusal comes in the stream
                message = str((event.get("errorDetail") or {}).get("message") or event["error"])
                raise EngineAPIError(f"cannot pull {reference}: {message}", 500, message)

    async def stop(self, container_id: str, grace: float) -> ContainerInfo:
        def stop_sync() -> ContainerInfo:
            seconds = max(0, int(round(grace)))
            self._api.call("POST", f"/containers/{container_id}/stop", params={"t": seconds}, timeout=TIMEOUT + seconds)
            attrs = self._inspect(container_id)
            if attrs is None:
                return ContainerInfo(id=container_id, task_id="", running=False, error="container gone")
            return _inspected(attrs)

        try:
            return await self._run(stop_sync)
        except EngineAPIError as err:
            if err.missing:
                return ContainerInfo(id=container_id, task_id="", running=False, error="container gone")
            raise EngineError(f"cannot stop container {container_id[:12]}: {err.message}") from err

    async def exec(self, container_id: str, command: Sequence[str], timeout: float) -> tuple[int, str]:
        def exec_sync() -> tuple[int, str]:
            created = self._api.call(
                "POST", f"/containers/{container_id}/exec",
                {"AttachStdout": True, "AttachStderr": True, "AttachStdin": False, "Tty": False, "Cmd": list(command)},
            )
            exec_id = str(created["Id"])
            output = self._api.output("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
            code = self._api.call("GET", f"/exec/{exec_id}/json").get("ExitCode")
            text = b"".join(frame.data for frame in FrameDecoder().feed(output)).decode(errors="replace")
            return (code if code is not None else -1), text

        try:
            return await asyncio.wait_for(self._run(exec_sync), timeout)
        except TimeoutError:
            return -1, f"timed out after {timeout:g}s"
        except EngineAPIError as err:
            return -1, f"cannot run {command[0]}: {err.message}"

    async def remove(self, container_id: str) -> None:
        def remove_sync() -> None:
            attrs = self._inspect(container_id)
            if attrs is None:
                return
            task_id = ((attrs.get("Config") or {}).get("Labels") or {}).get(labels.TASK, "")
            self._api.call("DELETE", f"/containers/{container_id}", params={"force": 1})
            self.files.remove(task_id)  # its secrets and configs go with it

        try:
            await self._run(remove_sync)
        except EngineAPIError as err:
            if err.missing or err.status == 409:  # gone, or its removal already in progress
                return
            raise EngineError(f"cannot remove container {container_id[:12]}: {err.message}") from err

    async def close(self) -> None:
        if self._streams is not None:
            await self._streams.close()
        self._executor.shutdown(wait=False)
        self._api.close()


def _mount(kind: str, target: str, source: str | None, read_only: bool) -> dict[str, Any]:
    """One of the engine's `HostConfig.Mounts`."""
    return {"Type": kind, "Target": target, **({"Source": source} if source is not None else {}), "ReadOnly": read_only}


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
