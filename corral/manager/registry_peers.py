"""The registries of the other managers of this control plane, as this manager's registry reaches them.

Each manager records its registry's HOST:PORT in its `managers/NAME` record (managers.py); the peers of a
manager are every other record with a registry. They authenticate to each other as `corral-peer` with a
secret every manager of the cluster derives alike from the cluster's data key (the shared `kek`), so no
token has to be made or copied. See corral/registry/replication.py for what is copied and fetched.
"""

import hashlib
import hmac

from corral.manager import keys
from corral.manager.context import ManagerContext
from corral.manager.registry_server import is_loopback, split_listen
from corral.model.errors import CorralError
from corral.pki import client_context
from corral.registry.errors import RegistryError
from corral.registry.references import Digest, parse_digest
from corral.registry.replication import PeerRegistries, TagRecord

SECRET_PREFIX = "corral-peer-"


def peer_secret(data_key: bytes) -> str:
    """The password one manager's registry gives another's (the same on every manager of the cluster)."""
    return SECRET_PREFIX + hmac.new(data_key, b"corral registry peer", hashlib.sha256).hexdigest()


def registry_url(listen: str) -> str:
    """HOST:PORT -> the registry's base URL: plain HTTP on loopback, TLS elsewhere (as registry_server.py serves it)."""
    host, port = split_listen(listen)
    shown = f"[{host}]" if ":" in host else host
    return f"{'http' if is_loopback(host) else 'https'}://{shown}:{port}"


async def registries(ctx: ManagerContext) -> list[str]:
    """HOST:PORT of every manager's registry, this one's first (what agents may pull the cluster's images from)."""
    own = ctx.settings.registry_listen
    records, _ = await ctx.store.range(keys.MANAGERS)
    found = [str(r.value["registry"]) for r in records if r.value.get("registry") and r.value["registry"] != own]
    return ([own] if own else []) + sorted(set(found))


def peer_registries(ctx: ManagerContext) -> PeerRegistries | None:
    """None when this manager cannot reach peers (no registry, or no cluster data key to derive the secret)."""
    if ctx.settings.registry_listen is None or ctx.data_key is None:
        return None

    async def peers() -> list[str]:
        return [registry_url(listen) for listen in (await registries(ctx))[1:]]

    async def record_tag(name: str, tag: str, digest: Digest | None) -> None:
        try:
            await record(ctx, name, tag, digest)
        except CorralError as err:
            raise RegistryError(
                "UNAVAILABLE", f"{name}:{tag} is stored, but the cluster cannot record the tag ({err}): push again", status=503
            ) from err

    async def recorded_tag(name: str, tag: str) -> TagRecord | None:
        found = await ctx.store.get(tag_key(name, tag))
        if found is None or found.value is None:
            return None
        digest = found.value.get("digest")
        return TagRecord(parse_digest(str(digest)) if digest else None)

    ca = ctx.settings.ca_file
    verify = client_context(ca.read_bytes()) if ca.exists() else True
    return PeerRegistries(peers, peer_secret(ctx.data_key), verify, record_tag=record_tag, recorded_tag=recorded_tag)


def tag_key(name: str, tag: str) -> str:
    return f"{keys.REGISTRY_TAGS}{name}:{tag}"


async def record(ctx: ManagerContext, name: str, tag: str, digest: Digest | None) -> None:
    """Record which manifest NAME:TAG names for every manager's registry (None: the tag is gone, so every registry drops
    it when next asked for it)."""
    await ctx.store.put(tag_key(name, tag), {"digest": str(digest) if digest is not None else None})
