"""Who is at the other end of a verified TLS connection, read from what `ssl` parsed (no `cryptography` needed).

The node listener (corral/agent/node_listener.py) serves the manager alone: the TLS layer has checked
that the peer's certificate chains to the cluster CA, and this tells the manager's client certificate
(`corral/pki/manager_certs.py` issues it) from a node's.
"""

from typing import Any

MANAGER_CLIENT_NAME = "corral manager"


def is_manager_peer(peer: dict[str, Any] | None) -> bool:
    """Whether a verified peer certificate, as `SSLObject.getpeercert()` gives it, names the manager's client and nothing else."""
    return bool(peer) and peer.get("subject") == ((("commonName", MANAGER_CLIENT_NAME),),)  # type: ignore[union-attr]
