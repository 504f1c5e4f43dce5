"""API tokens: made once, shown once, stored hashed, checked on every request.

A token reads `corral_<id>_<secret>`: the id (12 hex digits) finds the record
at `tokens/<id>` without a scan, the secret (32 random bytes, URL-safe
base64) proves possession. The record keeps only sha256(secret). A plain
hash, not a slow password hash (bcrypt, scrypt), is right here because the
secret is 256 random bits made by us, not a human's password: no dictionary
or brute-force attack can get through 2^256 guesses, and a fast hash keeps
checking a token on every request cheap. The comparison is constant time.

`verify` is a pure function of the record, the presented token and `now`;
the store functions around it do the I/O.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corral.manager import keys
from corral.manager.access.roles import TOKEN_ROLES, Role
from corral.model.errors import InvalidSpec, NotFound, Unauthorized
from corral.pki.files import write_private
from corral.store import Store

ADMIN_TOKEN_FILE = "admin-token"
ADMIN_TOKEN_NAME = "admin"
_ID_BYTES = 6
_SECRET_BYTES = 32
_FORMAT = re.compile(r"corral_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class TokenRecord(BaseModel):
    """A token as stored: who it is for and what it may do, never the token itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9a-f]{12}$")
    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,63}$")
    role: Role
    secret_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    @field_validator("role")
    @classmethod
    def _a_token_role(cls, role: Role) -> Role:
        if role not in TOKEN_ROLES:
            raise ValueError(f"a token's role is one of {', '.join(r.value for r in TOKEN_ROLES)}")
        return role

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def new_token(name: str, role: Role, now: float, expires_at: float | None = None) -> tuple[str, TokenRecord]:
    """A fresh token's text (to show once) and its record (to store)."""
    if expires_at is not None and expires_at <= now:
        raise InvalidSpec("expires", "the expiry must be in the future")
    token_id, secret = secrets.token_hex(_ID_BYTES), secrets.token_urlsafe(_SECRET_BYTES)
    try:
        record = TokenRecord(
            id=token_id, name=name, role=role, secret_sha256=_digest(secret), created_at=now, expires_at=expires_at
        )
    except ValidationError as error:
        problem = error.errors()[0]
        raise InvalidSpec(".".join(str(part) for part in problem["loc"]), problem["msg"]) from None
    return f"corral_{token_id}_{secret}", record


def token_id(presented: str) -> str:
    """The id in a presented token, to find its record; Unauthorized when it is no token of ours."""
    return _parse(presented)[0]


def verify(record: TokenRecord, presented: str, now: float) -> Role:
    """The role `presented` carries, if it is the token of `record`, not revoked and not expired."""
    presented_id, secret = _parse(presented)
    if presented_id != record.id or not hmac.compare_digest(_digest(secret), record.secret_sha256):
        raise Unauthorized("invalid token: it matches no token of this cluster")
    if record.revoked:
        raise Unauthorized(f"token {record.name!r} was revoked; ask an admin for a new one (`corral token create`)")
    if record.expires_at is not None and now >= record.expires_at:
        raise Unauthorized(f"token {record.name!r} has expired; ask an admin for a new one (`corral token create`)")
    return record.role


async def create_token(
    store: Store, name: str, role: Role, now: float, expires_at: float | None = None
) -> tuple[str, TokenRecord]:
    text, record = new_token(name, role, now, expires_at)
    await store.put(keys.token_key(record.id), record.model_dump(mode="json"), expect=0)
    return text, record


async def list_tokens(store: Store) -> list[TokenRecord]:
    rows, _ = await store.range(keys.TOKENS)
    return sorted((TokenRecord.model_validate(row.value) for row in rows), key=lambda record: record.created_at)


async def revoke_token(store: Store, token_id: str, now: float) -> TokenRecord:
    """Mark a token revoked (kept, for the audit trail); revoking it again changes nothing."""
    current = await store.get(keys.token_key(token_id))
    if current is None:
        raise NotFound(f"no token with id {token_id!r} (see `corral token ls`)")
    record = TokenRecord.model_validate(current.value)
    if record.revoked:
        return record
    revoked = record.model_copy(update={"revoked_at": now})
    await store.put(keys.token_key(token_id), revoked.model_dump(mode="json"), expect=current.mod_revision)
    return revoked


async def authenticate(
    store: Store, presented: str | None, now: float, known: Mapping[str, dict[str, Any]] | None = None
) -> TokenRecord:
    """The record of the token a request presents; Unauthorized when missing or not valid.

    `known`: the tokens' records the manager's cache holds (fed by the store's watch; a revocation through this
    manager waits for it): a token found there needs no store round, so requests are answered while the store
    has no quorum. A token not there yet (just made through another manager) is read from the store."""
    if not presented:
        raise Unauthorized("missing token: send `Authorization: Bearer <token>` (see `corral token create`)")
    key = keys.token_key(token_id(presented))
    value = known.get(key) if known is not None else None
    if value is None:
        found = await store.get(key)
        if found is None:
            raise Unauthorized("invalid token: it matches no token of this cluster")
        value = found.value
    record = TokenRecord.model_validate(value)
    verify(record, presented, now)
    return record


async def ensure_admin_token(store: Store, data_dir: Path, now: float) -> Path:
    """DATA_DIR/admin-token (0600), holding a valid admin token: kept when it still works, else made anew."""
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        try:
            record = await authenticate(store, path.read_text().strip(), now)
            if record.role == Role.admin:
                return path
        except Unauthorized:
            pass  # revoked, expired, or from another store: replace it
    text, _ = await create_token(store, ADMIN_TOKEN_NAME, Role.admin, now)
    write_private(path, (text + "\n").encode())
    return path


def _parse(presented: str) -> tuple[str, str]:
    match = _FORMAT.fullmatch(presented.strip())
    if match is None:
        raise Unauthorized("malformed token: expected corral_<id>_<secret> as `corral token create` prints it")
    return match.group(1), match.group(2)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()

