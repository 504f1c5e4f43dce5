"""Node certificates on the manager: issued at registration and renewal, checked on every agent call over TLS.

The TLS layer already refused a client certificate that does not chain to
the cluster CA (the listener asks for one as optional: people's CLIs have
none). What it cannot know is whether the node still belongs to the
cluster: `check_peer` refuses a certificate whose node is not registered
(`corral node rm`) or whose serial is not one of the node's current ones
(`Node.certificates`: the newest and, while it renews, the one before), so
the node record is the revocation list. Over plain HTTP (`--insecure`, on
loopback only) there is no certificate and the node credential is the only
proof.
"""

from cryptography import x509

from corral.manager.context import ManagerContext
from corral.model.errors import Unauthorized
from corral.pki import node_name_of, sign_node_request
from corral.pki.authority import certificate_pem


def serial_of(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def issue(ctx: ManagerContext, node: str, csr_pem: str) -> x509.Certificate:
    """A certificate for `node` from its agent's request (CertificateRequestRefused for another name or a bad request)."""
    if ctx.ca is None:
        raise RuntimeError("this manager has no cluster CA")
    return sign_node_request(ctx.ca, csr_pem.encode(), node, ctx.clock(), ctx.settings.cert_expiry)


def pem(certificate: x509.Certificate) -> str:
    return certificate_pem(certificate).decode()


def check_peer(ctx: ManagerContext, certificate: x509.Certificate | None, over_tls: bool) -> str | None:
    """The node whose certificate the caller presented (None over plain HTTP); Unauthorized when refused."""
    if not over_tls:
        return None
    if certificate is None:
        raise Unauthorized(
            "no client certificate: agent calls over TLS need the node certificate given at registration "
            "(the agent registers again with the join token)"
        )
    name = node_name_of(certificate)
    node = ctx.cache.nodes.get(name)
    if node is None:
        raise Unauthorized(
            f"the certificate of node {name} is refused: the node is not registered (removed with `corral node rm`?); "
            "its agent must join again with the join token"
        )
    if serial_of(certificate) not in node.obj.certificates:
        raise Unauthorized(
            f"certificate {serial_of(certificate)} of node {name} is refused: it was replaced or revoked "
            "(the agent registers again with the join token)"
        )
    return name
