"""The registry of several managers: copies of every push on the other managers, and fetching what this one lacks.

Each manager keeps its own content-addressed store on its own disk (storage.py); etcd, which holds the
rest of the cluster's state, takes values of ~1.5 MB at most, so image content never goes there. Instead:

- **Push**: a manifest PUT is acknowledged (201) only after the manifest, every manifest of an index and
  every blob they name are on each other manager that answers (`replicate`): so at least two managers
  hold an acknowledged image whenever another manager is up; with one manager, one copy, as before. The
  copy is an ordinary OCI push to the peer's /v2/ API (HEAD each blob, upload the missing ones streamed
  from disk, then PUT the manifests and the tag), authenticated as a peer (`PEER_USER` and the managers'
  shared peer secret); a peer's registry neither copies onward nor fetches for a peer's request.
- **Pull**: a manifest (by tag or digest) or a blob that this manager lacks is fetched from the first
  peer that has it (`fetch_manifest`, `fetch_blob`): streamed to disk, verified against its digest,
  then kept like a pushed one (a manifest only once everything it names is here too).

A peer that cannot be connected to is taken as gone and skipped; one that answers and fails counts as a
failed copy. The peers' addresses come from `peers()` (the manager reads them from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx

from corral.registry.errors import RegistryError
from corral.registry.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse_manifest
from corral.registry.references import Digest, is_digest
from corral.registry.storage import RegistryStorage

log = logging.getLogger(__name__)

PEER_USER = "corral-peer"  # the user name a manager's registry uses with another's
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
READ_CHUNK = 1024 * 1024
GONE = (httpx.ConnectError, httpx.ConnectTimeout)  # the peer is not there: skipped, not a failed copy


@dataclass(frozen=True)
class Copies:
    """Where a push went: the peers that took a copy, those that answered and failed (why), those not there."""

    made: list[str]
    failed: dict[str, str]
    gone: list[str]


def acknowledged(copies: Copies) -> bool:
    """A push holds when another manager took it, or when no other manager answered at all (one copy, as alone)."""
    return bool(copies.made) or not copies.failed


@dataclass(frozen=True)
class TagRecord:
    """What the cluster records of a tag: the manifest it names, or None once it was removed."""

    digest: Digest | None


@dataclass
class PeerRegistries:
    """The other managers' registries, as this manager's registry reaches them."""

    peers: Callable[[], Awaitable[list[str]]]  # base URLs (http[s]://HOST:PORT) of the other managers' registries
    password: str  # the managers' shared peer secret
    verify: ssl.SSLContext | bool = True  # the cluster CA (registries off loopback serve TLS)
    timeout: float = 60.0
    transport: httpx.AsyncBaseTransport | None = None  # tests: in-process registries
    # Where the cluster records which manifest each tag names (the manager's store): written when a push by tag is
    # acknowledged (removed with the tag: digest None), followed when a tag is pulled, so a manager that was down
    # while a tag moved serves the new one.
    record_tag: Callable[[str, str, Digest | None], Awaitable[None]] | None = None
    recorded_tag: Callable[[str, str], Awaitable[TagRecord | None]] | None = None  # None: never recorded

    def _client(self, base: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base, auth=(PEER_USER, self.password), verify=self.verify, transport=self.transport,
            timeout=httpx.Timeout(self.timeout, connect=2.0),
        )

    # ----- push: copies on the peers

    async def replicate(self, storage: RegistryStorage, name: str, reference: str, digest: Digest) -> Copies:
        """Copy the manifest `digest` of `name` (and all it names) to every peer, tagging it `reference` if a tag."""
        urls = await self.peers()
        results = await asyncio.gather(*(self._copy_to(url, storage, name, reference, digest) for url in urls), return_exceptions=True)
        made, failed, gone = [], {}, []
        for url, result in zip(urls, results):
            if result is None:
                made.append(url)
            elif isinstance(result, GONE):
                gone.append(url)
            else:
                failed[url] = str(result) or type(result).__name__
        copies = Copies(made, failed, gone)
        if failed:
            log.warning("registry: %s@%s not copied to %s", name, digest, failed)
        return copies

    async def _copy_to(self, url: str, storage: RegistryStorage, name: str, reference: str, digest: Digest) -> None:
        async with self._client(url) as http:
            await self._send_manifest(http, storage, name, digest, set())
            if not is_digest(reference):
                stored = storage.manifest(name, str(digest))
                await _put_manifest(http, name, reference, await anyio.to_thread.run_sync(stored.path.read_bytes), stored.media_type)

    async def _send_manifest(self, http: httpx.AsyncClient, storage: RegistryStorage, name: str, digest: Digest, sent: set[Digest]) -> None:
        if digest in sent:
            return
        sent.add(digest)
        stored = storage.manifest(name, str(digest))
        data = await anyio.to_thread.run_sync(stored.path.read_bytes)
        manifest = parse_manifest(data, stored.media_type)
        for child in manifest.children:
            await self._send_manifest(http, storage, name, child, sent)
        for blob in manifest.blobs:
            await _send_blob(http, storage, name, blob)
        await _put_manifest(http, name, str(digest), data, stored.media_type)

    # ----- pull: what this manager lacks, from a peer

    async def follow_tag(self, storage: RegistryStorage, name: str, tag: str) -> None:
        """Point the local tag where the cluster's record says (fetching that manifest if needed); no record, or no
        answer from the store, leaves the local tag as it is."""
        if self.recorded_tag is None:
            return
        try:
            record = await self.recorded_tag(name, tag)
        except Exception as err:  # the store does not answer: serve what this manager has
            log.warning("registry: the record of %s:%s cannot be read: %s", name, tag, err)
            return
        if record is None:
            return
        digest = record.digest
        if digest is None:  # removed through another manager
            with contextlib.suppress(RegistryError):
                await anyio.to_thread.run_sync(storage.delete_manifest, name, tag)
            return
        try:
            if storage.resolve(name, tag) == digest:
                return
        except RegistryError:
            pass
        if not _has_manifest(storage, name, digest) and not await self.fetch_manifest(storage, name, str(digest)):
            return
        stored = storage.manifest(name, str(digest))
        data = await anyio.to_thread.run_sync(stored.path.read_bytes)
        await anyio.to_thread.run_sync(storage.put_manifest, name, tag, data, stored.media_type)

    async def fetch_blob(self, storage: RegistryStorage, name: str, digest: Digest) -> bool:
        """Fetch a blob of `name` from the first peer that has it; False when none has it."""
        for url in await self.peers():
            try:
                async with self._client(url) as http:
                    if await _receive_blob(http, storage, name, digest):
                        return True
            except (httpx.HTTPError, RegistryError) as err:
                log.info("registry: %s@%s not fetched from %s: %s", name, digest, url, err)
        return False

    async def fetch_manifest(self, storage: RegistryStorage, name: str, reference: str) -> bool:
        """Fetch a manifest (tag or digest) of `name`, with everything it names, from the first peer that has it."""
        for url in await self.peers():
            try:
                async with self._client(url) as http:
                    if await self._receive_manifest(http, storage, name, reference):
                        return True
            except (httpx.HTTPError, RegistryError) as err:
                log.info("registry: %s:%s not fetched from %s: %s", name, reference, url, err)
        return False

    async def _receive_manifest(self, http: httpx.AsyncClient, storage: RegistryStorage, name: str, reference: str) -> bool:
        response = await http.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return False
        response.raise_for_status()
        content_type = response.headers.get("content-type")
        manifest = parse_manifest(response.content, content_type)
        for child in manifest.children:
            if not _has_manifest(storage, name, child) and not await self._receive_manifest(http, storage, name, str(child)):
                return False
        for blob in manifest.blobs:
            if not storage.has_blob(name, blob) and not await _receive_blob(http, storage, name, blob):
                return False
        # put_manifest checks the digest of a by-digest reference and that every blob it names is here.
        await anyio.to_thread.run_sync(storage.put_manifest, name, reference, response.content, content_type)
        return True


def _has_manifest(storage: RegistryStorage, name: str, digest: Digest) -> bool:
    try:
        storage.manifest(name, str(digest))
        return True
    except RegistryError:
        return False


async def _put_manifest(http: httpx.AsyncClient, name: str, reference: str, data: bytes, media_type: str) -> None:
    response = await http.put(f"/v2/{name}/manifests/{reference}", content=data, headers={"Content-Type": media_type})
    _check(response, f"manifest {name}:{reference}")


async def _send_blob(http: httpx.AsyncClient, storage: RegistryStorage, name: str, digest: Digest) -> None:
    if (await http.head(f"/v2/{name}/blobs/{digest}")).status_code == 200:
        return
    path = storage.blob(name, digest)
    size = path.stat().st_size
    response = await http.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": str(digest)}, content=_read(path),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
    )
    _check(response, f"blob {digest}")


async def _read(path: Path) -> AsyncIterator[bytes]:
    handle = await anyio.open_file(path, "rb")
    try:
        while block := await handle.read(READ_CHUNK):
            yield block
    finally:
        await handle.aclose()


async def _receive_blob(http: httpx.AsyncClient, storage: RegistryStorage, name: str, digest: Digest) -> bool:
    """Stream a peer's blob into an upload; the upload's completion checks the digest (nothing kept otherwise)."""
    async with http.stream("GET", f"/v2/{name}/blobs/{digest}") as response:
        if response.status_code == 404:
            return False
        response.raise_for_status()
        upload_id = storage.start_upload(name)
        try:
            pieces: list[bytes] = []
            gathered = 0
            async for chunk in response.aiter_bytes():
                pieces.append(chunk)
                gathered += len(chunk)
                if gathered >= 4 * READ_CHUNK:
                    await _append(storage, name, upload_id, pieces)
                    pieces, gathered = [], 0
            await _append(storage, name, upload_id, pieces)
            await anyio.to_thread.run_sync(storage.complete_upload, name, upload_id, digest)
        except BaseException:
            with contextlib.suppress(RegistryError):  # a digest mismatch has removed it already
                storage.cancel_upload(name, upload_id)
            raise
    return True


async def _append(storage: RegistryStorage, name: str, upload_id: str, pieces: Sequence[bytes]) -> None:
    if pieces:
        await anyio.to_thread.run_sync(storage.append, name, upload_id, list(pieces))


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 300:
        raise RegistryError("UNAVAILABLE", f"{what}: the peer answered {response.status_code} {response.text[:200]}", status=503)


