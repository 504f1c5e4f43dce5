"""ssl.SSLContext factories for the cluster's TLS: the manager's listeners and every client of them.

Server side: the manager's certificate, and client certificates checked
against the cluster CA, either required (the agents' listener: mutual TLS)
or optional (the API: people come with a bearer token, agents with their
certificate). uvicorn builds its own context from files, so
`uvicorn_ssl_options` gives it the same settings as keyword arguments.
Client side: trust only the pinned cluster CA (not the system store), and
present the node certificate when there is one; httpx takes the context as
`verify=`.
"""

import ssl
from pathlib import Path
from typing import Literal

ClientCerts = Literal["required", "optional", "none"]

_CERT_REQS: dict[ClientCerts, ssl.VerifyMode] = {
    "required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
}


def server_context(
    cert_file: Path, key_file: Path, ca_file: Path | None = None, client_certs: ClientCerts = "none"
) -> ssl.SSLContext:
    """A server context presenting `cert_file`; client certificates verified against `ca_file` as asked."""
    if client_certs != "none" and ca_file is None:
        raise ValueError("checking client certificates needs the CA file that signs them")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.verify_mode = _CERT_REQS[client_certs]
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def uvicorn_ssl_options(
    cert_file: Path, key_file: Path, ca_file: Path | None = None, client_certs: ClientCerts = "none"
) -> dict[str, str | int]:
    """The keyword arguments for uvicorn.Config that make the same server as `server_context`."""
    if client_certs != "none" and ca_file is None:
        raise ValueError("checking client certificates needs the CA file that signs them")
    options: dict[str, str | int] = {
        "ssl_certfile": str(cert_file),
        "ssl_keyfile": str(key_file),
        "ssl_cert_reqs": int(_CERT_REQS[client_certs]),
    }
    if ca_file is not None:
        options["ssl_ca_certs"] = str(ca_file)
    return options


def client_context(
    ca_pem: bytes, cert_file: Path | None = None, key_file: Path | None = None, check_hostname: bool = True
) -> ssl.SSLContext:
    """A client context that trusts the cluster CA alone and presents the node certificate if given.

    `check_hostname` stays on: the manager's certificate names every address it listens on.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    context.check_hostname = check_hostname
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context
