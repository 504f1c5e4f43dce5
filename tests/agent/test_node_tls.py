"""Mutual TLS between agents and a real manager (uvicorn over TLS, SQLite): joining by the CA digest of the
join token, node certificates on every agent call, refusals with clear messages, renewal without a restart."""

import re
import socket
import ssl
import time
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from cryptography import x509

from corral.agent.daemon import Agent, EngineFactory
from corral.agent.identity import NodeIdentity
from corral.agent.settings import AgentSettings
from corral.client import ApiError, ManagerClient
from corral.manager.cluster import rotate_token
from corral.manager.server import Manager
from corral.manager.settings import ManagerSettings
from corral.model import Resources
from corral.pki import JoinToken, certificate_request, create_ca, load_or_create_ca, new_private_key, sign_node_request
from corral.pki.authority import certificate_pem, private_key_pem
from tests.tls import admin_headers, verify

HOUR = 3600.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[Manager]:
    manager = Manager(ManagerSettings(data_dir=tmp_path / "data", listen_port=_free_port(), registry_listen=None, cert_expiry=HOUR))
    await manager.start()
    yield manager
    await manager.stop()


def _agent(manager: Manager, name: str, token: str | None = None, state_dir: Path | None = None) -> Agent:
    assert manager.context is not None
    settings = AgentSettings(
        manager_url=manager.settings.url, name=name, address="127.0.0.1", token=token or manager.context.join_token,
        engine="hollow", resources=Resources(cpus=1, memory=1 << 30), state_dir=state_dir,
    )
    return Agent(settings, EngineFactory("hollow"))


async def _heartbeat(client: ManagerClient, node: str) -> Any:
    return await client.post("/v1/agent/heartbeats", {"nodes": [node]})


async def test_an_agent_pins_the_ca_gets_a_certificate_and_uses_it(manager: Manager, tmp_path: Path) -> None:
    agent = _agent(manager, "n1", state_dir=tmp_path / "n1")
    try:
        await agent.register()
        assert manager.settings.url.startswith("https://")
        assert agent.identity.certificate is not None
        certificate = x509.load_pem_x509_certificate(agent.identity.certificate)
        assert certificate.subject.rfc4514_string() == "CN=n1"
        lifetime = (certificate.not_valid_after_utc - certificate.not_valid_before_utc).total_seconds()
        assert HOUR <= lifetime <= HOUR + 600  # --cert-expiry (plus the backdating)
        for name in ("node-key.pem", "node.pem"):
            assert (tmp_path / "n1" / name).stat().st_mode & 0o777 == 0o600
        await _heartbeat(agent.client, "n1")  # over mutual TLS
    finally:
        await agent.client.close()


async def test_a_token_of_another_ca_or_a_rotated_one_is_refused(manager: Manager, tmp_path: Path) -> None:
    assert manager.context is not None
    other = str(JoinToken.generate(create_ca(time.time()).certificate))
    agent = _agent(manager, "n1", token=other)
    with pytest.raises(ApiError, match="the join token pins") as caught:
        await agent.register()
    assert caught.value.status == 401
    await agent.client.close()

    old = manager.context.join_token
    rotate_token(manager.settings.data_dir, manager.context.ca.certificate)  # type: ignore[union-attr]
    agent = _agent(manager, "n2", token=old)
    with pytest.raises(ApiError, match="rotated") as caught:
        await agent.register()
    assert caught.value.status == 401
    await agent.client.close()
    new = (manager.settings.data_dir / "join-token").read_text().strip()
    agent = _agent(manager, "n3", token=new)
    await agent.register()  # the new token joins, with no restart of the manager
    await agent.client.close()


async def test_a_call_without_a_client_certificate_is_refused(manager: Manager) -> None:
    agent = _agent(manager, "n1")
    await agent.register()
    await agent.client.close()
    assert agent.client.token is not None
    # The node's credential, the cluster CA trusted, but no certificate presented.
    async with ManagerClient(manager.settings.url, token=agent.client.token, verify=verify(manager.settings.data_dir)) as bare:
        with pytest.raises(ApiError, match="no client certificate") as caught:
            await _heartbeat(bare, "n1")
    assert caught.value.status == 401


async def test_a_certificate_of_another_ca_is_refused_by_the_tls_layer(manager: Manager, tmp_path: Path) -> None:
    agent = _agent(manager, "n1")
    await agent.register()
    await agent.client.close()
    stranger = create_ca(time.time())
    key = new_private_key()
    forged = sign_node_request(stranger, certificate_request(key, "n1"), "n1", time.time())
    (tmp_path / "k.pem").write_bytes(private_key_pem(key))
    (tmp_path / "c.pem").write_bytes(certificate_pem(forged))
    context = verify(manager.settings.data_dir)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    async with ManagerClient(manager.settings.url, token=agent.client.token, verify=context) as forger:
        with pytest.raises(ApiError, match="the manager closed the connection .over TLS: is the node certificate from another cluster's CA"):
            await _heartbeat(forger, "n1")


async def test_a_removed_node_can_no_longer_connect(manager: Manager) -> None:
    agent = _agent(manager, "n1")
    await agent.register()
    data_dir = manager.settings.data_dir
    async with httpx.AsyncClient(base_url=manager.settings.url, verify=verify(data_dir), headers=admin_headers(data_dir)) as api:
        assert (await api.delete("/v1/nodes/n1", params={"force": "true"})).status_code == 200
    with pytest.raises(ApiError, match="node n1 is refused: the node is not registered") as caught:
        await _heartbeat(agent.client, "n1")
    assert caught.value.status == 401
    await agent.client.close()


async def test_a_certificate_is_renewed_at_two_thirds_of_its_life_without_a_restart(manager: Manager) -> None:
    agent = _agent(manager, "n1")
    await agent.register()
    identity: NodeIdentity = agent.identity
    assert identity.certificate is not None
    first = x509.load_pem_x509_certificate(identity.certificate)
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        """The fake clock: the first wait (until renewal) passes at once; the next one ends the loop."""
        waits.append(seconds)
        if len(waits) > 1:
            raise StopAsyncIteration

    with pytest.raises(StopAsyncIteration):
        await identity.keep_renewed(agent.client, fake_sleep)
    lifetime = (first.not_valid_after_utc - first.not_valid_before_utc).total_seconds()
    assert abs(waits[0] - (first.not_valid_before_utc.timestamp() + lifetime * 2 / 3 - time.time())) < 5
    assert identity.certificate is not None
    renewed = x509.load_pem_x509_certificate(identity.certificate)
    assert renewed.serial_number != first.serial_number
    assert renewed.subject == first.subject
    await _heartbeat(agent.client, "n1")  # the same client, new connections with the new certificate
    assert manager.context is not None
    serials = manager.context.cache.nodes["n1"].obj.certificates
    assert serials == [format(first.serial_number, "x"), format(renewed.serial_number, "x")]
    await agent.client.close()


async def test_the_ca_the_agent_pins_is_the_data_dirs(manager: Manager) -> None:
    ca = load_or_create_ca(manager.settings.data_dir, 0.0)
    agent = _agent(manager, "n1")
    await agent.identity.pin(manager.settings.url, agent.settings.token)
    assert agent.identity.ca_pem == ca.certificate_pem
    await agent.client.close()


def test_an_ssl_context_is_what_the_client_verifies_with() -> None:
    assert isinstance(NodeIdentity().context, ssl.SSLContext)


async def test_every_agent_route_over_tls_needs_a_node_certificate(manager: Manager) -> None:
    """A route added later is covered too: with the node's credential but no certificate, each /v1/agent operation
    but joining and the CA answers 401 naming the missing certificate."""
    agent = _agent(manager, "n1")
    await agent.register()
    await agent.client.close()
    seen = 0
    async with httpx.AsyncClient(base_url=manager.settings.url, verify=verify(manager.settings.data_dir)) as bare:
        document = (await bare.get("/openapi.json")).json()
        for template, operations in document["paths"].items():
            if not template.startswith("/v1/agent/") or template in ("/v1/agent/register", "/v1/agent/ca"):
                continue
            path = re.sub(r"\{[^}]+\}", "x", template.replace("{node}", "n1"))
            for method in operations:
                seen += 1
                response = await bare.request(
                    method.upper(), path, json={}, headers={"Authorization": f"Bearer {agent.client.token}"}
                )
                assert response.status_code == 401 and "no client certificate" in response.text, (method, template, response.text)
    assert seen >= 6


async def test_an_agent_process_never_loads_cryptography(manager: Manager, tmp_path: Path) -> None:
    """Joining (CA pinned, key made, certificate request, certificate installed and read) and renewing leave
    `cryptography` out of the agent's process: its key and requests are made by a short-lived child."""
    import asyncio
    import sys

    assert manager.context is not None
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from corral.agent.daemon import Agent, EngineFactory\n"
        "from corral.agent.settings import AgentSettings\n"
        "from corral.model import Resources\n"
        "async def main():\n"
        f"    settings = AgentSettings(manager_url={manager.settings.url!r}, name='n1', address='127.0.0.1',\n"
        f"        token={manager.context.join_token!r}, engine='hollow', resources=Resources(cpus=1, memory=1 << 30),\n"
        f"        state_dir=Path({str(tmp_path / 'n1')!r}))\n"
        "    agent = Agent(settings, EngineFactory('hollow'))\n"
        "    await agent.register()\n"
        "    await agent.identity.renew(agent.client)\n"
        "    await agent.client.close()\n"
        "    print(agent.identity.renew_in() > 0, sorted(m for m in sys.modules if m.startswith('cryptography')))\n"
        "asyncio.run(main())\n"
    )
    # The manager serves from this test's loop while the agent process runs.
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, err.decode()
    assert out.decode().split() == ["True", "[]"]
