"""Storage on disk: atomic blobs, uploads that leave nothing visible, tags, referrers, names."""

import json
from pathlib import Path

import pytest

from corral.registry import RegistryStorage
from corral.registry.errors import RegistryError
from corral.registry.references import parse_digest
from tests.registry.registry_helpers import OCI_MANIFEST, image_manifest, sha256


def upload(storage: RegistryStorage, name: str, data: bytes) -> str:
    upload_id = storage.start_upload(name)
    storage.append(name, upload_id, data)
    storage.complete_upload(name, upload_id, parse_digest(sha256(data)))
    return sha256(data)


def test_blob_is_invisible_until_its_upload_completes(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    digest = parse_digest(sha256(b"hello world"))
    upload_id = storage.start_upload("app")
    storage.append("app", upload_id, b"hello ")
    assert not storage.has_blob("app", digest)
    assert not storage.blob_path(digest).exists()
    storage.append("app", upload_id, b"world")
    assert storage.complete_upload("app", upload_id, digest) == 11
    assert storage.blob("app", digest).read_bytes() == b"hello world"
    assert list((tmp_path / "uploads").iterdir()) == []


def test_upload_survives_a_restart_and_is_rehashed(tmp_path: Path) -> None:
    first = RegistryStorage(tmp_path)
    upload_id = first.start_upload("app")
    first.append("app", upload_id, b"part one, ")
    second = RegistryStorage(tmp_path)  # a new process: no running hash in memory
    assert second.upload_size("app", upload_id) == 10
    second.append("app", upload_id, b"part two", expect_offset=10)
    second.complete_upload("app", upload_id, parse_digest(sha256(b"part one, part two")))
    assert second.has_blob("app", parse_digest(sha256(b"part one, part two")))


def test_out_of_order_append_is_416_and_changes_nothing(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload_id = storage.start_upload("app")
    storage.append("app", upload_id, b"abc")
    with pytest.raises(RegistryError) as caught:
        storage.append("app", upload_id, b"xyz", expect_offset=10)
    assert caught.value.status == 416
    assert storage.upload_size("app", upload_id) == 3


def test_digest_mismatch_removes_the_upload(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload_id = storage.start_upload("app")
    storage.append("app", upload_id, b"content")
    with pytest.raises(RegistryError) as caught:
        storage.complete_upload("app", upload_id, parse_digest(sha256(b"other")))
    assert caught.value.code == "DIGEST_INVALID"
    assert list((tmp_path / "uploads").iterdir()) == []
    assert list(storage.blob_digests()) == []


def test_upload_belongs_to_its_repository(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload_id = storage.start_upload("app")
    with pytest.raises(RegistryError) as caught:
        storage.append("other", upload_id, b"x")
    assert caught.value.code == "BLOB_UPLOAD_UNKNOWN"
    with pytest.raises(RegistryError):
        storage.upload_size("app", "../../etc")


@pytest.mark.parametrize("name", ["../etc", "a/../../b", "/abs", "UPPER", "a//b", "_layers", "a/_tags", "", "a" * 256])
def test_names_that_could_escape_or_clash_are_refused(tmp_path: Path, name: str) -> None:
    storage = RegistryStorage(tmp_path)
    with pytest.raises(RegistryError) as caught:
        storage.start_upload(name)
    assert caught.value.code == "NAME_INVALID"
    assert list((tmp_path / "repositories").iterdir()) == []


@pytest.mark.parametrize("digest", ["sha256:abc", "sha256:" + "G" * 64, "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha256", ":" + "0" * 64])
def test_malformed_digests_are_refused(digest: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_digest(digest)
    assert caught.value.code == "DIGEST_INVALID"


def test_manifest_put_writes_tag_and_referrer(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload(storage, "app", b"{}")
    upload(storage, "app", b"layer")
    body = image_manifest(b"{}", [b"layer"])
    digest, manifest = storage.put_manifest("app", "v1", body, OCI_MANIFEST)
    assert str(digest) == sha256(body) and manifest.blobs == [parse_digest(sha256(b"{}")), parse_digest(sha256(b"layer"))]
    assert storage.tags("app") == ["v1"] and storage.resolve("app", "v1") == digest
    subject = {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": len(body)}
    referrer = image_manifest(b"{}", [b"layer"], artifactType="application/x-sig", subject=subject)
    referrer_digest, _ = storage.put_manifest("app", sha256(referrer), referrer, OCI_MANIFEST)
    assert storage.referrers("app", digest) == [
        {"mediaType": OCI_MANIFEST, "digest": str(referrer_digest), "size": len(referrer), "artifactType": "application/x-sig"}
    ]
    assert storage.referrers("app", digest, "application/other") == []
    # no temporary files are left next to what was written
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_manifest_media_type_must_match_content_type(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload(storage, "app", b"{}")
    body = image_manifest(b"{}", [])
    with pytest.raises(RegistryError) as caught:
        storage.put_manifest("app", "v1", body, "application/vnd.docker.distribution.manifest.v2+json")
    assert caught.value.code == "MANIFEST_INVALID" and "does not match" in str(caught.value)
    schema1 = json.dumps({"schemaVersion": 1, "name": "app"}).encode()
    with pytest.raises(RegistryError, match="schemaVersion 1"):
        storage.put_manifest("app", "v1", schema1, None)
    assert storage.tags("app") == []
