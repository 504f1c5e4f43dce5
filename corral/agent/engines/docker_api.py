"""The Docker Engine API as the agent speaks it: where the engine is, one JSON call, and the engine's own errors.

The agent speaks the Engine API itself over httpx, which it loads anyway, rather than through the docker SDK (docker-py
with requests and urllib3: about 5 MiB of an agent's memory). `EngineAPI` is the blocking client the Docker engine
adapter (docker.py) and the engine's networks (networks/engine.py) call from their worker threads; `DockerStreams`
(docker_streams.py) is the async one for logs, exec and events. A refusal is an `EngineAPIError` carrying the engine's
status and its own message (`No such image: app:2`), which callers quote.

Paths are unversioned: the engine answers in its own API version (1.41 for Debian 12's Docker 20.10).

No TLS context is made for an engine reached without TLS (its Unix socket, plain tcp://): httpx's default one loads
certifi's CA bundle into OpenSSL, 0.4-0.6 MiB of an agent's memory per client, for nothing.
"""

import base64
import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from corral.agent.engines.base import EngineError

DEFAULT_SOCKET = "/var/run/docker.sock"
BASE = "http://docker"  # the host name of a request over the Unix socket (the engine ignores it)
TIMEOUT = 120.0  # seconds for one call, as the SDK's client had (a stop adds its grace period)


class EngineAPIError(EngineError):
    """The engine refused a call: its HTTP status and its own message."""

    def __init__(self, text: str, status: int, message: str) -> None:
        super().__init__(text, permanent=status < 500)
        self.status = status
        self.message = message

    @property
    def missing(self) -> bool:
        """What was named does not exist (`No such container`, `No such image`, a network or volume)."""
        return self.status == 404


def engine_message(body: bytes) -> str:
    """The engine's `{"message": ...}`, or the body's text when it is not that."""
    text = body.decode(errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return str(parsed.get("message", text)) if isinstance(parsed, dict) else text


def engine_error(status: int, body: bytes) -> EngineAPIError:
    message = engine_message(body)
    if status == 404:
        return EngineAPIError(f"container not found: {message}", status, message)
    return EngineAPIError(f"the Docker engine refused: {message} (HTTP {status})", status, message)


def engine_socket(docker_host: str | None = None) -> str:
    """The Docker engine's Unix socket: DOCKER_HOST's when it names one, else the default."""
    host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    raise EngineError(f"DOCKER_HOST={host}: streaming logs and exec needs the engine's Unix socket (unix://PATH)")


def engine_transport(environ: dict[str, str] | None = None) -> tuple[str, httpx.HTTPTransport]:
    """The base URL and transport that reach the engine DOCKER_HOST names: its Unix socket (the default), or
    `tcp://HOST:PORT`, over TLS with DOCKER_CERT_PATH's ca.pem, cert.pem and key.pem when DOCKER_TLS_VERIFY is set."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "")
    if not host or host.startswith("unix://"):
        return BASE, httpx.HTTPTransport(uds=host.removeprefix("unix://") or DEFAULT_SOCKET, verify=False)
    if not host.startswith("tcp://"):
        raise EngineError(f"DOCKER_HOST={host}: the agent reaches an engine at unix://PATH or tcp://HOST:PORT")
    address = host.removeprefix("tcp://")
    if not env.get("DOCKER_TLS_VERIFY"):
        return f"http://{address}", httpx.HTTPTransport(verify=False)
    certs = Path(env.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    return f"https://{address}", httpx.HTTPTransport(verify=context)


def registry_auth(credentials: dict[str, str]) -> dict[str, str]:
    """The `X-Registry-Auth` header of a pull with these credentials (base64url of their JSON, as the engine reads it)."""
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(credentials).encode()).decode()}


def config_credentials(repository: str, environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """What `docker login` saved for the registry of `repository` in the host's Docker config (DOCKER_CONFIG's
    config.json, else ~/.docker/config.json): user and password of its `auths` entry; None when there is none
    (credential helpers, `credsStore`, are not asked)."""
    env = os.environ if environ is None else environ
    config = Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        auths = json.loads(config.read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError):
        return None
    registry = registry_of(repository)
    for key, entry in auths.items() if isinstance(auths, dict) else ():
        if registry_of(key.removeprefix("https://").removeprefix("http://").split("/", 1)[0] + "/x") != registry:
            continue
        try:
            user, colon, password = base64.b64decode(str((entry or {}).get("auth", ""))).decode().partition(":")
        except (ValueError, AttributeError):
            continue
        if colon:
            return {"username": user, "password": password, "serveraddress": key}
    return None


def registry_of(repository: str) -> str:
    """The registry host of a repository name, as Docker reads one (`docker.io` when its first part is no host)."""
    first, slash, _ = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return "docker.io" if first in ("index.docker.io", "registry-1.docker.io") else first
    return "docker.io"


class EngineAPI:
    """Blocking Engine API calls (one connection pool, safe to share between the adapter's threads)."""

    def __init__(self, transport: httpx.BaseTransport | None = None, base_url: str = BASE) -> None:
        """Without `transport`, the engine DOCKER_HOST names (tests pass an `httpx.MockTransport`)."""
        if transport is None:
            base_url, transport = engine_transport()
        self._http = httpx.Client(transport=transport, base_url=base_url, timeout=TIMEOUT)

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None, timeout: float = TIMEOUT,
    ) -> Any:
        """One call: its JSON answer (None when it has none); EngineAPIError with the engine's message when refused."""
        try:
            response = self._http.request(method, path, json=body, params=params, headers=headers, timeout=timeout)
        except httpx.TransportError as err:
            raise EngineError(f"cannot reach the Docker engine: {err or type(err).__name__}") from err
        if response.status_code >= 400:
            raise engine_error(response.status_code, response.content)
        return response.json() if response.content else None

    def output(self, method: str, path: str, body: Any = None) -> bytes:
        """A call whose answer is raw bytes until the engine closes (an exec's multiplexed output)."""
        try:
            with self._http.stream(method, path, json=body) as response:
                if response.status_code >= 400:
                    raise engine_error(response.status_code, response.read())
                return response.read()
        except httpx.TransportError as err:
            raise EngineError(f"lost the Docker engine's answer: {err or type(err).__name__}") from err

    def progress(
        self, method: str, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """A call whose answer is a stream of JSON objects (a pull's progress), each as it comes."""
        try:
            with self._http.stream(method, path, params=params, headers=headers) as response:
                if response.status_code >= 400:
                    raise engine_error(response.status_code, response.read())
                for line in response.iter_lines():
                    try:
                        parsed = json.loads(line) if line.strip() else None
                    except ValueError:
                        continue  # not an event: nothing to tell
                    if isinstance(parsed, dict):
                        yield parsed
        except httpx.TransportError as err:
            raise EngineError(f"lost the Docker engine's answer: {err or type(err).__name__}") from err

    def close(self) -> None:
        self._http.close()
