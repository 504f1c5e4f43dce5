"""Secrets and configs as stored: one record shape, values sealed for secrets and plain for configs.

A record lives at `secrets/NAME` or `configs/NAME`. For a secret, `data` is
the AES-GCM ciphertext (see encryption.py) and `digest` the sha256 of that
ciphertext: nothing derived from the plaintext is kept but its size, so a
guessable secret cannot be confirmed from a hash. A config is not secret:
its `data` is the value itself. Listings get `ValueMetadata` only, never
`data`. Values are immutable: rotating is a new name and a service update,
and a value a service still uses cannot be removed.
"""

import base64
import hashlib
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corral.manager import keys
from corral.manager.access.encryption import seal, unseal
from corral.model.errors import Conflict, InvalidSpec, NotFound
from corral.model.service import ServiceSpec
from corral.store import Store

Kind = Literal["secret", "config"]
MAX_VALUE_BYTES = 500 * 1024  # as Swarm: values are files for containers, not a blob store
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"


class InUse(Conflict):
    """A secret or config cannot be removed while a service refers to it."""


class ValueMetadata(BaseModel):
    """What the API shows of a secret or config: never its value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    name: str = Field(pattern=NAME_PATTERN)
    created_at: float
    size: int = Field(ge=0, description="bytes of the value")
    digest: str = Field(description="sha256 of the stored bytes: the ciphertext for a secret, the value for a config")
    stack: str = Field(default="", description="the stack whose compose file defined it (removed with it), or empty")


class StoredValue(ValueMetadata):
    """The record in the store: the metadata and `data` (base64 of the ciphertext, or of a config's value)."""

    data: str

    def metadata(self) -> ValueMetadata:
        return ValueMetadata.model_validate(self.model_dump(exclude={"data"}))


def store_key(kind: Kind, name: str) -> str:
    return keys.secret_key(name) if kind == "secret" else keys.config_key(name)


def new_record(kind: Kind, name: str, value: bytes, now: float, data_key: bytes | None, stack: str = "") -> StoredValue:
    """The record for a new value; a secret needs the cluster's data key to be sealed with. `stack`: the
    stack that defined it, if any (`corral stack rm` removes it then)."""
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidSpec("data", f"a {kind} may hold at most {MAX_VALUE_BYTES} bytes, this one has {len(value)}")
    if kind == "secret":
        if data_key is None:
            raise ValueError("a secret is sealed with the cluster's data key")
        stored = seal(data_key, store_key(kind, name), value)
    else:
        stored = value
    try:
        return StoredValue(
            kind=kind,
            name=name,
            created_at=now,
            size=len(value),
            digest=hashlib.sha256(stored).hexdigest(),
            data=base64.b64encode(stored).decode(),
            stack=stack,
        )
    except ValueError:
        raise InvalidSpec("name", f"invalid {kind} name {name!r}: use letters, digits, '_', '.' and '-'") from None


def value_of(record: StoredValue, data_key: bytes | None) -> bytes:
    """The value a record holds, unsealed for a secret (WrongKey if the data key is not the one it was sealed with)."""
    stored = base64.b64decode(record.data)
    if record.kind == "config":
        return stored
    if data_key is None:
        raise ValueError("a secret is unsealed with the cluster's data key")
    return unseal(data_key, store_key(record.kind, record.name), stored, f"secret {record.name!r}")


def users(kind: Kind, name: str, services: Iterable[ServiceSpec]) -> list[str]:
    """The services whose spec refers to secret/config `name`."""
    return sorted(
        spec.name
        for spec in services
        if any(reference.source == name for reference in (spec.secrets if kind == "secret" else spec.configs))
    )


async def create(store: Store, kind: Kind, name: str, value: bytes, now: float, data_key: bytes | None = None) -> ValueMetadata:
    stored = new_record(kind, name, value, now, data_key)
    try:
        await store.put(store_key(kind, name), stored.model_dump(mode="json"), expect=0)
    except Conflict:
        raise Conflict(
            f"{kind} {name!r} already exists; values do not change: create a new {kind} and update the services"
        ) from None
    return stored.metadata()


async def read(store: Store, kind: Kind, name: str, data_key: bytes | None = None) -> bytes:
    return value_of(await record(store, kind, name), data_key)


async def inspect(store: Store, kind: Kind, name: str) -> ValueMetadata:
    return (await record(store, kind, name)).metadata()


async def list_metadata(store: Store, kind: Kind) -> list[ValueMetadata]:
    rows, _ = await store.range(keys.SECRETS if kind == "secret" else keys.CONFIGS)
    return [StoredValue.model_validate(row.value).metadata() for row in rows]


async def remove(store: Store, kind: Kind, name: str, services: Iterable[ServiceSpec]) -> ValueMetadata:
    """Delete a value no service uses; InUse naming the services otherwise."""
    found = await store.get(store_key(kind, name))
    if found is None:
        raise NotFound(f"no {kind} named {name!r}")
    using = users(kind, name, services)
    if using:
        raise InUse(f"{kind} {name!r} is used by {', '.join(using)}: update or remove those services first")
    await store.delete(store_key(kind, name), expect=found.mod_revision)
    return StoredValue.model_validate(found.value).metadata()


async def record(store: Store, kind: Kind, name: str) -> StoredValue:
    """The stored record (NotFound naming it): for a secret, `data` is the ciphertext."""
    found = await store.get(store_key(kind, name))
    if found is None:
        raise NotFound(f"no {kind} named {name!r}")
    return StoredValue.model_validate(found.value)
