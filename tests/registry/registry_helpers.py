"""Building and pushing small images over the registry protocol, for the registry tests."""

import hashlib
import json
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    digest = sha256(data)
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = client.put(started.headers["Location"], params={"digest": digest}, content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def image_manifest(config: bytes, layers: list[bytes], **extra: Any) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(d), "size": len(d)} for d in layers],
        **extra,
    }
    return json.dumps(body).encode()


def push_image(client: httpx.Client, name: str, tag: str, layers: list[bytes], config: bytes = b"{}", **extra: Any) -> str:
    """Push config, layers and manifest; returns the manifest digest."""
    for data in [config, *layers]:
        push_blob(client, name, data)
    manifest = image_manifest(config, layers, **extra)
    done = client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert done.status_code == 201, done.text
    return done.headers["Docker-Content-Digest"]


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])
