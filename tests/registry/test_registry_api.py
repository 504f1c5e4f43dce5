"""The /v2/ protocol, in-process: pull, push (monolithic, chunked, resumed, mounted), discovery, deletes, errors."""

import json
from collections.abc import Iterator

import httpx
import pytest

from corral.registry import uploads

from tests.registry.registry_helpers import OCI_INDEX, OCI_MANIFEST, error_code, image_manifest, push_blob, push_image, sha256


def test_version_check_says_registry_v2(client: httpx.Client) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_pull_by_tag_and_digest_returns_the_pushed_bytes(client: httpx.Client) -> None:
    digest = push_image(client, "team/app", "1", [b"layer-one"])
    by_tag = client.get("/v2/team/app/manifests/1")
    by_digest = client.get(f"/v2/team/app/manifests/{digest}")
    assert by_tag.status_code == by_digest.status_code == 200
    assert by_tag.content == by_digest.content == image_manifest(b"{}", [b"layer-one"])
    assert by_tag.headers["Content-Type"] == OCI_MANIFEST
    assert by_tag.headers["Docker-Content-Digest"] == digest == sha256(by_tag.content)
    head = client.head("/v2/team/app/manifests/1")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(by_tag.content))
    layer = client.get(f"/v2/team/app/blobs/{sha256(b'layer-one')}")
    assert layer.content == b"layer-one"
    assert layer.headers["Docker-Content-Digest"] == sha256(b"layer-one")


def test_blob_range_requests(client: httpx.Client) -> None:
    digest = push_blob(client, "app", b"0123456789")
    part = client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == b"2345"
    assert part.headers["Content-Range"] == "bytes 2-5/10"
    beyond = client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=20-30"})
    assert beyond.status_code == 416


def test_unknown_things_get_the_spec_codes(client: httpx.Client) -> None:
    assert error_code(client.get("/v2/nothing/manifests/latest")) == "NAME_UNKNOWN"
    push_image(client, "app", "1", [b"x"])
    missing = client.get("/v2/app/manifests/2")
    assert missing.status_code == 404 and error_code(missing) == "MANIFEST_UNKNOWN"
    blob = client.get(f"/v2/app/blobs/{sha256(b'never pushed')}")
    assert blob.status_code == 404 and error_code(blob) == "BLOB_UNKNOWN"
    # a blob of another repository is not visible through this one
    push_blob(client, "other", b"private")
    assert error_code(client.get(f"/v2/app/blobs/{sha256(b'private')}")) == "BLOB_UNKNOWN"


def test_monolithic_post_with_digest(client: httpx.Client) -> None:
    data = b"monolithic layer"
    done = client.post("/v2/app/blobs/uploads/", params={"digest": sha256(data)}, content=data)
    assert done.status_code == 201
    assert done.headers["Location"] == f"/v2/app/blobs/{sha256(data)}"
    assert client.get(done.headers["Location"]).content == data


def test_chunked_upload_interrupted_and_resumed(client: httpx.Client) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes in three chunks
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    first = client.patch(location, content=data[:4000], headers={"Content-Range": "0-3999", "Content-Type": "application/octet-stream"})
    assert first.status_code == 202 and first.headers["Range"] == "0-3999"
    # The client "restarts": all it has is the upload URL; it asks where to carry on.
    status = client.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-3999"
    # A chunk that does not start at the end is refused with 416 and the current range.
    wrong = client.patch(location, content=data[5000:6000], headers={"Content-Range": "5000-5999"})
    assert wrong.status_code == 416 and wrong.headers["Range"] == "0-3999"
    assert error_code(wrong) == "BLOB_UPLOAD_INVALID"
    second = client.patch(location, content=data[4000:8000], headers={"Content-Range": "4000-7999"})
    assert second.status_code == 202 and second.headers["Range"] == "0-7999"
    done = client.put(location, params={"digest": sha256(data)}, content=data[8000:], headers={"Content-Range": "8000-10239"})
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/app/blobs/{sha256(data)}").content == data
    assert error_code(client.get(location)) == "BLOB_UPLOAD_UNKNOWN"  # the upload is finished


def test_chunk_shorter_than_its_content_range_is_taken_back(client: httpx.Client) -> None:
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    client.patch(location, content=b"abcd", headers={"Content-Range": "0-3"})
    short = client.patch(location, content=b"ef", headers={"Content-Range": "4-9", "Content-Length": "2"})
    assert short.status_code == 400 and error_code(short) == "SIZE_INVALID"
    assert client.get(location).headers["Range"] == "0-3"
    assert client.put(location, params={"digest": sha256(b"abcdgh")}, content=b"gh").status_code == 201


def test_digest_mismatch_is_refused_and_stores_nothing(client: httpx.Client) -> None:
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    claimed = sha256(b"something else")
    refused = client.put(location, params={"digest": claimed}, content=b"actual bytes")
    assert refused.status_code == 400 and error_code(refused) == "DIGEST_INVALID"
    assert client.head(f"/v2/app/blobs/{claimed}").status_code == 404
    assert client.head(f"/v2/app/blobs/{sha256(b'actual bytes')}").status_code == 404
    monolithic = client.post("/v2/app/blobs/uploads/", params={"digest": claimed}, content=b"actual bytes")
    assert monolithic.status_code == 400 and error_code(monolithic) == "DIGEST_INVALID"


def test_malformed_input_is_400_with_the_spec_code(client: httpx.Client) -> None:
    cases = [
        (client.get("/v2/app/blobs/sha256:xyz"), "DIGEST_INVALID"),
        (client.get("/v2/app/blobs/md5:" + "0" * 32), "DIGEST_INVALID"),
        (client.get("/v2/App/manifests/latest"), "NAME_INVALID"),
        (client.get("/v2/a/..%2f..%2fetc/manifests/passwd"), "NAME_INVALID"),
        (client.get("/v2/%2e%2e/%2e%2e/manifests/latest"), "NAME_INVALID"),
        (client.get("/v2/app/manifests/-bad-tag"), "MANIFEST_INVALID"),
        (client.post("/v2/app/blobs/uploads/", params={"digest": "sha256:short"}, content=b"x"), "DIGEST_INVALID"),
        (client.post("/v2/app/blobs/uploads/", params={"mount": "nope", "from": "other"}), "DIGEST_INVALID"),
        (client.get("/v2/app/tags/list", params={"n": "-1"}), "UNSUPPORTED"),
        (client.put("/v2/app/manifests/1", content=b"not json", headers={"Content-Type": OCI_MANIFEST}), "MANIFEST_INVALID"),
        (client.put("/v2/app/manifests/1", content=b'{"schemaVersion": 2, "config": 5}', headers={"Content-Type": OCI_MANIFEST}), "MANIFEST_INVALID"),
        (client.get("/v2/app/referrers/sha256:nothex"), "DIGEST_INVALID"),
    ]
    for response, code in cases:
        assert response.status_code == 400, (response.request.url, response.text)
        assert error_code(response) == code, (response.request.url, response.text)
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    bad_range = client.patch(location, content=b"x", headers={"Content-Range": "bytes-nonsense"})
    assert bad_range.status_code == 400 and error_code(bad_range) == "BLOB_UPLOAD_INVALID"
    no_digest = client.put(location, content=b"x")
    assert no_digest.status_code == 400 and error_code(no_digest) == "DIGEST_INVALID"
    assert error_code(client.get("/v2/app/blobs/uploads/..%2f..%2fetc")) in ("BLOB_UPLOAD_UNKNOWN", "UNSUPPORTED")


def test_manifest_needs_its_blobs_and_digest(client: httpx.Client) -> None:
    manifest = image_manifest(b"{}", [b"never pushed"])
    missing = client.put("/v2/app/manifests/1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert missing.status_code == 404 and error_code(missing) == "MANIFEST_BLOB_UNKNOWN"
    push_blob(client, "app", b"{}")
    push_blob(client, "app", b"never pushed")
    wrong = client.put(f"/v2/app/manifests/{sha256(b'other')}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert wrong.status_code == 400 and error_code(wrong) == "DIGEST_INVALID"
    right = client.put(f"/v2/app/manifests/{sha256(manifest)}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert right.status_code == 201


def test_cross_repository_mount(client: httpx.Client) -> None:
    digest = push_blob(client, "base", b"shared layer")
    mounted = client.post("/v2/app/blobs/uploads/", params={"mount": digest, "from": "base"})
    assert mounted.status_code == 201 and mounted.headers["Location"] == f"/v2/app/blobs/{digest}"
    assert client.get(f"/v2/app/blobs/{digest}").content == b"shared layer"
    unknown = sha256(b"not in base")
    fallback = client.post("/v2/app/blobs/uploads/", params={"mount": unknown, "from": "base"})
    assert fallback.status_code == 202 and "/blobs/uploads/" in fallback.headers["Location"]


def test_tags_are_sorted_and_paginated(client: httpx.Client) -> None:
    for tag in ["b", "a", "C", "a10", "a2"]:
        push_image(client, "app", tag, [b"x"])
    assert client.get("/v2/app/tags/list").json() == {"name": "app", "tags": ["C", "a", "a10", "a2", "b"]}
    first = client.get("/v2/app/tags/list", params={"n": 2})
    assert first.json()["tags"] == ["C", "a"]
    assert first.headers["Link"] == '</v2/app/tags/list?n=2&last=a>; rel="next"'
    second = client.get("/v2/app/tags/list", params={"n": 2, "last": "a"})
    assert second.json()["tags"] == ["a10", "a2"]
    third = client.get("/v2/app/tags/list", params={"n": 2, "last": "a2"})
    assert third.json()["tags"] == ["b"] and "Link" not in third.headers
    assert client.get("/v2/app/tags/list", params={"n": 0}).json()["tags"] == []


def test_referrers_with_subject_and_artifact_type_filter(client: httpx.Client) -> None:
    subject = push_image(client, "app", "1", [b"x"])
    manifest = json.loads(client.get("/v2/app/manifests/1").content)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(json.dumps(manifest))}
    descriptor["size"] = int(client.head("/v2/app/manifests/1").headers["Content-Length"])
    empty = b"{}"
    push_blob(client, "app", empty)
    signatures = []
    for artifact_type, layer in [("application/vnd.example.sig", b"sig"), ("application/vnd.example.sbom", b"sbom")]:
        push_blob(client, "app", layer)
        body = image_manifest(empty, [layer], artifactType=artifact_type, subject=descriptor, annotations={"kind": artifact_type})
        pushed = client.put(f"/v2/app/manifests/{sha256(body)}", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert pushed.status_code == 201
        assert pushed.headers["OCI-Subject"] == subject
        signatures.append(sha256(body))
    listing = client.get(f"/v2/app/referrers/{subject}")
    assert listing.status_code == 200 and listing.headers["Content-Type"].startswith(OCI_INDEX)
    found = listing.json()["manifests"]
    assert sorted(d["digest"] for d in found) == sorted(signatures)
    assert {d["artifactType"] for d in found} == {"application/vnd.example.sig", "application/vnd.example.sbom"}
    filtered = client.get(f"/v2/app/referrers/{subject}", params={"artifactType": "application/vnd.example.sbom"})
    assert [d["digest"] for d in filtered.json()["manifests"]] == [signatures[1]]
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    nobody = client.get(f"/v2/app/referrers/{sha256(b'unknown subject')}")
    assert nobody.status_code == 200 and nobody.json()["manifests"] == []
    # deleting a referrer takes it out of the list
    assert client.delete(f"/v2/app/manifests/{signatures[0]}").status_code == 202
    assert [d["digest"] for d in client.get(f"/v2/app/referrers/{subject}").json()["manifests"]] == [signatures[1]]


def test_index_needs_its_manifests(client: httpx.Client) -> None:
    amd64 = push_image(client, "app", "amd64", [b"amd64 layer"])
    arm64 = push_image(client, "app", "arm64", [b"arm64 layer"])
    size = int(client.head("/v2/app/manifests/amd64").headers["Content-Length"])
    index = {
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64, "size": size, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64, "size": size, "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }
    assert client.put("/v2/app/manifests/multi", content=json.dumps(index), headers={"Content-Type": OCI_INDEX}).status_code == 201
    got = client.get("/v2/app/manifests/multi")
    assert got.headers["Content-Type"] == OCI_INDEX and json.loads(got.content) == index
    index["manifests"][1]["digest"] = sha256(b"unpushed manifest")
    missing = client.put("/v2/app/manifests/broken", content=json.dumps(index), headers={"Content-Type": OCI_INDEX})
    assert missing.status_code == 404 and error_code(missing) == "MANIFEST_BLOB_UNKNOWN"


def test_deletes(client: httpx.Client) -> None:
    digest = push_image(client, "app", "1", [b"x"])
    client.put("/v2/app/manifests/2", content=client.get("/v2/app/manifests/1").content, headers={"Content-Type": OCI_MANIFEST})
    assert client.delete("/v2/app/manifests/2").status_code == 202  # a tag
    assert client.get("/v2/app/tags/list").json()["tags"] == ["1"]
    assert client.get(f"/v2/app/manifests/{digest}").status_code == 200
    assert client.delete(f"/v2/app/manifests/{digest}").status_code == 202  # the manifest, and its tags
    assert client.get("/v2/app/tags/list").json()["tags"] == []
    assert error_code(client.get(f"/v2/app/manifests/{digest}")) == "MANIFEST_UNKNOWN"
    layer = sha256(b"x")
    assert client.delete(f"/v2/app/blobs/{layer}").status_code == 202
    assert error_code(client.get(f"/v2/app/blobs/{layer}")) == "BLOB_UNKNOWN"
    assert error_code(client.delete(f"/v2/app/blobs/{layer}")) == "BLOB_UNKNOWN"
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    assert client.delete(location).status_code == 204
    assert error_code(client.get(location)) == "BLOB_UPLOAD_UNKNOWN"


def test_catalog_lists_repositories(client: httpx.Client) -> None:
    push_image(client, "b/app", "1", [b"x"])
    push_image(client, "a", "1", [b"x"])
    assert client.get("/v2/_catalog").json() == {"repositories": ["a", "b/app"]}
    assert client.get("/v2/_catalog", params={"n": 1}).json() == {"repositories": ["a"]}


def test_manifest_sizes_must_match_the_blobs(client: httpx.Client) -> None:
    """Issue 12 #7: a layer's `size` that is not the blob's size is refused (a puller trusts it)."""
    push_blob(client, "app", b"{}")
    push_blob(client, "app", b"layer of 19 bytes..")
    body = json.loads(image_manifest(b"{}", [b"layer of 19 bytes.."]))
    body["layers"][0]["size"] = 5
    wrong = client.put("/v2/app/manifests/1", content=json.dumps(body), headers={"Content-Type": OCI_MANIFEST})
    assert wrong.status_code == 400 and error_code(wrong) == "SIZE_INVALID"
    assert "5 bytes" in wrong.json()["errors"][0]["message"] and "19" in wrong.json()["errors"][0]["message"]
    assert client.get("/v2/app/manifests/1").status_code == 404
    amd64 = push_image(client, "app", "amd64", [b"amd64 layer"])
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": amd64, "size": 1}]}
    wrong = client.put("/v2/app/manifests/multi", content=json.dumps(index), headers={"Content-Type": OCI_INDEX})
    assert wrong.status_code == 400 and error_code(wrong) == "SIZE_INVALID"


def test_deeply_nested_manifest_is_400_not_500(client: httpx.Client) -> None:
    """Issue 12 #7: nesting gave a RecursionError (500); now MANIFEST_INVALID, as does nesting past the bound."""
    for depth in (100_000, 40):
        nested = "[" * depth + "]" * depth
        body = '{"schemaVersion": 2, "mediaType": "%s", "x": %s}' % (OCI_MANIFEST, nested)
        refused = client.put("/v2/app/manifests/deep", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert refused.status_code == 400 and error_code(refused) == "MANIFEST_INVALID", (depth, refused.text)
        assert "nested deeper" in refused.json()["errors"][0]["message"]


def test_body_written_piece_by_piece_while_receiving_keeps_order_and_digest(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pieces, so one is written (in a worker thread) while the next arrives, many times over.
    monkeypatch.setattr(uploads, "PIECE", 1000)
    data = bytes((n * 7) % 251 for n in range(50_000))

    def body(part: bytes) -> Iterator[bytes]:
        for at in range(0, len(part), 333):
            yield part[at : at + 333]

    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    first = client.patch(location, content=body(data[:30_000]), headers={"Content-Range": "0-29999"})
    assert first.status_code == 202 and first.headers["Range"] == "0-29999"
    done = client.put(location, params={"digest": sha256(data)}, content=body(data[30_000:]))
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/app/blobs/{sha256(data)}").content == data
    monolithic = client.post("/v2/other/blobs/uploads/", params={"digest": sha256(data)}, content=body(data))
    assert monolithic.status_code == 201 and client.get(f"/v2/other/blobs/{sha256(data)}").content == data
