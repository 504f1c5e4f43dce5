"""Secrets and configs as files on the host's tmpfs, bind-mounted read-only into a task's container.

Each task's values go to ROOT/CLUSTER/NODE/TASK_ID/ (directories 0700),
one file per reference named by its kind and position (`secret-0`: a name
that tells nothing), with the reference's mode, uid and gid. ROOT must be a
tmpfs, so a value never reaches a disk: if it is not one, a tmpfs is
mounted there (the agent runs as root to drive Docker), and if that fails
the task is refused rather than the value written to disk. The container
sees each file at its target through a read-only bind mount, so `docker
inspect` shows only the host path, never the value, and nothing goes into
the environment. A task's directory goes when its container is removed;
`sweep` removes what a crash left behind.

Blocking file system calls: the Docker engine calls these from its thread pool.
"""

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from corral.agent.engines.base import EngineError, TaskFile

DEFAULT_ROOT = Path("/run/corral/secrets")
TMPFS_OPTIONS = "mode=0700,size=64m"


class TaskFiles:
    """The directory of one node's task files under `root`."""

    def __init__(self, root: Path, cluster_id: str, node: str, ensure: Callable[[Path], None] | None = None) -> None:
        """`ensure`: makes sure `root` is a tmpfs (default `ensure_tmpfs`)."""
        self.root = root
        self.base = root / cluster_id / node
        self._ensure = ensure or ensure_tmpfs

    def write(self, task_id: str, files: Sequence[TaskFile]) -> list[tuple[Path, TaskFile]]:
        """Write the task's files; (host path, file) for each, to bind-mount."""
        self._ensure(self.root)
        directory = self.base / task_id
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for parent in (self.base.parent, self.base, directory):  # made with the umask's bits when they were missing
            parent.chmod(0o700)
        written: list[tuple[Path, TaskFile]] = []
        counts = {"secret": 0, "config": 0}
        for file in files:
            path = directory / f"{file.kind}-{counts[file.kind]}"
            counts[file.kind] += 1
            _write_file(path, file)
            written.append((path, file))
        return written

    def remove(self, task_id: str) -> None:
        if task_id and "/" not in task_id and task_id not in (".", ".."):
            shutil.rmtree(self.base / task_id, ignore_errors=True)

    def sweep(self, keep: Iterable[str]) -> list[str]:
        """Remove the directories of tasks not in `keep` (their containers are gone); the task ids removed."""
        try:
            present = {entry.name for entry in os.scandir(self.base) if entry.is_dir(follow_symlinks=False)}
        except FileNotFoundError:
            return []
        gone = sorted(present - set(keep))
        for task_id in gone:
            self.remove(task_id)
        return gone


def _write_file(path: Path, file: TaskFile) -> None:
    """Create the file with no access, write it, then give it its owner and mode."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o000)
    try:
        os.fchmod(descriptor, 0o000)
        os.write(descriptor, file.data)
        uid, gid = int(file.reference.uid), int(file.reference.gid)
        # An agent that is not root leaves the default owner (root, who reads any file) as its own.
        if (uid, gid) != (os.geteuid(), os.getegid()) and (os.geteuid() == 0 or (uid, gid) != (0, 0)):
            try:
                os.fchown(descriptor, uid, gid)
            except PermissionError:
                raise EngineError(
                    f"cannot give {file.kind} {file.reference.source!r} to uid {uid}, gid {gid}: the agent is not root",
                    permanent=True,
                ) from None
        os.fchmod(descriptor, file.reference.mode)
    finally:
        os.close(descriptor)


def ensure_tmpfs(root: Path) -> None:
    """Make `root` a tmpfs if it is not one already; EngineError (permanent) if it cannot be."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if filesystem_type(root) == "tmpfs":
        return
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", TMPFS_OPTIONS, "tmpfs", str(root)], check=True, capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as err:
        detail = err.stderr.decode(errors="replace").strip() if isinstance(err, subprocess.CalledProcessError) else str(err)
        raise EngineError(
            f"secrets are kept off disks, but {root} is not a tmpfs and mounting one failed ({detail}): "
            f"mount a tmpfs there, run the agent as root, or choose another --secrets-dir",
            permanent=True,
        ) from None
    if filesystem_type(root) != "tmpfs":
        raise EngineError(f"{root} is still not a tmpfs after mounting one", permanent=True)


def filesystem_type(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str:
    """The type of the file system `path` is on: the deepest mount point above it (Linux)."""
    target = os.path.realpath(path)
    best, kind = "", ""
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" - ", 1)
        if len(fields) != 2:
            continue
        mount_point = _unescape(fields[0].split()[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # later lines are mounted over earlier ones
            best, kind = mount_point, fields[1].split()[0]
    return kind


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash in octal (\\040)."""
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
