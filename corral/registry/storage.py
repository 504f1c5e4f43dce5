"""The registry's content on disk: blobs and manifests by digest, tags, referrers, uploads.

    ROOT/blobs/ALG/XX/HEX                          every blob and manifest, by content
    ROOT/uploads/ID/data, ID/repository            uploads in progress
    ROOT/repositories/NAME/_layers/ALG/HEX         blobs the repository holds (empty files)
    ROOT/repositories/NAME/_manifests/ALG/HEX      its manifests (the file holds the media type)
    ROOT/repositories/NAME/_tags/TAG               its tags (the file holds the digest)
    ROOT/repositories/NAME/_referrers/ALG/HEX/...  manifests whose subject is ALG:HEX (descriptor JSON)

Nothing is visible before it is whole: an upload grows in uploads/, is fsynced,
its digest verified, and only then renamed into blobs/; small files are written
to a temporary file, fsynced and renamed. A killed upload leaves only its
uploads/ directory, which no pull can see. Repository names cannot have '_'
components, so the `_` directories never clash with a name.

Methods are synchronous (file I/O); the HTTP layer calls the slow ones
(appending, completing, putting manifests) in a worker thread.
"""

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.registry.durable import fsync_dir, start_writeback, touch, write_atomic
from corral.registry.errors import RegistryError
from corral.registry.manifests import MAX_MANIFEST, Manifest, parse_manifest
from corral.registry.references import Digest, check_name, check_tag, check_upload_id, is_digest, parse_digest

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredManifest:
    digest: Digest
    media_type: str
    path: Path
    size: int


@dataclass
class _Upload:
    """What we know of an upload in this process: a running hash of its bytes so far."""

    hasher: Any
    offset: int
    lock: threading.Lock


class RegistryStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.repositories = root / "repositories"
        for path in (self.blobs, self.uploads, self.repositories):
            path.mkdir(parents=True, exist_ok=True)
        self._hashing: dict[str, _Upload] = {}
        self._hashing_lock = threading.Lock()

    # ----- blobs

    def blob_path(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def _repo(self, name: str) -> Path:
        return self.repositories / check_name(name)

    def layer_link(self, name: str, digest: Digest) -> Path:
        return self._repo(name) / "_layers" / digest.algorithm / digest.hex

    def blob(self, name: str, digest: Digest) -> Path:
        """The file of a blob the repository holds (a layer, a config, or one of its manifests)."""
        return self.blob_file(name, digest)[0]

    def blob_file(self, name: str, digest: Digest) -> tuple[Path, os.stat_result]:
        """The blob's file and its stat (size, times: all a HEAD needs)."""
        path = self.blob_path(digest)
        try:
            if self.layer_link(name, digest).exists() or self.manifest_link(name, digest).exists():
                return path, path.stat()
        except FileNotFoundError:
            pass
        raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}", {"digest": str(digest)})

    def has_blob(self, name: str, digest: Digest) -> bool:
        try:
            self.blob(name, digest)
            return True
        except RegistryError:
            return False

    def mount_blob(self, name: str, digest: Digest, source: str) -> bool:
        """Link a blob of repository `source` into `name`; False when `source` does not hold it."""
        check_name(name)
        if not self.has_blob(source, digest):
            return False
        touch(self.layer_link(name, digest))
        return True

    def delete_blob(self, name: str, digest: Digest) -> None:
        """Remove the blob from the repository; its content goes at the next garbage collection."""
        link = self.layer_link(name, digest)
        if not link.exists():
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}", {"digest": str(digest)})
        link.unlink()

    # ----- uploads

    def start_upload(self, name: str) -> str:
        check_name(name)
        upload_id = uuid.uuid4().hex
        directory = self.uploads / upload_id
        directory.mkdir()
        (directory / "data").touch()
        (directory / "repository").write_text(name)
        return upload_id

    def _upload_dir(self, name: str, upload_id: str) -> Path:
        directory = self.uploads / check_upload_id(upload_id)
        try:
            owner = (directory / "repository").read_text()
        except FileNotFoundError:
            owner = None
        if owner != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} unknown to repository {name}", {"upload": upload_id})
        return directory

    def upload_size(self, name: str, upload_id: str) -> int:
        return (self._upload_dir(name, upload_id) / "data").stat().st_size

    def _state(self, upload_id: str, size: int, algorithm: str = "sha256") -> _Upload:
        with self._hashing_lock:
            state = self._hashing.get(upload_id)
            if state is None or state.offset != size or state.hasher.name != algorithm:
                # First sight of this upload in this process (or a restart): hash what is there.
                state = _Upload(Digest(algorithm, "").hasher(), 0, threading.Lock())
                self._hashing[upload_id] = state
            return state

    def append(self, name: str, upload_id: str, chunk: bytes | Sequence[bytes], expect_offset: int | None = None) -> int:
        """Append bytes (or a run of byte strings, written and hashed in order) at the end of the upload; returns the new size.

        `expect_offset` is where the client says the chunk starts: anything but
        the current size is refused with 416 (chunks must come in order).
        """
        data = self._upload_dir(name, upload_id) / "data"
        size = data.stat().st_size
        if expect_offset is not None and expect_offset != size:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", f"chunk starts at {expect_offset} but the upload has {size} bytes: send the chunk at offset {size}",
                {"offset": size}, status=416,
            )
        chunks = [chunk] if isinstance(chunk, bytes) else chunk
        state = self._state(upload_id, size)
        with state.lock:
            if state.offset != size:
                self._rehash(state, data, size)
            with data.open("ab") as out:
                out.writelines(chunks)
                out.flush()
                start_writeback(out.fileno(), state.offset, sum(len(part) for part in chunks))  # the final fsync finds it written
            for part in chunks:
                state.hasher.update(part)
                size += len(part)
            state.offset = size
        return state.offset

    def truncate(self, name: str, upload_id: str, size: int) -> None:
        """Cut the upload back to `size` bytes (a chunk that turned out wrong)."""
        data = self._upload_dir(name, upload_id) / "data"
        with data.open("rb+") as handle:
            handle.truncate(size)

    def _rehash(self, state: _Upload, data: Path, size: int) -> None:
        hasher = Digest(state.hasher.name, "").hasher()
        with data.open("rb") as src:
            remaining = size
            while remaining > 0:
                block = src.read(min(COPY_CHUNK, remaining))
                if not block:
                    break
                hasher.update(block)
                remaining -= len(block)
        state.hasher, state.offset = hasher, size

    def complete_upload(self, name: str, upload_id: str, digest: Digest) -> int:
        """Verify the upload against `digest` and make it a blob of the repository; returns its size.

        A mismatch removes the upload and stores nothing (DIGEST_INVALID).
        """
        directory = self._upload_dir(name, upload_id)
        data = directory / "data"
        size = data.stat().st_size
        state = self._state(upload_id, size, digest.algorithm)
        with state.lock:
            if state.offset != size:
                self._rehash(state, data, size)
            actual = state.hasher.hexdigest()
        if actual != digest.hex:
            self.cancel_upload(name, upload_id)
            raise RegistryError(
                "DIGEST_INVALID", f"upload has digest {digest.algorithm}:{actual}, not {digest}: nothing stored",
                {"digest": str(digest), "actual": f"{digest.algorithm}:{actual}"},
            )
        target = self.blob_path(digest)
        if not target.exists():
            with data.open("rb+") as handle:
                os.fsync(handle.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(data, target)
            fsync_dir(target.parent)
        touch(self.layer_link(name, digest))
        self.cancel_upload(name, upload_id)
        return size

    def cancel_upload(self, name: str, upload_id: str) -> None:
        directory = self._upload_dir(name, upload_id)
        with self._hashing_lock:
            self._hashing.pop(upload_id, None)
        shutil.rmtree(directory, ignore_errors=True)

    # ----- manifests and tags

    def manifest_link(self, name: str, digest: Digest) -> Path:
        return self._repo(name) / "_manifests" / digest.algorithm / digest.hex

    def _tag_file(self, name: str, tag: str) -> Path:
        return self._repo(name) / "_tags" / check_tag(tag)

    def resolve(self, name: str, reference: str) -> Digest:
        """A tag or digest of the repository -> the manifest's digest (MANIFEST_UNKNOWN if absent)."""
        if is_digest(reference):
            digest = parse_digest(reference)
            if self.manifest_link(name, digest).exists():
                return digest
        else:
            check_tag(reference)
            try:
                return parse_digest(self._tag_file(name, reference).read_text().strip())
            except FileNotFoundError:
                pass
        if not self._repo(name).exists():
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to the registry", {"name": name})
        raise RegistryError("MANIFEST_UNKNOWN", f"manifest {name}:{reference} unknown", {"name": name, "reference": reference})

    def manifest(self, name: str, reference: str) -> StoredManifest:
        digest = self.resolve(name, reference)
        path = self.blob_path(digest)
        try:
            media_type = self.manifest_link(name, digest).read_text()
            size = path.stat().st_size
        except FileNotFoundError as err:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {name}:{reference} unknown", {"reference": reference}) from err
        return StoredManifest(digest, media_type, path, size)

    def parsed(self, name: str, digest: Digest) -> Manifest:
        stored = self.manifest(name, str(digest))
        return parse_manifest(stored.path.read_bytes(), stored.media_type)

    def put_manifest(self, name: str, reference: str, data: bytes, content_type: str | None) -> tuple[Digest, Manifest]:
        """Store a manifest under a tag or its digest, once everything it references is here."""
        check_name(name)
        if len(data) > MAX_MANIFEST:
            raise RegistryError("SIZE_INVALID", f"manifest of {len(data)} bytes is over the {MAX_MANIFEST} byte limit", status=413)
        if is_digest(reference):
            expected = parse_digest(reference)
            digest = Digest(expected.algorithm, _hash(data, expected.algorithm))
            if digest != expected:
                raise RegistryError("DIGEST_INVALID", f"manifest has digest {digest}, not {expected}", {"digest": reference})
        else:
            check_tag(reference)
            digest = Digest("sha256", _hash(data, "sha256"))
        manifest = parse_manifest(data, content_type)
        for blob in manifest.blobs:
            if not self.has_blob(name, blob):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"manifest references blob {blob}, not pushed to {name}", {"digest": str(blob)})
            self._check_size(manifest, blob)
        for child in manifest.children:
            if not self.manifest_link(name, child).exists():
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"index references manifest {child}, not pushed to {name}", {"digest": str(child)})
            self._check_size(manifest, child)
        target = self.blob_path(digest)
        if not target.exists():
            write_atomic(target, data)
        write_atomic(self.manifest_link(name, digest), manifest.media_type.encode())
        if not is_digest(reference):
            write_atomic(self._tag_file(name, reference), str(digest).encode())
        if manifest.subject is not None:
            descriptor: dict[str, Any] = {"mediaType": manifest.media_type, "digest": str(digest), "size": len(data)}
            if manifest.artifact_type:
                descriptor["artifactType"] = manifest.artifact_type
            if manifest.annotations:
                descriptor["annotations"] = manifest.annotations
            write_atomic(self._referrer_file(name, manifest.subject, digest), json.dumps(descriptor).encode())
        return digest, manifest

    def _check_size(self, manifest: Manifest, digest: Digest) -> None:
        """A descriptor's size must be that of the content it names (a client trusts it when it pulls)."""
        declared = manifest.sizes[digest]
        actual = self.blob_path(digest).stat().st_size
        if declared != actual:
            raise RegistryError(
                "SIZE_INVALID", f"manifest gives {digest} a size of {declared} bytes; it has {actual}", {"digest": str(digest)}
            )

    def _referrer_file(self, name: str, subject: Digest, referrer: Digest) -> Path:
        return self._repo(name) / "_referrers" / subject.algorithm / subject.hex / f"{referrer.algorithm}-{referrer.hex}"

    def delete_manifest(self, name: str, reference: str) -> None:
        """By tag: remove the tag. By digest: remove the manifest, every tag pointing at it, its referrer entry."""
        if not is_digest(reference):
            digest = self.resolve(name, reference)
            self._tag_file(name, reference).unlink(missing_ok=True)
            return
        digest = self.resolve(name, reference)
        try:
            subject = self.parsed(name, digest).subject
        except RegistryError:
            subject = None
        for tag in self.tags(name):
            if self.resolve(name, tag) == digest:
                self._tag_file(name, tag).unlink(missing_ok=True)
        if subject is not None:
            self._referrer_file(name, subject, digest).unlink(missing_ok=True)
        self.manifest_link(name, digest).unlink()

    def tags(self, name: str) -> list[str]:
        """The repository's tags, sorted lexically (byte order)."""
        repo = self._repo(name)
        if not repo.exists():
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not known to the registry", {"name": name})
        directory = repo / "_tags"
        return sorted(path.name for path in directory.iterdir() if not path.name.startswith(".")) if directory.exists() else []

    def manifest_digests(self, name: str) -> list[Digest]:
        directory = self._repo(name) / "_manifests"
        return sorted(_digests_under(directory))

    def layer_digests(self, name: str) -> list[Digest]:
        return sorted(_digests_under(self._repo(name) / "_layers"))

    def referrers(self, name: str, subject: Digest, artifact_type: str | None = None) -> list[dict[str, Any]]:
        check_name(name)
        directory = self._repo(name) / "_referrers" / subject.algorithm / subject.hex
        found = []
        if directory.exists():
            for path in sorted(directory.iterdir()):
                if path.name.startswith("."):
                    continue
                descriptor = json.loads(path.read_text())
                if artifact_type is None or descriptor.get("artifactType") == artifact_type:
                    found.append(descriptor)
        return found

    def repository_names(self) -> list[str]:
        """Every repository that holds a manifest or a blob, sorted."""
        names = []
        for marker in self.repositories.rglob("_manifests"):
            names.append(marker.parent.relative_to(self.repositories).as_posix())
        return sorted(names)

    def blob_digests(self) -> Iterator[Digest]:
        """Every stored blob (layers, configs, manifests)."""
        yield from _digests_under(self.blobs, nested=True)


def _digests_under(directory: Path, nested: bool = False) -> Iterator[Digest]:
    if not directory.exists():
        return
    for algorithm_dir in directory.iterdir():
        files = algorithm_dir.glob("*/*") if nested else algorithm_dir.iterdir()
        for path in files:
            if path.name.startswith("."):
                continue
            try:
                yield parse_digest(f"{algorithm_dir.name}:{path.name}")
            except RegistryError:
                continue


def _hash(data: bytes, algorithm: str) -> str:
    hasher = Digest(algorithm, "").hasher()
    hasher.update(data)
    return hasher.hexdigest()
