import base64
import stat
from pathlib import Path

import pytest

from corral.manager import keys
from corral.manager.access.encryption import (
    KEY_BYTES,
    WrongKey,
    load_or_create_kek,
    open_data_key,
    seal,
    unseal,
    unwrap,
    wrap,
)
from corral.store import Store

KEY = bytes(range(32))


def test_seal_and_unseal_round_trip_bound_to_the_place() -> None:
    sealed = seal(KEY, "secrets/db", b"hunter2")
    assert b"hunter2" not in sealed
    assert unseal(KEY, "secrets/db", sealed, "x") == b"hunter2"
    with pytest.raises(WrongKey, match="cannot decrypt x"):
        unseal(KEY, "secrets/other", sealed, "x")  # copied under another name
    with pytest.raises(WrongKey):
        unseal(bytes(32), "secrets/db", sealed, "x")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(WrongKey):
        unseal(KEY, "secrets/db", tampered, "x")


def test_the_data_key_is_wrapped_and_a_wrong_kek_fails_clearly() -> None:
    wrapped = wrap(KEY, b"k" * 32, "file")
    assert unwrap(wrapped, b"k" * 32) == KEY
    with pytest.raises(WrongKey, match="data key with DATA_DIR/kek"):
        unwrap(wrapped, b"w" * 32)


def test_the_kek_file_is_0600_and_reused(tmp_path: Path) -> None:
    kek = load_or_create_kek(tmp_path)
    assert len(kek) == KEY_BYTES
    assert stat.S_IMODE((tmp_path / "kek").stat().st_mode) == 0o600
    assert load_or_create_kek(tmp_path) == kek


def test_a_damaged_kek_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kek").write_text("not base64 at all!")
    with pytest.raises(WrongKey, match="not a key-encryption key"):
        load_or_create_kek(tmp_path)


async def test_the_data_key_survives_a_restart_and_is_stored_only_wrapped(store: Store, tmp_path: Path) -> None:
    data_key = await open_data_key(store, tmp_path)
    assert await open_data_key(store, tmp_path) == data_key
    stored = await store.get(keys.DATA_KEY)
    assert stored is not None
    assert base64.b64encode(data_key).decode() not in str(stored.value)
    assert data_key.hex() not in str(stored.value)


async def test_another_data_dirs_kek_cannot_open_the_store(store: Store, tmp_path: Path) -> None:
    await open_data_key(store, tmp_path / "a")
    load_or_create_kek(tmp_path / "b")
    with pytest.raises(WrongKey, match="wrong key"):
        await open_data_key(store, tmp_path / "b")
    with pytest.raises(WrongKey, match="missing"):
        await open_data_key(store, tmp_path / "c")
    assert not (tmp_path / "c" / "kek").exists()  # a missing KEK is not replaced by a new one


async def test_autolock_needs_the_same_passphrase(store: Store, tmp_path: Path) -> None:
    data_key = await open_data_key(store, tmp_path, passphrase="correct horse")
    assert not (tmp_path / "kek").exists()
    assert await open_data_key(store, tmp_path, passphrase="correct horse") == data_key
    with pytest.raises(WrongKey, match="autolock passphrase"):
        await open_data_key(store, tmp_path, passphrase="wrong horse")
    with pytest.raises(WrongKey, match="autolocked"):
        await open_data_key(store, tmp_path)


async def test_a_passphrase_turns_autolock_on_for_a_file_kek_cluster(store: Store, tmp_path: Path) -> None:
    data_key = await open_data_key(store, tmp_path)
    assert (tmp_path / "kek").exists()
    assert await open_data_key(store, tmp_path, passphrase="p") == data_key  # the same data key: every secret still opens
    assert not (tmp_path / "kek").exists()  # the file KEK is gone: the data dir alone opens nothing now
    with pytest.raises(WrongKey, match="autolocked"):
        await open_data_key(store, tmp_path)
    with pytest.raises(WrongKey, match="autolock passphrase"):
        await open_data_key(store, tmp_path, passphrase="q")
    assert await open_data_key(store, tmp_path, passphrase="p") == data_key
