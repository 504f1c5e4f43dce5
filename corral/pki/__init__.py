"""The cluster's public-key infrastructure: one CA, node and server certificates, join tokens, TLS contexts.

Shared by the manager (creates the CA, signs node certificates), the agent
(makes a key and a certificate request, pins the CA from its join token) and
the CLI (pins the CA for the API). It imports only `cryptography`, the
standard library and corral.model; times are epoch seconds passed in by the
caller, never read from a clock here.

    ca = load_or_create_ca(data_dir, now)                 # manager, at start
    token = JoinToken.generate(ca.certificate)            # printed by `corral join-token`
    key = new_private_key(); csr = certificate_request(key, "node-1")    # agent
    cert = sign_node_request(ca, csr, "node-1", now)      # manager, after checking the token
"""

from typing import TYPE_CHECKING

from corral.lazy_exports import exports

if TYPE_CHECKING:
    from corral.pki.files import CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE
    from corral.pki.authority import (
        ClusterCA,
        ca_fingerprint,
        create_ca,
        issue_server_certificate,
        load_or_create_ca,
        load_or_create_server_certificate,
        new_private_key,
    )
    from corral.pki.errors import CertificateRequestRefused, InvalidJoinToken, KeyMaterialError
    from corral.pki.join_token import JoinToken
    from corral.pki.lifetimes import DEFAULT_NODE_CERT_LIFETIME
    from corral.pki.node_certs import (
        certificate_request,
        needs_renewal,
        node_name_of,
        renewal_time,
        sign_node_request,
    )
    from corral.pki.tls import ClientCerts, client_context, server_context, uvicorn_ssl_options

__getattr__ = exports(__name__, {
    "files": ["CA_CERT_FILE", "CA_KEY_FILE", "SERVER_CERT_FILE", "SERVER_KEY_FILE"],
    "authority": ["ClusterCA", "ca_fingerprint", "create_ca", "issue_server_certificate", "load_or_create_ca", "load_or_create_server_certificate", "new_private_key"],
    "errors": ["CertificateRequestRefused", "InvalidJoinToken", "KeyMaterialError"],
    "join_token": ["JoinToken"],
    "lifetimes": ["DEFAULT_NODE_CERT_LIFETIME"],
    "node_certs": ["certificate_request", "needs_renewal", "node_name_of", "renewal_time", "sign_node_request"],
    "tls": ["ClientCerts", "client_context", "server_context", "uvicorn_ssl_options"],
})

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "DEFAULT_NODE_CERT_LIFETIME",
    "SERVER_CERT_FILE",
    "SERVER_KEY_FILE",
    "CertificateRequestRefused",
    "ClientCerts",
    "ClusterCA",
    "InvalidJoinToken",
    "JoinToken",
    "KeyMaterialError",
    "ca_fingerprint",
    "certificate_request",
    "client_context",
    "create_ca",
    "issue_server_certificate",
    "load_or_create_ca",
    "load_or_create_server_certificate",
    "needs_renewal",
    "new_private_key",
    "node_name_of",
    "renewal_time",
    "server_context",
    "sign_node_request",
    "uvicorn_ssl_options",
]
