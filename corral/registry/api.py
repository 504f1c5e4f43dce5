"""The registry's HTTP API: /v2/ exactly as the OCI Distribution Spec v1.1 describes it.

`create_registry_app(root)` returns an ASGI app. Request bodies stream to
disk in bounded pieces and blobs stream back from their files (with Range),
so memory stays flat whatever the layer size. Every refusal is a
`RegistryError`, sent as the spec's JSON error body; a malformed request is
a 400, never a 500.

Extension beyond the spec: `GET /v2/_catalog` lists repositories (as
Docker's registry does).
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.registry.access import PEER, Authorizer, RequireCredentials
from corral.registry.errors import RegistryError
from corral.registry.manifests import MAX_MANIFEST, OCI_INDEX
from corral.registry.references import Digest, check_name, check_upload_id, is_digest, parse_digest
from corral.registry.replication import PeerRegistries, acknowledged
from corral.registry.sending import BlobResponse
from corral.registry.storage import RegistryStorage
from corral.registry.uploads import parse_content_range, receive_into

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")


def create_registry_app(root: Path, authorize: Authorizer | None = None, peers: PeerRegistries | None = None) -> ASGIApp:
    """The registry; with `authorize`, every request needs credentials it accepts (see access.py); with `peers`,
    the registry of one manager of several (replication.py): pushes are copied to the others, what is missing
    here is fetched from them."""
    storage = RegistryStorage(root)

    def endpoint(fn: Callable[[Request, RegistryStorage], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            request.state.peers = None if request.scope.get(PEER) else peers  # a peer's request goes no further
            try:
                return await fn(request, storage)
            except RegistryError as err:
                return error_response(err)

        return handle

    routes = [
        Route("/v2/", endpoint(version_check), methods=["GET"]),
        Route("/v2/_catalog", endpoint(catalog), methods=["GET"]),
        Route("/v2/{name:path}/manifests/{reference}", endpoint(manifest), methods=["GET", "HEAD", "PUT", "DELETE"]),
        Route("/v2/{name:path}/blobs/uploads/", endpoint(start_upload), methods=["POST"]),
        Route("/v2/{name:path}/blobs/uploads", endpoint(start_upload), methods=["POST"]),
        Route("/v2/{name:path}/blobs/uploads/{upload}", endpoint(upload), methods=["GET", "PATCH", "PUT", "DELETE"]),
        Route("/v2/{name:path}/blobs/{digest}", endpoint(blob), methods=["GET", "HEAD", "DELETE"]),
        Route("/v2/{name:path}/tags/list", endpoint(tags), methods=["GET"]),
        Route("/v2/{name:path}/referrers/{digest}", endpoint(referrers), methods=["GET"]),
    ]
    # Starlette types every handler as taking any Exception; this one is registered for HTTPException only.
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})  # type: ignore[dict-item]
    served = _with_version_header(app)
    return served if authorize is None else RequireCredentials(served, authorize)


def error_response(err: RegistryError) -> Response:
    body = err.body()
    return JSONResponse(body, status_code=err.status, headers=err.headers)


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        return error_response(RegistryError("UNSUPPORTED", f"method not allowed here: {exc.detail}", status=405))
    return error_response(RegistryError("UNSUPPORTED", f"no such registry endpoint ({exc.detail})", status=exc.status_code))


def _with_version_header(app: ASGIApp) -> ASGIApp:
    header = (API_VERSION[0].lower().encode(), API_VERSION[1].encode())

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_with_header if scope["type"] == "http" else send)

    return wrapped


def _name(request: Request) -> str:
    return check_name(request.path_params["name"])


def _digest_param(request: Request) -> Digest | None:
    value = request.query_params.get("digest")
    return parse_digest(value) if value is not None else None


# ----- /v2/ and the catalog


async def version_check(_request: Request, _storage: RegistryStorage) -> Response:
    return JSONResponse({})


async def catalog(request: Request, storage: RegistryStorage) -> Response:
    n, last = _page_params(request)
    names = await asyncio.to_thread(storage.repository_names)
    page, link = _paginate(names, n, last, "/v2/_catalog")
    return JSONResponse({"repositories": page}, headers=link)


def _page_params(request: Request) -> tuple[int | None, str | None]:
    """`n` (at most n items) and `last` (items after it); checked before anything is read."""
    raw_n = request.query_params.get("n")
    if raw_n is not None and not raw_n.isdigit():
        raise RegistryError("UNSUPPORTED", f"query parameter n={raw_n!r} must be a non-negative integer", {"n": raw_n})
    return (int(raw_n) if raw_n is not None else None), request.query_params.get("last")


def _paginate(items: list[str], n: int | None, last: str | None, path: str) -> tuple[list[str], dict[str, str]]:
    """One page of sorted items, with a Link header to the next page when there is one."""
    if last is not None:
        items = [item for item in items if item > last]
    if n is None:
        return items, {}
    page = items[:n]
    if len(items) > n and page:
        return page, {"Link": f'<{path}?n={n}&last={page[-1]}>; rel="next"'}
    return page, {}


# ----- manifests


async def manifest(request: Request, storage: RegistryStorage) -> Response:
    name, reference = _name(request), request.path_params["reference"]
    if request.method == "PUT":
        return await _put_manifest(request, storage, name, reference)
    if request.method == "DELETE":
        tags = [reference] if not is_digest(reference) else await asyncio.to_thread(_tags_of, storage, name, reference)
        await asyncio.to_thread(storage.delete_manifest, name, reference)
        deleting: PeerRegistries | None = request.state.peers
        if deleting is not None and deleting.record_tag is not None:
            for tag in tags:
                await deleting.record_tag(name, tag, None)
        return Response(status_code=202)
    peers: PeerRegistries | None = request.state.peers
    if peers is not None and not is_digest(reference):
        await peers.follow_tag(storage, name, reference)
    try:
        stored = storage.manifest(name, reference)
    except RegistryError as err:
        if err.status != 404 or peers is None or not await peers.fetch_manifest(storage, name, reference):
            raise
        stored = storage.manifest(name, reference)
    headers = {
        "Content-Type": stored.media_type,
        "Docker-Content-Digest": str(stored.digest),
        "Content-Length": str(stored.size),
        "ETag": f'"{stored.digest}"',
    }
    if request.method == "HEAD":
        return Response(headers=headers)
    body = await asyncio.to_thread(stored.path.read_bytes)
    return Response(body, headers=headers)


def _tags_of(storage: RegistryStorage, name: str, reference: str) -> list[str]:
    """The tags that name manifest `reference` here (they go with it)."""
    try:
        digest = storage.resolve(name, reference)
        return [tag for tag in storage.tags(name) if storage.resolve(name, tag) == digest]
    except RegistryError:
        return []


async def _put_manifest(request: Request, storage: RegistryStorage, name: str, reference: str) -> Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_MANIFEST:
        raise RegistryError("SIZE_INVALID", f"manifest of {declared} bytes is over the {MAX_MANIFEST} byte limit", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST:
            raise RegistryError("SIZE_INVALID", f"manifest is over the {MAX_MANIFEST} byte limit", status=413)
    digest, parsed = await asyncio.to_thread(storage.put_manifest, name, reference, bytes(body), request.headers.get("content-type"))
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
    peers: PeerRegistries | None = request.state.peers
    if peers is not None:
        copies = await peers.replicate(storage, name, reference, digest)
        if not acknowledged(copies):
            raise RegistryError(
                "UNAVAILABLE", f"manifest {name}:{reference} is stored on this manager, but no other manager took a copy "
                f"({'; '.join(f'{url}: {why}' for url, why in copies.failed.items())}): push again",
                {"failed": copies.failed}, status=503,
            )
        headers["X-Corral-Copies"] = str(1 + len(copies.made))
        if peers.record_tag is not None and not is_digest(reference):
            await peers.record_tag(name, reference, digest)
    if parsed.subject is not None:
        headers["OCI-Subject"] = str(parsed.subject)
    return Response(status_code=201, headers=headers)


# ----- blobs


async def blob(request: Request, storage: RegistryStorage) -> Response:
    name, digest = _name(request), parse_digest(request.path_params["digest"])
    if request.method == "DELETE":
        storage.delete_blob(name, digest)
        return Response(status_code=202, headers={"Docker-Content-Digest": str(digest)})
    try:
        path, stat = storage.blob_file(name, digest)
    except RegistryError:
        peers: PeerRegistries | None = request.state.peers
        if peers is None or not await peers.fetch_blob(storage, name, digest):
            raise
        path, stat = storage.blob_file(name, digest)
    # Streams the file in large pieces, answers Range requests (206/416); HEAD gets the headers from the stat alone.
    return BlobResponse(
        path, stat_result=stat, media_type="application/octet-stream",
        headers={"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'},
    )


# ----- uploads


def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


def _created(name: str, digest: Digest) -> Response:
    return Response(status_code=201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest)})


async def start_upload(request: Request, storage: RegistryStorage) -> Response:
    name = _name(request)
    mount = request.query_params.get("mount")
    if mount is not None:
        mounted = parse_digest(mount)
        source = request.query_params.get("from")
        if source is not None and storage.mount_blob(name, mounted, check_name(source)):
            return _created(name, mounted)
        # Not mountable: the spec says to start an ordinary upload instead.
    digest = _digest_param(request)
    upload_id = storage.start_upload(name)
    if digest is None:
        return Response(status_code=202, headers=_upload_headers(name, upload_id, 0))
    try:
        await receive_into(request, storage, name, upload_id, None)
        await asyncio.to_thread(storage.complete_upload, name, upload_id, digest)
    except BaseException:
        if _upload_exists(storage, name, upload_id):  # a monolithic push is not resumable
            storage.cancel_upload(name, upload_id)
        raise
    return _created(name, digest)


def _upload_exists(storage: RegistryStorage, name: str, upload_id: str) -> bool:
    try:
        storage.upload_size(name, upload_id)
        return True
    except (RegistryError, FileNotFoundError):
        return False


async def upload(request: Request, storage: RegistryStorage) -> Response:
    name, upload_id = _name(request), check_upload_id(request.path_params["upload"])
    size = storage.upload_size(name, upload_id)
    if request.method == "GET":
        return Response(status_code=204, headers=_upload_headers(name, upload_id, size))
    if request.method == "DELETE":
        storage.cancel_upload(name, upload_id)
        return Response(status_code=204)
    content_range = parse_content_range(request.headers.get("content-range"), request.headers.get("content-length"))
    if content_range is not None and content_range.start != size:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID",
            f"chunk starts at {content_range.start} but the upload has {size} bytes: send the chunk at offset {size}",
            {"offset": size}, status=416, headers=_upload_headers(name, upload_id, size),
        )
    if request.method == "PATCH":
        try:
            size = await receive_into(request, storage, name, upload_id, content_range)
        except ClientDisconnect:
            return Response(status_code=400)  # the client is gone; what arrived is kept for a resume
        return Response(status_code=202, headers=_upload_headers(name, upload_id, size))
    digest = _digest_param(request)  # PUT: an optional last chunk, then verify and store
    if digest is None:
        raise RegistryError("DIGEST_INVALID", "the 'digest' query parameter is required to finish an upload")
    await receive_into(request, storage, name, upload_id, content_range)
    await asyncio.to_thread(storage.complete_upload, name, upload_id, digest)
    return _created(name, digest)


# ----- discovery


async def tags(request: Request, storage: RegistryStorage) -> Response:
    name = _name(request)
    n, last = _page_params(request)
    page, link = _paginate(storage.tags(name), n, last, f"/v2/{name}/tags/list")
    return JSONResponse({"name": name, "tags": page}, headers=link)


async def referrers(request: Request, storage: RegistryStorage) -> Response:
    name, subject = _name(request), parse_digest(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType")
    found = await asyncio.to_thread(storage.referrers, name, subject, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type is not None else {}
    return JSONResponse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}, media_type=OCI_INDEX, headers=headers)
