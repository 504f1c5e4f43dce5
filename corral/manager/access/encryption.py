"""Envelope encryption for secret values: a data key per cluster, wrapped by a key-encryption key.

The data-encryption key (DEK, 256 random bits) encrypts every secret value
with AES-GCM; it is stored in the store only wrapped (AES-GCM again) by the
key-encryption key (KEK). The KEK is either a random 256-bit key in
DATA_DIR/kek (mode 0600), or, with `corral manager --autolock`, derived
from a passphrase with scrypt (salt kept beside the wrapped DEK) so that
neither the store nor the data dir alone can decrypt anything, as Swarm's
autolock. A stolen store file is useless without the KEK; rotating the KEK
rewraps one small record, not every secret.

Each value is sealed with associated data naming where it is stored
(`secrets/NAME`), so a ciphertext copied under another name fails to open.
"""

import asyncio
import base64
import os
import secrets
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict

from corral.manager import keys
from corral.model.errors import Conflict, CorralError
from corral.pki.files import write_private
from corral.store import Store

KEK_FILE = "kek"
KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_CONTEXT = b"corral data-encryption key"
# scrypt's cost: 2^15 x 8 x 128 bytes = 32 MiB and about 0.1 s, once per manager start
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1

KekKind = Literal["file", "passphrase"]


class WrongKey(CorralError):
    """A key cannot open what it should: the wrong KEK or passphrase, or a value that was tampered with."""

    status = 500


class WrappedKey(BaseModel):
    """The cluster's data key as stored (cluster/data-key): encrypted, with what is needed to find its KEK."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kek: KekKind
    salt: str | None = None  # base64, when the KEK is derived from a passphrase
    sealed: str  # base64 of nonce + AES-GCM ciphertext of the DEK


def seal(key: bytes, associated: str, plaintext: bytes) -> bytes:
    """nonce + AES-GCM(key, plaintext), bound to `associated` (where the value is stored)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated.encode())


def unseal(key: bytes, associated: str, sealed: bytes, what: str) -> bytes:
    """The plaintext `seal` sealed; WrongKey naming `what` when the key, the place or the bytes differ."""
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated.encode())
    except (InvalidTag, ValueError):
        raise WrongKey(f"cannot decrypt {what}: wrong key, or the stored bytes were changed") from None


def load_or_create_kek(data_dir: Path) -> bytes:
    """The key-encryption key in DATA_DIR/kek (0600), made at first start."""
    path = data_dir / KEK_FILE
    if not path.exists():
        key = secrets.token_bytes(KEY_BYTES)
        write_private(path, base64.b64encode(key) + b"\n")
        return key
    return load_kek(data_dir)


def load_kek(data_dir: Path) -> bytes:
    """The key-encryption key in DATA_DIR/kek, which must be there: the store's data key was wrapped with it."""
    path = data_dir / KEK_FILE
    if not path.exists():
        raise WrongKey(f"{path} is missing, but the store holds a data key wrapped with it: restore it from a backup")
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise WrongKey(f"{path} is not a key-encryption key ({KEY_BYTES} bytes in base64); restore it from a backup")
    return key


def derive_kek(passphrase: str, salt: bytes) -> bytes:
    """The key-encryption key of an autolocked cluster: scrypt of the passphrase."""
    if not passphrase:
        raise WrongKey("the autolock passphrase is empty")
    return Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())


def wrap(data_key: bytes, kek: bytes, kind: KekKind, salt: bytes | None = None) -> WrappedKey:
    sealed = seal(kek, _WRAP_CONTEXT.decode(), data_key)
    return WrappedKey(
        kek=kind, salt=base64.b64encode(salt).decode() if salt else None, sealed=base64.b64encode(sealed).decode()
    )


def unwrap(wrapped: WrappedKey, kek: bytes) -> bytes:
    hint = "the autolock passphrase" if wrapped.kek == "passphrase" else "DATA_DIR/kek"
    return unseal(kek, _WRAP_CONTEXT.decode(), base64.b64decode(wrapped.sealed), f"the cluster's data key with {hint}")


async def open_data_key(store: Store, data_dir: Path, passphrase: str | None = None) -> bytes:
    """The cluster's data key: unwrapped from the store, or made and stored wrapped at first start.

    With a passphrase (autolock) the KEK is derived from it, else it is DATA_DIR/kek. An autolocked
    cluster cannot be opened without its passphrase (the error says how to give it); a passphrase given
    to a cluster that is not autolocked turns autolock on (as `docker swarm update --autolock=true`).
    """
    found = await store.get(keys.DATA_KEY)
    if found is None:
        kind: KekKind = "passphrase" if passphrase is not None else "file"
        salt = secrets.token_bytes(16) if passphrase is not None else None
        if passphrase is not None and salt is not None:
            kek = await asyncio.to_thread(derive_kek, passphrase, salt)  # scrypt takes ~0.1 s of CPU: off the loop
        else:
            kek = load_or_create_kek(data_dir)
        data_key = secrets.token_bytes(KEY_BYTES)
        try:
            await store.put(keys.DATA_KEY, wrap(data_key, kek, kind, salt).model_dump(mode="json"), expect=0)
            return data_key
        except Conflict:  # another manager made it first: use theirs
            found = await store.get(keys.DATA_KEY)
            assert found is not None
    wrapped = WrappedKey.model_validate(found.value)
    if wrapped.kek == "passphrase":
        if passphrase is None or wrapped.salt is None:
            raise WrongKey(
                "the cluster is autolocked: start the manager with --autolock and its passphrase "
                "(CORRAL_UNLOCK_KEY, --unlock-key-file, or typed at the prompt)"
            )
        return unwrap(wrapped, await asyncio.to_thread(derive_kek, passphrase, base64.b64decode(wrapped.salt)))
    data_key = unwrap(wrapped, load_kek(data_dir))
    if passphrase is not None:
        await _lock(store, data_dir, data_key, passphrase, found.mod_revision)
    return data_key


async def _lock(store: Store, data_dir: Path, data_key: bytes, passphrase: str, revision: int) -> None:
    """Turn autolock on for a cluster whose KEK is DATA_DIR/kek: rewrap the data key with the passphrase's KEK
    (only if nobody rewrapped it meanwhile), then delete DATA_DIR/kek, which no longer opens anything."""
    salt = secrets.token_bytes(16)
    kek = await asyncio.to_thread(derive_kek, passphrase, salt)
    await store.put(keys.DATA_KEY, wrap(data_key, kek, "passphrase", salt).model_dump(mode="json"), expect=revision)
    (data_dir / KEK_FILE).unlink(missing_ok=True)
