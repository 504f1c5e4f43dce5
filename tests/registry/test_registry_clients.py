"""Real clients against a live registry on a free loopback port: docker, skopeo, and a raw socket.

Docker treats registries on 127.0.0.0/8 as insecure, so plain HTTP works
without configuring the daemon. Every image these tests tag is removed again.
"""

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.registry.conftest import LiveRegistry
from tests.registry.registry_helpers import sha256

pytestmark = pytest.mark.skipif(shutil.which("docker") is None or shutil.which("skopeo") is None, reason="needs docker and skopeo")


def run(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def docker_tags() -> Iterator[list[str]]:
    """Tags the test makes in the local Docker engine, removed at the end."""
    made: list[str] = []
    yield made
    for tag in made:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_docker_push_pull_and_manifest_inspect(live_registry: LiveRegistry, docker_tags: list[str]) -> None:
    image = f"{live_registry.address}/clients/demo:1"
    docker_tags.append(image)
    run("docker", "tag", "corral-demo:latest", image)
    pushed = run("docker", "push", image)
    digest = pushed.split("digest: ")[1].split()[0]
    run("docker", "rmi", image)
    pulled = run("docker", "pull", image)
    assert digest in pulled
    inspected = json.loads(run("docker", "manifest", "inspect", "--insecure", image))
    assert inspected["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    for layer in inspected["layers"]:
        assert httpx.head(f"{live_registry.url}/v2/clients/demo/blobs/{layer['digest']}").status_code == 200
    assert httpx.get(f"{live_registry.url}/v2/clients/demo/tags/list").json()["tags"] == ["1"]


def test_docker_manifest_list_of_two_architectures(live_registry: LiveRegistry, docker_tags: list[str], tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM corral-demo:latest\nCOPY marker /marker\n")
    (tmp_path / "marker").write_text("arm64 build\n")
    amd64, arm64, multi = (f"{live_registry.address}/clients/multi:{t}" for t in ("amd64", "arm64", "both"))
    docker_tags.extend([amd64, arm64])
    run("docker", "tag", "corral-demo:latest", amd64)
    run("docker", "build", "-q", "-t", arm64, str(tmp_path))
    run("docker", "push", amd64)
    run("docker", "push", arm64)
    run("docker", "manifest", "create", "--insecure", multi, amd64, arm64)
    run("docker", "manifest", "annotate", "--arch", "arm64", multi, arm64)
    try:
        run("docker", "manifest", "push", "--insecure", multi)
    finally:
        subprocess.run(["docker", "manifest", "rm", multi], capture_output=True)
    listing = json.loads(run("docker", "manifest", "inspect", "--insecure", multi))
    assert listing["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert sorted(m["platform"]["architecture"] for m in listing["manifests"]) == ["amd64", "arm64"]


def test_skopeo_copy_inspect_delete(live_registry: LiveRegistry) -> None:
    target = f"docker://{live_registry.address}/clients/skopeo:oci"
    run("skopeo", "copy", "--dest-tls-verify=false", "--format", "oci", "docker-daemon:corral-demo:latest", target)
    inspected = json.loads(run("skopeo", "inspect", "--tls-verify=false", target))
    assert inspected["RepoTags"] == ["oci"]
    raw = json.loads(run("skopeo", "inspect", "--tls-verify=false", "--raw", target))
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    # registry to registry, another repository: the layers are mounted, not sent again
    copy = f"docker://{live_registry.address}/clients/copied:1"
    run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", target, copy)
    assert json.loads(run("skopeo", "inspect", "--tls-verify=false", copy))["Digest"] == inspected["Digest"]
    run("skopeo", "delete", "--tls-verify=false", target)
    gone = httpx.get(f"{live_registry.url}/v2/clients/skopeo/manifests/oci")
    assert gone.status_code == 404 and gone.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert httpx.get(f"{live_registry.url}/v2/clients/copied/manifests/1").status_code == 200


def raw_request(registry: LiveRegistry, head: str, body: bytes = b"", close_early: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", registry.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        if close_early:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_chunk_cut_off_mid_transfer_is_resumed(live_registry: LiveRegistry) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    location = httpx.post(f"{live_registry.url}/v2/clients/resume/blobs/uploads/").headers["Location"]
    half = len(data) // 2
    # The client promises the whole blob but dies after half of it.
    head = (f"PATCH {location} HTTP/1.1\r\nHost: {live_registry.address}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Range: 0-{len(data) - 1}\r\nContent-Length: {len(data)}\r\n\r\n")
    raw_request(live_registry, head, data[:half], close_early=True)

    def received() -> int:
        status = httpx.get(live_registry.url + location)
        assert status.status_code == 204
        return int(status.headers["Range"].split("-")[1]) + 1

    deadline = time.monotonic() + 10
    while received() < half and time.monotonic() < deadline:
        time.sleep(0.05)
    # What arrived before the cut is kept, so the client carries on from there.
    offset = received()
    assert offset == half
    rest = httpx.patch(live_registry.url + location, content=data[offset:], headers={"Content-Range": f"{offset}-{len(data) - 1}"})
    assert rest.status_code == 202, rest.text
    done = httpx.put(live_registry.url + location, params={"digest": sha256(data)})
    assert done.status_code == 201, done.text
    assert httpx.get(f"{live_registry.url}/v2/clients/resume/blobs/{sha256(data)}").content == data


def test_path_traversal_on_the_wire_is_refused(live_registry: LiveRegistry, tmp_path: Path) -> None:
    for path in ["/v2/../../../etc/passwd/manifests/latest", "/v2/a/%2e%2e/%2e%2e/b/blobs/uploads/", "/v2/a/blobs/uploads/..%2F..%2Fx"]:
        method = "POST" if path.endswith("uploads/") else "GET"
        answer = raw_request(live_registry, f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        status_line, _, rest = answer.partition(b"\r\n")
        assert b" 400 " in status_line or b" 404 " in status_line, answer
        body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert body["errors"][0]["code"] in ("NAME_INVALID", "BLOB_UPLOAD_UNKNOWN", "UNSUPPORTED"), body
    assert not (live_registry.root / "etc").exists() and not list(live_registry.root.parent.glob("b"))
