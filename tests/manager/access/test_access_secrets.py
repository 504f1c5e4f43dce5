import base64
from pathlib import Path

import orjson
import pytest

from corral.manager.access import secrets
from corral.manager.access.encryption import WrongKey, open_data_key
from corral.model import FileReference, ServiceSpec
from corral.model.errors import Conflict, InvalidSpec, NotFound
from corral.store import Store

NOW = 1_800_000_000.0
PLAINTEXT = b"s3cr3t-p4ssw0rd-\x00\xff-bytes"


def _uses(kind: str, name: str) -> ServiceSpec:
    reference = FileReference(source=name, target=f"/run/secrets/{name}")
    return ServiceSpec(name="app_web", image="img", **{f"{kind}s": [reference]})  # type: ignore[arg-type]


def test_the_plaintext_never_appears_in_the_encoded_record() -> None:
    record = secrets.new_record("secret", "db", PLAINTEXT, NOW, bytes(32))
    encoded = orjson.dumps(record.model_dump(mode="json"))
    for form in (PLAINTEXT, base64.b64encode(PLAINTEXT), PLAINTEXT.hex().encode()):
        assert form not in encoded
    assert record.size == len(PLAINTEXT)
    assert "data" not in record.metadata().model_dump()


def test_a_config_is_stored_plain() -> None:
    record = secrets.new_record("config", "nginx.conf", b"listen 80;", NOW, None)
    assert base64.b64decode(record.data) == b"listen 80;"
    assert secrets.value_of(record, None) == b"listen 80;"


def test_bad_names_and_oversized_values_are_invalid() -> None:
    with pytest.raises(InvalidSpec, match="invalid secret name"):
        secrets.new_record("secret", "../etc", b"x", NOW, bytes(32))
    with pytest.raises(InvalidSpec, match="at most"):
        secrets.new_record("config", "big", b"x" * (secrets.MAX_VALUE_BYTES + 1), NOW, None)


async def test_create_read_list_inspect_remove(store: Store, tmp_path: Path) -> None:
    data_key = await open_data_key(store, tmp_path)
    meta = await secrets.create(store, "secret", "db", PLAINTEXT, NOW, data_key)
    assert meta.name == "db" and meta.kind == "secret"
    assert await secrets.read(store, "secret", "db", data_key) == PLAINTEXT
    assert [m.name for m in await secrets.list_metadata(store, "secret")] == ["db"]
    assert await secrets.list_metadata(store, "config") == []
    assert (await secrets.inspect(store, "secret", "db")) == meta
    with pytest.raises(Conflict, match="already exists"):
        await secrets.create(store, "secret", "db", b"other", NOW, data_key)
    await secrets.remove(store, "secret", "db", [])
    with pytest.raises(NotFound):
        await secrets.read(store, "secret", "db", data_key)


async def test_a_value_in_use_cannot_be_removed(store: Store) -> None:
    await secrets.create(store, "config", "site", b"x", NOW)
    with pytest.raises(secrets.InUse, match="used by app_web"):
        await secrets.remove(store, "config", "site", [_uses("config", "site")])
    await secrets.remove(store, "config", "site", [_uses("secret", "site")])  # a secret of the same name is another thing


async def test_the_secrets_bytes_are_nowhere_in_the_store_file(store: Store, tmp_path: Path) -> None:
    data_key = await open_data_key(store, tmp_path)
    await secrets.create(store, "secret", "db", PLAINTEXT, NOW, data_key)
    await store.close()
    for path in tmp_path.iterdir():
        if path.is_file():
            content = path.read_bytes()
            assert PLAINTEXT not in content and base64.b64encode(PLAINTEXT) not in content, path


async def test_a_wrong_data_key_fails_clearly(store: Store, tmp_path: Path) -> None:
    data_key = await open_data_key(store, tmp_path)
    await secrets.create(store, "secret", "db", PLAINTEXT, NOW, data_key)
    with pytest.raises(WrongKey, match="cannot decrypt secret 'db'"):
        await secrets.read(store, "secret", "db", bytes(32))
