"""Storage a service's containers see: mounts in a spec, and the record of each named volume a node holds.

A `Mount` is one entry of a service's `volumes:`. A named volume (`type:
volume`) carries its top-level definition with it (driver, options, labels,
whether it is sticky), so that an agent needs nothing but the task to create
it. Each replica slot gets its own copy, named `SOURCE.SLOT` (`SOURCE.NODE`
for a global service), as a Kubernetes StatefulSet gives each replica its
claim; an `external` volume is used as it is, by its name, and is not corral's.

A `Volume` is what the store keeps about one such copy: the node that holds
it, and the service and slot it was made for. It is written when the task that
first needs it is placed, and removed only when somebody asks
(`corral volume rm`, `corral stack rm --volumes`): the scheduler sends the
slot's later tasks to that node, so the data is there.
"""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MountType = Literal["volume", "bind", "tmpfs"]
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")


class Mount(BaseModel):
    """One entry of a service's `volumes:`.

    `source`: for a volume, its name in the cluster (`{stack}_{key}`, or the definition's `name:`),
    to which each task adds its slot; for a bind mount, the host path; for tmpfs, empty.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: MountType
    source: str = ""
    target: str = Field(pattern=r"^/")
    read_only: bool = False
    nocopy: bool = Field(default=False, description="volume.nocopy: do not copy the image's files into a new volume")
    tmpfs_size: int | None = Field(default=None, ge=0, description="tmpfs.size in bytes")
    external: bool = Field(default=False, description="a volume created beforehand on each node, used by its name")
    sticky: bool = Field(default=True, description="a slot's later tasks run where its volume is (x-corral-volume.sticky)")
    driver: str = "local"
    driver_opts: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class Volume(BaseModel):
    """One named volume a node holds for one slot of a service (or for the node, for a global service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the engine's volume name: SOURCE.SLOT, or SOURCE.NODE for a global service")
    node: str
    source: str = Field(description="the volume's name in the compose file's stack (`{stack}_{key}` or `name:`)")
    stack: str = ""
    service: str
    slot: int | None = None
    sticky: bool = True
    created_at: float
    removing: bool = Field(default=False, description="asked to be removed: the node's agent removes it, then the record goes")


def volume_name(mount: Mount, slot: int | None, node: str | None) -> str:
    """The engine's name of the copy of `mount` a task of `slot` (or, global, on `node`) uses."""
    if mount.external:
        return mount.source
    return f"{mount.source}.{slot if slot is not None else node}"
