"""Reading pushed manifests: which blobs and manifests they reference, their subject.

Pure: bytes and the Content-Type in, a `Manifest` out, or MANIFEST_INVALID
naming what is wrong. Knows OCI image manifests and indexes and Docker
schema 2 manifests and manifest lists (multi-arch images are indexes/lists).
"""

import json
from dataclasses import dataclass, field


from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corral.registry.errors import RegistryError
from corral.registry.references import Digest, parse_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
EMPTY_JSON = "application/vnd.oci.empty.v1+json"
MAX_MANIFEST = 4 * 1024 * 1024  # the size the spec asks registries to accept at least
MAX_DEPTH = 32  # nesting of a manifest's JSON (real ones nest 4 levels: manifest, layers, descriptor, annotations)


class DescriptorBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    mediaType: str
    digest: str
    size: int = Field(ge=0)
    artifactType: str | None = None
    annotations: dict[str, str] | None = None


class ManifestBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    schemaVersion: int
    mediaType: str | None = None
    artifactType: str | None = None
    config: DescriptorBody | None = None
    layers: list[DescriptorBody] | None = None
    manifests: list[DescriptorBody] | None = None
    subject: DescriptorBody | None = None
    annotations: dict[str, str] | None = None


@dataclass(frozen=True)
class Manifest:
    media_type: str
    blobs: list[Digest] = field(default_factory=list)  # config and layers
    children: list[Digest] = field(default_factory=list)  # manifests of an index
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    sizes: dict[Digest, int] = field(default_factory=dict)  # size of each blob and child

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    content_type = (content_type or "").split(";")[0].strip() or None
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise _invalid(f"manifest is not JSON: {err}") from err
    except RecursionError:
        raise _invalid(f"manifest is nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(raw, dict):
        raise _invalid("manifest must be a JSON object")
    if _depth(raw) > MAX_DEPTH:
        raise _invalid(f"manifest is nested deeper than {MAX_DEPTH} levels")
    try:
        body = ManifestBody.model_validate(raw)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise _invalid(f"manifest field {where}: {problem['msg']}") from err
    if body.schemaVersion != 2:
        raise _invalid(f"manifest schemaVersion {body.schemaVersion} unsupported: only schema 2 (Docker v2, OCI) is accepted")
    media_type = body.mediaType or content_type or (OCI_INDEX if body.manifests is not None else OCI_MANIFEST)
    if body.mediaType and content_type and body.mediaType != content_type:
        raise _invalid(f"manifest mediaType {body.mediaType!r} does not match Content-Type {content_type!r}")
    if media_type not in IMAGE_TYPES + INDEX_TYPES:
        raise _invalid(f"manifest media type {media_type!r} unsupported: expected one of {', '.join(IMAGE_TYPES + INDEX_TYPES)}")
    sizes: dict[Digest, int] = {}

    def digests(descriptors: list[DescriptorBody], where: str) -> list[Digest]:
        found = []
        for i, descriptor in enumerate(descriptors):
            try:
                digest = parse_digest(descriptor.digest)
            except RegistryError as err:
                raise _invalid(f"manifest field {where}.{i}.digest: {err}") from err
            sizes[digest] = descriptor.size
            found.append(digest)
        return found

    subject = digests([body.subject], "subject")[0] if body.subject else None
    if media_type in INDEX_TYPES:
        if body.manifests is None:
            raise _invalid("an index needs a 'manifests' list")
        return Manifest(
            media_type, children=digests(body.manifests, "manifests"), subject=subject,
            artifact_type=body.artifactType, annotations=body.annotations or {}, sizes=sizes,
        )
    if body.config is None:
        raise _invalid("an image manifest needs a 'config' descriptor")
    blobs = digests([body.config], "config") + digests(body.layers or [], "layers")
    artifact_type = body.artifactType or body.config.mediaType
    return Manifest(media_type, blobs=blobs, subject=subject, artifact_type=artifact_type, annotations=body.annotations or {}, sizes=sizes)


def _depth(value: object) -> int:
    """How deeply JSON data nests (an object or array is one level), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((inner, depth + 1) for inner in children)
    return deepest


def _invalid(message: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message)


