"""The Engine API client (over a mock transport): the engine's own words in errors, where DOCKER_HOST points, the
credentials a pull sends (the cluster's registry's, else what `docker login` saved) and a pull's refusals."""

import base64
import json
from pathlib import Path

import httpx
import pytest

from corral.agent.engines.base import EngineError
from corral.agent.engines.docker import DockerEngine
from corral.agent.engines.docker_api import EngineAPI, EngineAPIError, config_credentials, engine_transport, registry_of


def test_a_refusal_carries_the_engine_status_and_message() -> None:
    api = EngineAPI(httpx.MockTransport(lambda _: httpx.Response(404, json={"message": "No such image: app:2"})))
    with pytest.raises(EngineAPIError) as refused:
        api.call("GET", "/images/app:2/json")
    assert refused.value.missing and refused.value.message == "No such image: app:2" and refused.value.permanent
    plain = EngineAPI(httpx.MockTransport(lambda _: httpx.Response(500, text="engine on fire")))
    with pytest.raises(EngineAPIError) as failed:
        plain.call("POST", "/containers/x/start")
    assert str(failed.value) == "the Docker engine refused: engine on fire (HTTP 500)" and not failed.value.permanent


def test_an_unreachable_engine_is_an_engine_error() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no socket", request=request)

    with pytest.raises(EngineError, match="cannot reach the Docker engine: no socket"):
        EngineAPI(httpx.MockTransport(unreachable)).call("GET", "/info")


def test_docker_host_names_a_socket_or_a_tcp_address(tmp_path: Path) -> None:
    assert engine_transport({})[0] == "http://docker"
    assert engine_transport({"DOCKER_HOST": "unix:///run/other.sock"})[0] == "http://docker"
    assert engine_transport({"DOCKER_HOST": "tcp://127.0.0.1:2375"})[0] == "http://127.0.0.1:2375"
    with pytest.raises(EngineError, match="unix://PATH or tcp://HOST:PORT"):
        engine_transport({"DOCKER_HOST": "ssh://box"})
    with pytest.raises(OSError):  # TLS asked for: its certificates must be there
        engine_transport({"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})


def test_credentials_docker_login_saved_are_found_by_registry(tmp_path: Path) -> None:
    auth = base64.b64encode(b"me:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "127.0.0.5:5000": {"auth": auth}, "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:x").decode()},
    }}))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert config_credentials("127.0.0.5:5000/app", env) == {"username": "me", "password": "pw", "serveraddress": "127.0.0.5:5000"}
    assert config_credentials("library/busybox", env)["username"] == "hub"  # type: ignore[index]
    assert config_credentials("127.0.0.6:5000/app", env) is None
    assert config_credentials("app", {"DOCKER_CONFIG": str(tmp_path / "none")}) is None
    assert (registry_of("busybox"), registry_of("localhost/a"), registry_of("a.b:1/c/d")) == ("docker.io", "localhost", "a.b:1")


class Registry:
    """An engine that has no image until a pull of it succeeds; pulls of `refused` answer with an error in the stream."""

    def __init__(self, refused: str = "", missing: str = "") -> None:
        self.refused = refused
        self.missing = missing
        self.pulls: list[tuple[str, str, str | None]] = []
        self.tagged: list[str] = []
        self.images: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/images/") and path.endswith("/json"):
            name = path.removeprefix("/images/").removesuffix("/json")
            if name in self.images:
                return httpx.Response(200, json={"Config": {"ExposedPorts": {"8080/tcp": {}}}})
            return httpx.Response(404, json={"message": f"No such image: {name}"})
        if path == "/images/create":
            image, tag = request.url.params["fromImage"], request.url.params["tag"]
            header = request.headers.get("X-Registry-Auth")
            self.pulls.append((image, tag, json.loads(base64.urlsafe_b64decode(header))["username"] if header else None))
            if image == self.missing:
                return httpx.Response(404, json={"message": f"manifest for {image}:{tag} not found: manifest unknown"})
            if image == self.refused:
                return httpx.Response(200, text='{"status":"Pulling"}\n{"errorDetail":{"message":"no space left"},"error":"no space left"}\n')
            self.images.add(f"{image}:{tag}")
            return httpx.Response(200, text='{"status":"Pulling"}\n{"status":"Downloaded newer image"}\n')
        if path.endswith("/tag"):
            name = path.removeprefix("/images/").removesuffix("/tag")
            self.tagged.append(f"{name} -> {request.url.params['repo']}:{request.url.params['tag']}")
            self.images.add(f"{request.url.params['repo']}:{request.url.params['tag']}")
            return httpx.Response(201)
        raise AssertionError(f"unexpected {request.method} {path}")


def test_a_pull_tries_each_manager_registry_with_the_node_credentials(tmp_path: Path) -> None:
    registry = Registry(missing="127.0.0.2:5000/app")
    engine = DockerEngine("c1", "n1", api=EngineAPI(httpx.MockTransport(registry)), files_root=tmp_path)
    engine.use_registry("127.0.0.2:5000", "node-n1", lambda: "token", others=["127.0.0.3:5000"])
    assert engine._ensure_image("127.0.0.2:5000/app:2") == ("8080/tcp",)
    assert registry.pulls == [("127.0.0.2:5000/app", "2", "node-n1"), ("127.0.0.3:5000/app", "2", "node-n1")]
    assert registry.tagged == ["127.0.0.3:5000/app:2 -> 127.0.0.2:5000/app:2"]  # created from the image's own name
    assert engine._ensure_image("127.0.0.2:5000/app:2") == ("8080/tcp",) and len(registry.pulls) == 2  # present now


def test_a_pull_refused_says_why_in_the_engine_words(tmp_path: Path) -> None:
    missing = DockerEngine("c1", "n1", api=EngineAPI(httpx.MockTransport(Registry(missing="127.0.0.2:5000/app"))), files_root=tmp_path)
    missing.use_registry("127.0.0.2:5000", "node-n1", lambda: "token")
    with pytest.raises(EngineError) as caught:
        missing._ensure_image("127.0.0.2:5000/app:2")
    assert str(caught.value) == "image 127.0.0.2:5000/app:2 not found in registry" and not caught.value.permanent
    full = DockerEngine("c1", "n1", api=EngineAPI(httpx.MockTransport(Registry(refused="busybox"))), files_root=tmp_path)
    with pytest.raises(EngineError) as caught:
        full._ensure_image("busybox:1")
    assert str(caught.value) == "cannot pull image busybox:1: no space left"
