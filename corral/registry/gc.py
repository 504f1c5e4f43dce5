"""Garbage collection: mark what tags, running tasks and referrers need, sweep the rest.

Roots are every tag, plus the images passed in `keep` (those of the services
and tasks the manager knows: a task may run an image whose tag was since
removed or moved). From the roots we mark manifests, the manifests of
indexes, the referrers of marked manifests, and the blobs they all name;
untagged manifests and blobs outside the mark are removed.

A push in flight has blobs (and the child manifests of an index) that nothing
references yet; anything younger than `grace` seconds is left for the next
run, so gc can run while clients push.
"""

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from corral.registry.errors import RegistryError
from corral.registry.references import Digest, is_digest, parse_digest
from corral.registry.storage import RegistryStorage

log = logging.getLogger(__name__)


@dataclass
class GcReport:
    removed_manifests: list[str] = field(default_factory=list)  # NAME@DIGEST
    removed_blobs: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_blobs: int = 0


def repository_reference(image: str) -> tuple[str, str]:
    """'127.0.0.1:5000/team/app:2' -> ('team/app', '2'); 'app@sha256:...' -> ('app', 'sha256:...').

    The first path component is a registry host when it holds '.' or ':' or is
    'localhost' (Docker's rule); a missing tag is 'latest'.
    """
    name, at, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    path, _, last = name.rpartition("/")
    repo, colon, tag = last.partition(":")
    repo = f"{path}/{repo}" if path else repo
    return repo, digest if at else (tag if colon else "latest")


def collect_garbage(storage: RegistryStorage, keep: Iterable[str] = (), grace: float = 3600.0, now: float | None = None) -> GcReport:
    now = time.time() if now is None else now
    report = GcReport()
    names = storage.repository_names()
    marked: dict[str, set[Digest]] = {name: _roots(storage, name, keep) for name in names}
    marked_blobs: set[Digest] = set()
    for name in names:
        _mark(storage, name, marked[name], marked_blobs)
    for name in names:
        for digest in storage.manifest_digests(name):
            link = storage.manifest_link(name, digest)
            if digest not in marked[name] and _older(link, now, grace):
                storage.delete_manifest(name, str(digest))
                report.removed_manifests.append(f"{name}@{digest}")
            elif digest not in marked[name]:
                marked_blobs.add(digest)
                marked_blobs.update(_manifest_blobs(storage, name, digest))
        for digest in storage.layer_digests(name):
            link = storage.layer_link(name, digest)
            if digest not in marked_blobs and _older(link, now, grace):
                link.unlink(missing_ok=True)
    for digest in list(storage.blob_digests()):
        path = storage.blob_path(digest)
        if digest in marked_blobs:
            report.kept_blobs += 1
            continue
        if not _older(path, now, grace):
            report.kept_blobs += 1
            continue
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        report.removed_blobs.append(str(digest))
        report.freed_bytes += size
    log.info("registry gc: removed %d manifests, %d blobs (%d bytes)", len(report.removed_manifests), len(report.removed_blobs), report.freed_bytes)
    return report


def _roots(storage: RegistryStorage, name: str, keep: Iterable[str]) -> set[Digest]:
    roots = {storage.resolve(name, tag) for tag in storage.tags(name)}
    for image in keep:
        repo, reference = repository_reference(image)
        if repo != name:
            continue
        try:
            roots.add(storage.resolve(name, reference))
        except RegistryError:
            if not is_digest(reference):  # the tag a task runs is gone: we cannot tell which manifest it ran
                roots.update(storage.manifest_digests(name))
    return roots


def _mark(storage: RegistryStorage, name: str, manifests: set[Digest], blobs: set[Digest]) -> None:
    """Grow `manifests` to everything reachable (index children, referrers), and add their blobs."""
    todo = list(manifests)
    while todo:
        digest = todo.pop()
        blobs.add(digest)
        try:
            manifest = storage.parsed(name, digest)
        except RegistryError:
            continue
        blobs.update(manifest.blobs)
        found = list(manifest.children)
        found += [d for d in (_digest(r["digest"]) for r in storage.referrers(name, digest)) if d is not None]
        for child in found:
            if child not in manifests:
                manifests.add(child)
                todo.append(child)


def _manifest_blobs(storage: RegistryStorage, name: str, digest: Digest) -> list[Digest]:
    try:
        return storage.parsed(name, digest).blobs
    except RegistryError:
        return []


def _digest(value: str) -> Digest | None:
    try:
        return parse_digest(value)
    except RegistryError:
        return None


def _older(path: Path, now: float, grace: float) -> bool:
    try:
        return now - path.stat().st_mtime >= grace
    except FileNotFoundError:
        return False
