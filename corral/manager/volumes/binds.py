"""Which host paths a deploy may bind-mount: only under the directories the operator allows.

A bind mount reads and writes a path on every node a task may land on, so
none is allowed by default; `corral manager --allow-bind DIR` (repeatable)
allows the paths under DIR. The check is on the normalised path as written
(the compose reader refuses relative paths and `..`); a symlink under an
allowed directory that points elsewhere is the operator's to avoid.
"""

import posixpath
from collections.abc import Iterable, Sequence

from corral.model import ServiceSpec
from corral.model.errors import InvalidSpec


def is_allowed(path: str, allowed: Iterable[str]) -> bool:
    """Whether `path` is one of `allowed` or under one of them."""
    path = posixpath.normpath(path)
    for directory in allowed:
        directory = posixpath.normpath(directory)
        if path == directory or path.startswith(directory.rstrip("/") + "/"):
            return True
    return False


def check_binds(specs: Iterable[ServiceSpec], allowed: Sequence[str]) -> None:
    """InvalidSpec naming the first bind mount whose host path is not under an allowed directory."""
    for spec in specs:
        for index, mount in enumerate(spec.volumes):
            if mount.type == "bind" and not is_allowed(mount.source, allowed):
                short = spec.name.removeprefix(f"{spec.stack}_") if spec.stack else spec.name
                where = ", ".join(allowed) if allowed else "none"
                raise InvalidSpec(
                    f"services.{short}.volumes[{index}]",
                    f"bind mount of {mount.source} refused: it is not under a directory the cluster allows "
                    f"(allowed: {where}; the operator adds one with `corral manager --allow-bind DIR`)",
                )
