"""The API listener's HTTP protocol: uvicorn's, plus the client certificate of a TLS connection in the ASGI scope.

uvicorn does not pass the peer certificate to the application. This
subclass reads it once per connection (the handshake is over when
`connection_made` runs; with client certificates `optional` the TLS layer
has already refused one that does not chain to the cluster CA) and puts it
in every request's scope as the ASGI TLS extension has it:
`scope["extensions"]["tls"]["client_cert_chain"]`, a list of PEM strings
(empty without a certificate). Routes read it with `client_certificate`.
"""

import asyncio
import ssl
from typing import Any

from cryptography import x509
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


def _scope_with_peer(inner: Any, chain: list[str]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": chain}
        await inner(scope, receive, send)

    return app


class PeerCertificateProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that tells the application which certificate the client presented."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn declares it
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        inner = self.app
        self.app = _scope_with_peer(inner, [ssl.DER_cert_to_PEM_cert(der)] if der else [])


def client_certificate(scope: Scope) -> x509.Certificate | None:
    """The certificate the client presented on this request's connection (checked against the cluster CA), or None."""
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    return x509.load_pem_x509_certificate(chain[0].encode()) if chain else None
