"""/v1/images and /v1/registry/gc: what the manager's image registry holds, tag removal, garbage collection.

The registry's own /v2/ API is for image tools; these routes are for
`corral image` and `corral registry`. gc runs here because only the manager
knows which images its services and tasks use: those are kept.
"""

import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from corral.manager.api.openapi import error_responses
from corral.manager.api.deps import context
from corral.manager import registry_peers
from corral.manager.context import ManagerContext
from corral.model.errors import InvalidSpec, NotFound
from corral.registry import RegistryStorage, collect_garbage, repository_reference
from corral.registry.errors import RegistryError
from corral.registry.references import is_digest

router = APIRouter(prefix="/v1", tags=["images"], responses=error_responses(404))  # 404: the manager runs no registry


class ImageView(BaseModel):
    repository: str
    tag: str
    digest: str
    media_type: str
    size: int  # bytes of the manifest and every blob it names (for an index: of all its images)


class GcResult(BaseModel):
    removed_manifests: list[str]
    removed_blobs: list[str]
    freed_bytes: int
    kept_blobs: int
    kept_images: list[str]  # the images of services and tasks, kept whatever their tags


def _storage(ctx: ManagerContext) -> RegistryStorage:
    if ctx.settings.registry_listen is None:
        raise NotFound("this manager runs no image registry (started with --no-registry)")
    return RegistryStorage(ctx.settings.registry_root)


def _size(storage: RegistryStorage, name: str, digest_text: str) -> int:
    stored = storage.manifest(name, digest_text)
    manifest = storage.parsed(name, stored.digest)
    if not manifest.is_index:
        return stored.size + sum(manifest.sizes.values())
    seen: dict[str, int] = {}
    for child in manifest.children:
        try:
            child_manifest = storage.parsed(name, child)
        except RegistryError:
            continue
        seen[str(child)] = manifest.sizes[child]
        seen.update({str(d): s for d, s in child_manifest.sizes.items()})
    return stored.size + sum(seen.values())


def list_images(storage: RegistryStorage) -> list[ImageView]:
    images = []
    for name in storage.repository_names():
        for tag in storage.tags(name):
            try:
                stored = storage.manifest(name, tag)
                size = _size(storage, name, str(stored.digest))
            except RegistryError:
                continue  # deleted while we looked
            images.append(ImageView(repository=name, tag=tag, digest=str(stored.digest), media_type=stored.media_type, size=size))
    return images


@router.get("/images", response_model=list[ImageView])
async def get_images(ctx: ManagerContext = Depends(context)) -> list[ImageView]:
    return await anyio.to_thread.run_sync(list_images, _storage(ctx))


@router.delete("/images/{reference:path}", response_model=ImageView)
async def remove_image(reference: str, ctx: ManagerContext = Depends(context)) -> ImageView:
    """Remove one tag (REPO:TAG); its blobs go at the next gc unless something else needs them."""
    storage = _storage(ctx)
    name, tag = repository_reference(reference)
    if is_digest(tag) or ":" not in reference.rpartition("/")[2]:
        raise InvalidSpec("reference", f"{reference!r} is not REPOSITORY:TAG (e.g. app:2)")
    try:
        stored = storage.manifest(name, tag)
        view = ImageView(repository=name, tag=tag, digest=str(stored.digest), media_type=stored.media_type, size=_size(storage, name, str(stored.digest)))
        storage.delete_manifest(name, tag)
    except RegistryError as err:
        if err.status == 404:
            raise NotFound(f"image {name}:{tag} not found in the registry (see `corral image ls`)") from err
        raise InvalidSpec("reference", err.message) from err
    await registry_peers.record(ctx, name, tag, None)  # the other managers' registries drop the tag when next asked
    return view


def images_in_use(ctx: ManagerContext) -> list[str]:
    images = {versioned.obj.spec.image for versioned in ctx.cache.services.values()}
    images |= {v.obj.previous_spec.image for v in ctx.cache.services.values() if v.obj.previous_spec is not None}  # rollback target
    images |= {v.obj.spec.image for v in ctx.cache.tasks.values() if not v.obj.terminal}  # containers that may still run
    return sorted(images)


@router.post("/registry/gc", response_model=GcResult)
async def registry_gc(grace: float = 3600.0, ctx: ManagerContext = Depends(context)) -> GcResult:
    """Mark and sweep; blobs younger than `grace` seconds (a push in flight) are left for next time."""
    if grace < 0:
        raise InvalidSpec("grace", f"must be zero or more seconds, got {grace:g}")
    storage = _storage(ctx)
    keep = images_in_use(ctx)
    report = await anyio.to_thread.run_sync(lambda: collect_garbage(storage, keep=keep, grace=grace))
    return GcResult(
        removed_manifests=report.removed_manifests, removed_blobs=report.removed_blobs,
        freed_bytes=report.freed_bytes, kept_blobs=report.kept_blobs, kept_images=keep,
    )
