"""How a task's container runs beyond its image and command: the engine options of compose's service keys.

`ContainerOptions` holds what `docker compose` passes to the engine for a
service (user, working directory, host and domain names, capabilities,
sysctls, ulimits, init, tmpfs mounts, read-only root, stop signal, shared
memory, extra hosts, DNS, logging, a TTY, a pids limit, security options,
platform, and, where the manager allows them with --allow-privileged,
`privileged`, the host's pid/ipc/uts namespaces and host devices). It is part of the service spec, so a change of any of them is a
new service version rolled out like an image change. Every field's default
is the engine's own default: an empty `ContainerOptions` asks for nothing.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Ulimit(BaseModel):
    """One resource limit (`nofile`, `nproc`...): soft and hard, as `ulimit -S`/`-H`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    soft: int = Field(ge=-1)
    hard: int = Field(ge=-1)


class Logging(BaseModel):
    """The engine's log driver for the container and its options (compose's `logging`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: str = Field(default="", description="empty: the engine's default driver")
    options: dict[str, str] = Field(default_factory=dict)


class ContainerOptions(BaseModel):
    """The engine options of a service's containers (compose's service keys of the same names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = None
    working_dir: str | None = Field(default=None, pattern=r"^/")
    hostname: str | None = None
    domainname: str | None = None
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    sysctls: dict[str, str] = Field(default_factory=dict)
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    init: bool | None = None
    tmpfs: dict[str, str] = Field(default_factory=dict, description="mount point -> mount options ('' for none)")
    read_only: bool = False
    stop_signal: str | None = None
    shm_size: int | None = Field(default=None, ge=0, description="bytes of /dev/shm")
    extra_hosts: dict[str, str] = Field(default_factory=dict, description="host name -> address in /etc/hosts")
    dns: list[str] = Field(default_factory=list)
    dns_search: list[str] = Field(default_factory=list)
    dns_opt: list[str] = Field(default_factory=list)
    logging: Logging | None = None
    stdin_open: bool = False
    tty: bool = False
    pids_limit: int | None = Field(default=None, ge=-1)
    security_opt: list[str] = Field(default_factory=list)
    platform: str | None = Field(default=None, description="os/arch[/variant] the image must be for")
    # Only with the manager's --allow-privileged (corral/compose/privileges.py); the API refuses them otherwise.
    privileged: bool = False
    pid: Literal["host"] | None = Field(default=None, description="host: the node's process namespace")
    ipc: Literal["host"] | None = Field(default=None, description="host: the node's IPC namespace")
    uts: Literal["host"] | None = Field(default=None, description="host: the node's host name namespace")
    devices: list[str] = Field(
        default_factory=list, description="host devices, HOST:CONTAINER:PERMS (/dev/fuse:/dev/fuse:rwm)",
    )
