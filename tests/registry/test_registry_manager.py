"""The manager serves the registry on its own address, and lists, untags and collects its images."""

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from corral.manager.access.roles import Role
from corral.manager.access.tokens import create_token, revoke_token, token_id
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from tests.registry.conftest import free_port
from tests.registry.registry_helpers import OCI_MANIFEST, image_manifest, sha256
from tests.tls import admin_headers, verify


async def push(client: httpx.AsyncClient, name: str, tag: str, layers: list[bytes]) -> str:
    for data in [b"{}", *layers]:
        done = await client.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert done.status_code == 201, done.text
    pushed = await client.put(f"/v2/{name}/manifests/{tag}", content=image_manifest(b"{}", layers), headers={"Content-Type": OCI_MANIFEST})
    assert pushed.status_code == 201, pushed.text
    return pushed.headers["Docker-Content-Digest"]


async def test_manager_serves_registry_and_manages_its_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = f"127.0.0.1:{free_port()}"
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=free_port(), registry_listen=registry))
    await manager.start()
    try:
        assert f"corral registry serving on http://{registry} (loopback only; `docker login {registry}" in capsys.readouterr().out
        admin = (tmp_path / "admin-token").read_text().strip()
        async with httpx.AsyncClient(base_url=f"http://{registry}", auth=("corral", admin)) as reg, \
                httpx.AsyncClient(base_url=manager.settings.url, verify=verify(tmp_path), headers=admin_headers(tmp_path)) as api:
            digest = await push(reg, "team/app", "2", [b"a" * 1000, b"b" * 500])
            await push(reg, "team/app", "3", [b"c" * 10])
            images = (await api.get("/v1/images")).json()
            assert [(i["repository"], i["tag"]) for i in images] == [("team/app", "2"), ("team/app", "3")]
            manifest_size = len(image_manifest(b"{}", [b"a" * 1000, b"b" * 500]))
            assert images[0]["digest"] == digest and images[0]["size"] == manifest_size + 2 + 1000 + 500
            bad = await api.delete("/v1/images/team/app")
            assert bad.status_code == 422 and "REPOSITORY:TAG" in bad.json()["error"]
            assert (await api.delete("/v1/images/team/app:9")).status_code == 404
            removed = await api.delete("/v1/images/team/app:3")
            assert removed.status_code == 200 and removed.json()["tag"] == "3"
            assert (await reg.get("/v2/team/app/tags/list")).json()["tags"] == ["2"]
            assert (await api.post("/v1/registry/gc", params={"grace": -1})).status_code == 422
            report = (await api.post("/v1/registry/gc", params={"grace": 0})).json()
            assert sha256(b"c" * 10) in report["removed_blobs"] and len(report["removed_manifests"]) == 1
            assert (await reg.get(f"/v2/team/app/manifests/{digest}")).status_code == 200
    finally:
        await manager.stop()
    assert (tmp_path / "registry" / "blobs").is_dir()


async def test_registry_address_taken_leaves_the_manager_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=free_port(), registry_listen=f"127.0.0.1:{port}"))
        await manager.start()
        try:
            assert f"WARNING: image registry not started: the registry cannot listen on 127.0.0.1:{port}" in capsys.readouterr().out
            async with httpx.AsyncClient(base_url=manager.settings.url, verify=verify(tmp_path), headers=admin_headers(tmp_path)) as api:
                assert (await api.get("/v1/info")).status_code == 200
        finally:
            await manager.stop()


async def test_no_registry(tmp_path: Path) -> None:
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=free_port(), registry_listen=None))
    await manager.start()
    try:
        async with httpx.AsyncClient(base_url=manager.settings.url, verify=verify(tmp_path), headers=admin_headers(tmp_path)) as api:
            answer = await api.get("/v1/images")
            assert answer.status_code == 404 and "--no-registry" in answer.json()["error"]
    finally:
        await manager.stop()
    assert not (tmp_path / "registry").exists()



async def test_the_registry_needs_credentials_and_the_role_to_push(tmp_path: Path) -> None:
    """Basic auth with an API token (any role pulls, deployer or admin pushes), or a node's name and credential (pull only)."""
    registry = f"127.0.0.1:{free_port()}"
    manager = Manager(ManagerSettings(data_dir=tmp_path, listen_port=free_port(), registry_listen=registry, tls=False))
    ctx = await manager.start()
    try:
        viewer, _ = await create_token(ctx.store, "ci", Role.viewer, time.time())
        deployer, _ = await create_token(ctx.store, "cd", Role.deployer, time.time())
        async with httpx.AsyncClient(base_url=manager.settings.url) as api:
            joined = await api.post(
                "/v1/agent/register", headers={"Authorization": f"Bearer {ctx.join_token}"},
                json={"name": "n1", "address": "127.0.0.2", "resources": {"cpus": 1, "memory": 2**30}},
            )
        assert joined.json()["registry"] == registry
        node = ("n1", joined.json()["credential"])
        async with httpx.AsyncClient(base_url=f"http://{registry}") as anonymous:
            refused = await anonymous.get("/v2/")
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
            assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED" and "docker login" in refused.text
            wrong = await anonymous.get("/v2/", auth=("corral", "corral_000000000000_" + "x" * 43))
            assert wrong.status_code == 401
        async with httpx.AsyncClient(base_url=f"http://{registry}", auth=("corral", deployer)) as reg:
            await push(reg, "team/app", "1", [b"a" * 10])
        for user, password in (("ci", viewer), node):
            async with httpx.AsyncClient(base_url=f"http://{registry}", auth=(user, password)) as reg:
                assert (await reg.get("/v2/")).status_code == 200
                assert (await reg.get("/v2/team/app/manifests/1", headers={"Accept": OCI_MANIFEST})).status_code == 200
                denied = await reg.post("/v2/team/app/blobs/uploads/")
                assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED", denied.text
        async with httpx.AsyncClient(base_url=f"http://{registry}", auth=("n2", node[1])) as stranger:
            assert (await stranger.get("/v2/")).status_code == 401  # a node's credential under another name
        # Tokens are checked against the manager's cache (fed by the store's watch): a revocation reaches the registry.
        await revoke_token(ctx.store, token_id(deployer), time.time())
        async with httpx.AsyncClient(base_url=f"http://{registry}", auth=("corral", deployer)) as reg:
            deadline = time.monotonic() + 10
            while (refused := await reg.post("/v2/team/app/blobs/uploads/")).status_code != 401:
                assert time.monotonic() < deadline, f"a revoked token still pushes: {refused.status_code}"
                await asyncio.sleep(0.05)
            assert "revoked" in refused.json()["errors"][0]["message"]
    finally:
        await manager.stop()
