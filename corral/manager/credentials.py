"""Node credentials: what an agent shows on every /v1/agent call once its node has joined.

The join token lets a machine join (`POST /v1/agent/register`); the reply
gives the node a credential, a random secret that the manager keeps only as
a SHA-256 digest in the node record (`Node.credential`). Every other agent
call carries it as `Authorization: Bearer <credential>`:

- a call about one node (a `{node}` in its path) is answered 404 at once when
  the node is not registered, 401 when the credential is missing or not the
  node's;
- a call about many nodes (the batched routes) needs the credential of a
  registered node, and every node it names that is registered must hold it
  (401 otherwise; a fleet whose nodes the manager forgot registers again).

A fleet of nodes served by one process shares one credential: the first
registration issues it, the others present it when they register and keep
it. An agent that registers again presents its credential too (else it gets
a new one, and whoever held the old one loses access). The join token is
the root of trust here: whoever holds it may join any node.

Mutual TLS replaces this later; it is this module and the one dependency the
agent routes have (`corral/manager/api/deps.py`).
"""

import hashlib
import hmac
import secrets

from corral.model import Node
from corral.model.errors import Unauthorized

PREFIX = "corral-node-"
_RANDOM_BYTES = 32
PATTERN = rf"^{PREFIX}[0-9a-f]{{{2 * _RANDOM_BYTES}}}$"  # what `issue` makes


def issue() -> str:
    """A new credential (the secret itself: only the node gets it, the manager keeps its digest)."""
    return PREFIX + secrets.token_hex(_RANDOM_BYTES)


def digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def check(node: Node, credential: str | None) -> None:
    """Raises Unauthorized unless `credential` is this node's."""
    if not credential:
        raise Unauthorized(f"missing node credential for node {node.name}: the agent must register first")
    if not node.credential or not hmac.compare_digest(node.credential, digest(credential)):
        raise Unauthorized(f"wrong credential for node {node.name}: its agent must register again")


def check_known(digests: set[str], credential: str | None) -> None:
    """Raises Unauthorized unless `credential` is a registered node's (`digests`: theirs)."""
    if not credential:
        raise Unauthorized("missing node credential: an agent must register first")
    if digest(credential) not in digests:
        raise Unauthorized("wrong node credential: no registered node holds it; the agent must register (again)")


def check_each(nodes: list[Node], credential: str | None) -> None:
    """`check` for many nodes, hashing the credential once."""
    if not credential:
        raise Unauthorized("missing node credential: an agent must register first")
    mine = digest(credential)
    for node in nodes:
        if not node.credential or not hmac.compare_digest(node.credential, mine):
            raise Unauthorized(f"wrong credential for node {node.name}: its agent must register again")
