"""The registry of several managers (corral/registry/replication.py): in-process registries that reach each other
through a transport routing by host name, as managers' registries do over the network."""

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from corral.agent.engines.docker import pull_candidates
from corral.manager.registry_peers import peer_secret, registry_url
from corral.registry import RegistryStorage, create_registry_app
from corral.registry.references import Digest, parse_digest
from corral.registry.replication import PEER_USER, Copies, PeerRegistries, TagRecord, acknowledged
from tests.registry.registry_helpers import OCI_INDEX, OCI_MANIFEST, image_manifest, sha256

SECRET = peer_secret(b"k" * 32)
PUSHER = ("ci", "token")


async def authorize(user: str, password: str, writes: bool) -> bool | None:
    if user == PEER_USER:
        assert password == SECRET
        return True
    assert (user, password) == PUSHER
    return None


class Network(httpx.AsyncBaseTransport):
    """http://NAME -> the registry app NAME; a name with no app refuses the connection (a manager that is gone)."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.seen: list[tuple[str, str, str]] = []  # (host, method, path)

    def add(self, host: str, app: ASGIApp) -> None:
        self.apps[host] = httpx.ASGITransport(app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.host, request.method, request.url.path))
        if request.url.host not in self.apps:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.apps[request.url.host].handle_async_request(request)


def cluster(
    tmp_path: Path, names: list[str], network: Network, down: tuple[str, ...] = (), records: dict[str, TagRecord] | None = None,
) -> dict[str, RegistryStorage]:
    """A registry per name, each with every other name as a peer; those in `down` are never started. `records`: the
    cluster's tag records (the manager's store), shared by all."""
    stores = {}
    for name in names:
        others = [f"http://{other}" for other in names if other != name]

        async def peers(others: list[str] = others) -> list[str]:
            return others

        root = tmp_path / name
        if name not in down:
            network.add(name, create_registry_app(root, authorize, replicas(peers, network, records)))
        stores[name] = RegistryStorage(root)
    return stores


def replicas(peers, network: Network, records: dict[str, TagRecord] | None) -> PeerRegistries:  # type: ignore[no-untyped-def]
    if records is None:
        return PeerRegistries(peers, SECRET, transport=network)

    async def record_tag(name: str, tag: str, digest: Digest | None) -> None:
        records[f"{name}:{tag}"] = TagRecord(digest)

    async def recorded_tag(name: str, tag: str) -> TagRecord | None:
        return records.get(f"{name}:{tag}")

    return PeerRegistries(peers, SECRET, transport=network, record_tag=record_tag, recorded_tag=recorded_tag)


def client(network: Network, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{host}", auth=PUSHER, transport=network)


async def push(http: httpx.AsyncClient, name: str, tag: str, blobs: list[bytes]) -> httpx.Response:
    for data in blobs:
        done = await http.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert done.status_code == 201, done.text
    return await http.put(f"/v2/{name}/manifests/{tag}", content=image_manifest(blobs[0], blobs[1:]), headers={"Content-Type": OCI_MANIFEST})


async def test_a_push_is_acknowledged_once_every_answering_peer_holds_it(tmp_path: Path) -> None:
    network = Network()
    stores = cluster(tmp_path, ["m1", "m2", "m3"], network)
    config, layer = b'{"os":"linux"}', b"layer " * 100_000
    async with client(network, "m1") as http:
        pushed = await push(http, "team/app", "1", [config, layer])
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["X-Corral-Copies"] == "3"
    digest = parse_digest(pushed.headers["Docker-Content-Digest"])
    for name in ("m2", "m3"):
        store = stores[name]
        assert store.resolve("team/app", "1") == digest  # the tag too
        assert store.blob("team/app", parse_digest(sha256(layer))).read_bytes() == layer
        assert store.has_blob("team/app", parse_digest(sha256(config)))
    # The peers neither copied onward nor fetched (a HEAD that missed there did not ask m1): m1 got the pusher's 3 requests.
    assert [seen[1] for seen in network.seen if seen[0] == "m1"] == ["POST", "POST", "PUT"]


async def test_a_manager_that_lacks_an_image_fetches_it_verified_from_a_peer(tmp_path: Path) -> None:
    network = Network()
    stores = cluster(tmp_path, ["m1", "m2", "m3"], network, down=("m3",))
    config, layer = b'{"os":"linux"}', b"x" * 3_000_000
    async with client(network, "m1") as http:
        pushed = await push(http, "app", "v1", [config, layer])
    assert pushed.headers["X-Corral-Copies"] == "2"  # m3 was not there: acknowledged with m1 and m2
    del network.apps["m1"]  # m1 is lost
    # m3 comes up with nothing and is asked for the image: it fetches it from m2, verified, and keeps it.
    m3 = create_registry_app(tmp_path / "m3", authorize, PeerRegistries(_fixed(["http://m1", "http://m2"]), SECRET, transport=network))
    network.add("m3", m3)
    async with client(network, "m3") as http:
        manifest = await http.get("/v2/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert manifest.status_code == 200, manifest.text
        assert manifest.headers["Docker-Content-Digest"] == pushed.headers["Docker-Content-Digest"]
        blob = await http.get(f"/v2/app/blobs/{sha256(layer)}")
        assert blob.status_code == 200 and hashlib.sha256(blob.content).hexdigest() == sha256(layer).split(":")[1]
    assert stores["m3"].blob("app", parse_digest(sha256(layer))).stat().st_size == len(layer)
    assert stores["m3"].resolve("app", "v1") == parse_digest(pushed.headers["Docker-Content-Digest"])
    # What no manager has is still unknown, after asking.
    async with client(network, "m3") as http:
        missing = await http.get(f"/v2/app/blobs/{sha256(b'never pushed')}")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        assert (await http.get("/v2/app/manifests/v2")).status_code == 404


async def test_an_index_is_copied_with_its_images(tmp_path: Path) -> None:
    network = Network()
    stores = cluster(tmp_path, ["m1", "m2"], network)
    config, layer = b"{}", b"arch layer"
    image = image_manifest(config, [layer])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(image), "size": len(image), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()
    async with client(network, "m1") as http:
        for data in (config, layer):
            assert (await http.post("/v2/multi/blobs/uploads/", params={"digest": sha256(data)}, content=data)).status_code == 201
        assert (await http.put(f"/v2/multi/manifests/{sha256(image)}", content=image, headers={"Content-Type": OCI_MANIFEST})).status_code == 201
        done = await http.put("/v2/multi/manifests/latest", content=index, headers={"Content-Type": OCI_INDEX})
    assert done.status_code == 201 and done.headers["X-Corral-Copies"] == "2"
    assert stores["m2"].resolve("multi", "latest") == parse_digest(sha256(index))
    assert stores["m2"].parsed("multi", parse_digest(sha256(image))).blobs == [parse_digest(sha256(config)), parse_digest(sha256(layer))]


async def test_a_peer_serving_wrong_bytes_leaves_nothing_behind(tmp_path: Path) -> None:
    network = Network()
    layer = b"the real layer"

    async def liar(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": b"not the layer"})

    network.apps["bad"] = httpx.ASGITransport(liar)
    network.add("m3", create_registry_app(tmp_path / "m3", authorize, PeerRegistries(_fixed(["http://bad"]), SECRET, transport=network)))
    async with client(network, "m3") as http:
        answer = await http.get(f"/v2/app/blobs/{sha256(layer)}")
    assert answer.status_code == 404
    storage = RegistryStorage(tmp_path / "m3")
    assert list(storage.blob_digests()) == [] and list(storage.uploads.iterdir()) == []


async def test_a_push_no_answering_peer_took_is_refused_with_503(tmp_path: Path) -> None:
    network = Network()

    async def broken(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 404, "headers": []})
        else:
            await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"disk full"})

    network.apps["sick"] = httpx.ASGITransport(broken)
    network.add("m1", create_registry_app(tmp_path / "m1", authorize, PeerRegistries(_fixed(["http://sick", "http://gone"]), SECRET, transport=network)))
    async with client(network, "m1") as http:
        refused = await push(http, "app", "1", [b"{}", b"layer"])
    assert refused.status_code == 503
    assert refused.json()["errors"][0]["code"] == "UNAVAILABLE" and "http://sick" in refused.json()["errors"][0]["message"]
    assert "push again" in refused.json()["errors"][0]["message"]


async def test_a_manager_that_was_down_while_a_tag_moved_or_went_follows_the_record(tmp_path: Path) -> None:
    network, records = Network(), dict[str, TagRecord]()
    stores = cluster(tmp_path, ["m1", "m2"], network, records=records)
    m2 = network.apps["m2"]
    # m2 is up for the first push, down for the second
    async with client(network, "m1") as http:
        first = await push(http, "app", "1", [b"{}", b"first layer"])
        assert first.headers["X-Corral-Copies"] == "2"
        network.apps.pop("m2")
        second = await push(http, "app", "1", [b"{}", b"second layer"])
        assert second.status_code == 201 and second.headers["X-Corral-Copies"] == "1"
    assert stores["m2"].resolve("app", "1") == parse_digest(first.headers["Docker-Content-Digest"])  # m2 missed it
    assert records["app:1"] == TagRecord(parse_digest(second.headers["Docker-Content-Digest"]))
    network.apps["m2"] = m2
    async with client(network, "m2") as http:
        moved = await http.get("/v2/app/manifests/1", headers={"Accept": OCI_MANIFEST})
        assert moved.headers["Docker-Content-Digest"] == second.headers["Docker-Content-Digest"]
        assert (await http.get(f"/v2/app/blobs/{sha256(b'second layer')}")).status_code == 200
    # A tag removed through m1 is gone from m2 too when next asked.
    async with client(network, "m1") as http:
        assert (await http.delete("/v2/app/manifests/1")).status_code == 202
    assert records["app:1"] == TagRecord(None)
    async with client(network, "m2") as http:
        assert (await http.get("/v2/app/manifests/1", headers={"Accept": OCI_MANIFEST})).status_code == 404
    assert stores["m2"].tags("app") == []


def test_acknowledged_needs_a_copy_when_any_peer_answered() -> None:
    assert acknowledged(Copies(made=[], failed={}, gone=["http://m2"]))  # alone: one copy, as a single manager
    assert acknowledged(Copies(made=["http://m2"], failed={"http://m3": "500"}, gone=[]))
    assert not acknowledged(Copies(made=[], failed={"http://m3": "500"}, gone=["http://m2"]))


async def test_a_wrong_peer_secret_is_refused(tmp_path: Path) -> None:
    from corral.manager.registry_access import registry_authorizer
    from corral.model.errors import Unauthorized

    ctx = type("Ctx", (), {"data_key": b"k" * 32})()
    authorize_peer = registry_authorizer(ctx)
    assert await authorize_peer(PEER_USER, SECRET, True) is True
    with pytest.raises(Unauthorized, match="wrong peer secret"):
        await authorize_peer(PEER_USER, peer_secret(b"other key" * 4), True)
    assert peer_secret(b"k" * 32) == SECRET and peer_secret(b"j" * 32) != SECRET


def test_registry_urls_and_pull_candidates() -> None:
    assert registry_url("127.0.0.5:5000") == "http://127.0.0.5:5000"
    assert registry_url("10.0.0.5:5000") == "https://10.0.0.5:5000"
    regs = ("127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003")
    assert pull_candidates("127.0.0.1:5002/team/app", regs) == [
        "127.0.0.1:5002/team/app", "127.0.0.1:5001/team/app", "127.0.0.1:5003/team/app",
    ]
    assert pull_candidates("docker.io/library/busybox", regs) == ["docker.io/library/busybox"]
    assert pull_candidates("busybox", regs) == ["busybox"]


def _fixed(urls: list[str]):  # type: ignore[no-untyped-def]
    async def peers() -> list[str]:
        return urls

    return peers
