"""Real TLS handshakes on loopback: a node certificate from the cluster CA is accepted, one from another CA is not.

Certificates here are made at the real time: OpenSSL checks validity against the real clock.
"""

import asyncio
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from corral.pki import ClientCerts, client_context, create_ca, server_context, uvicorn_ssl_options
from pki_factories import Cluster, make_cluster, node_files


def _serve_once(context: ssl.SSLContext) -> tuple[int, dict[str, object], threading.Thread]:
    """Accept one connection on 127.0.0.1, handshake, answer with the peer's node name; record what happened."""
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: dict[str, object] = {}

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    peer = tls.getpeercert()
                    outcome["peer"] = peer
                    subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
                    tls.sendall(str(subject.get("commonName", "-")).encode())
            except (ssl.SSLError, OSError) as error:
                outcome["error"] = error
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], outcome, thread


def _connect(port: int, context: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.recv(100)


def _server(cluster: Cluster, client_certs: ClientCerts) -> ssl.SSLContext:
    return server_context(cluster.server_cert, cluster.server_key, cluster.ca_file, client_certs)


def test_a_node_certificate_from_the_cluster_ca_is_accepted(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, time.time())
    cert, key, _ = node_files(cluster.ca, tmp_path, "node-1", time.time())
    port, outcome, thread = _serve_once(_server(cluster, "required"))
    answer = _connect(port, client_context(cluster.ca.certificate_pem, cert, key))
    thread.join(10)
    assert answer == b"node-1"
    assert "error" not in outcome


def test_a_node_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, time.time())
    cert, key, _ = node_files(create_ca(time.time()), tmp_path, "intruder", time.time())
    port, outcome, thread = _serve_once(_server(cluster, "required"))
    with pytest.raises((ssl.SSLError, OSError)):
        # TLS 1.3 checks the client's certificate after the client's handshake ends: the refusal shows on read
        answer = _connect(port, client_context(cluster.ca.certificate_pem, cert, key))
        assert answer == b""  # the server hung up instead of answering
        raise ConnectionResetError("closed without an answer")
    thread.join(10)
    assert "certificate verify failed" in str(outcome["error"])


def test_no_client_certificate_is_refused_when_required_and_let_through_when_optional(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, time.time())
    port, outcome, thread = _serve_once(_server(cluster, "required"))
    with pytest.raises((ssl.SSLError, OSError)):
        if _connect(port, client_context(cluster.ca.certificate_pem)) == b"":
            raise ConnectionResetError("closed without an answer")
    thread.join(10)
    assert "certificate" in str(outcome["error"])

    port, outcome, thread = _serve_once(_server(cluster, "optional"))
    assert _connect(port, client_context(cluster.ca.certificate_pem)) == b"-"
    thread.join(10)


def test_a_client_pinned_to_another_ca_does_not_trust_the_manager(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, time.time())
    port, outcome, thread = _serve_once(_server(cluster, "none"))
    with pytest.raises(ssl.SSLCertVerificationError):
        _connect(port, client_context(create_ca(time.time()).certificate_pem))
    thread.join(10)


async def _whoami(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


async def test_uvicorn_with_the_ssl_options_serves_httpx_over_mutual_tls(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, time.time())
    cert, key, _ = node_files(cluster.ca, tmp_path, "node-1", time.time())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = uvicorn_ssl_options(cluster.server_cert, cluster.server_key, cluster.ca_file, "required")
    config = uvicorn.Config(_whoami, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        url = f"https://127.0.0.1:{port}/"
        async with httpx.AsyncClient(verify=client_context(cluster.ca.certificate_pem, cert, key)) as client:
            assert (await client.get(url)).text == "ok"
        async with httpx.AsyncClient(verify=client_context(cluster.ca.certificate_pem)) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(url)
    finally:
        server.should_exit = True
        await serving
