"""Garbage collection keeps what tags, running tasks and referrers need, and nothing else."""

from pathlib import Path

import pytest

from corral.registry import RegistryStorage, collect_garbage, repository_reference
from corral.registry.references import parse_digest
from tests.registry.registry_helpers import OCI_MANIFEST, image_manifest, sha256


def push(storage: RegistryStorage, name: str, tag: str, layers: list[bytes], **extra: object) -> str:
    for data in [b"{}", *layers]:
        upload_id = storage.start_upload(name)
        storage.append(name, upload_id, data)
        storage.complete_upload(name, upload_id, parse_digest(sha256(data)))
    body = image_manifest(b"{}", layers, **extra)
    digest, _ = storage.put_manifest(name, tag, body, OCI_MANIFEST)
    return str(digest)


def blobs(storage: RegistryStorage) -> set[str]:
    return {str(d) for d in storage.blob_digests()}


def test_untagged_images_are_collected_tagged_ones_kept(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    kept = push(storage, "app", "1", [b"shared", b"only in 1"])
    dropped = push(storage, "app", "2", [b"shared", b"only in 2"])
    storage.delete_manifest("app", "2")  # the tag goes; the manifest is now untagged
    report = collect_garbage(storage, grace=0)
    assert report.removed_manifests == [f"app@{dropped}"]
    assert set(report.removed_blobs) == {dropped, sha256(b"only in 2")}
    assert report.freed_bytes > 0
    assert blobs(storage) == {kept, sha256(b"{}"), sha256(b"shared"), sha256(b"only in 1")}
    assert storage.blob("app", parse_digest(sha256(b"only in 1"))).read_bytes() == b"only in 1"


def test_images_of_running_tasks_are_kept_even_untagged(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    by_digest = push(storage, "app", "1", [b"task by digest"])
    push(storage, "web", "2", [b"task by tag"])
    storage.delete_manifest("app", "1")
    storage.delete_manifest("web", "2")  # the tag the task runs is gone: all of web is kept
    report = collect_garbage(storage, keep=[f"127.0.0.1:5000/app@{by_digest}", "127.0.0.1:5000/web:2"], grace=0)
    assert report.removed_blobs == []
    assert sha256(b"task by digest") in blobs(storage) and sha256(b"task by tag") in blobs(storage)
    assert collect_garbage(storage, grace=0).removed_blobs  # without the tasks they go


def test_referrers_of_kept_images_are_kept(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    subject = push(storage, "app", "1", [b"image"])
    size = storage.manifest("app", "1").size
    signature = push(storage, "app", "sig-tmp", [b"signature"], subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": size})
    storage.delete_manifest("app", "sig-tmp")  # referrers are usually untagged
    assert collect_garbage(storage, grace=0).removed_blobs == []
    assert signature in blobs(storage)
    storage.delete_manifest("app", "1")
    report = collect_garbage(storage, grace=0)
    assert {subject, signature, sha256(b"signature"), sha256(b"image")} <= set(report.removed_blobs)


def test_young_blobs_of_a_push_in_flight_are_left(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    upload_id = storage.start_upload("app")
    storage.append("app", upload_id, b"layer pushed, manifest not yet")
    storage.complete_upload("app", upload_id, parse_digest(sha256(b"layer pushed, manifest not yet")))
    assert collect_garbage(storage, grace=3600).removed_blobs == []
    assert collect_garbage(storage, grace=0).removed_blobs == [sha256(b"layer pushed, manifest not yet")]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("127.0.0.1:5000/app:2", ("app", "2")),
        ("localhost/team/app", ("team/app", "latest")),
        ("team/app:v1", ("team/app", "v1")),
        ("registry.example/app@sha256:" + "a" * 64, ("app", "sha256:" + "a" * 64)),
        ("app:1@sha256:" + "b" * 64, ("app", "sha256:" + "b" * 64)),
    ],
)
def test_repository_reference(image: str, expected: tuple[str, str]) -> None:
    assert repository_reference(image) == expected
