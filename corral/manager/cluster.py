"""Cluster management: the join token, node registration, leases, availability.

The join token (`corral-<CA digest>-<secret>`, corral/pki/join_token.py) is
made at the manager's first start and kept in DATA_DIR/join-token (as k3s
keeps its node token); an agent presents it to register. `rotate_token`
writes a new secret (`corral join-token --rotate`): the running manager
reads the file at every registration, so the old token stops working for
new joins at once. Leases are in memory (see health.py for why).
"""

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from corral.model import Node, NodeAvailability, NodeState, Resources
from corral.model.errors import InvalidSpec, Unauthorized
from corral.pki import InvalidJoinToken, JoinToken
from corral.pki.files import write_private

TOKEN_FILE = "join-token"


def load_or_create_token(data_dir: Path, ca_certificate: x509.Certificate) -> str:
    """The cluster's join token, made when missing.

    A token that does not pin this CA (the `corral-<secret>` of older versions, or one of another
    CA) is replaced: an agent could not verify the manager with it, so it is of no use to keep.
    """
    path = data_dir / TOKEN_FILE
    if path.exists():
        text = path.read_text().strip()
        try:
            JoinToken.parse(text).verify_ca(ca_certificate)
            return text
        except InvalidJoinToken:
            pass
    return rotate_token(data_dir, ca_certificate)


def rotate_token(data_dir: Path, ca_certificate: x509.Certificate) -> str:
    """A new join token (new secret, same CA digest), written to DATA_DIR/join-token (0600)."""
    token = str(JoinToken.generate(ca_certificate))
    write_private(data_dir / TOKEN_FILE, (token + "\n").encode())
    return token


def current_token(data_dir: Path, fallback: str) -> str:
    """The token in the data dir now (it may have been rotated since the start), else `fallback`."""
    try:
        return (data_dir / TOKEN_FILE).read_text().strip() or fallback
    except OSError:
        return fallback


def check_token(expected: str, presented: str | None) -> None:
    if not presented:
        raise Unauthorized("missing join token: pass --token-file (see `corral join-token` on the manager)")
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise Unauthorized(
            "wrong join token: not this cluster's current token (was it rotated? see `corral join-token` on the manager)"
        )


def registered_node(
    existing: Node | None,
    name: str,
    address: str,
    resources: Resources,
    labels: dict[str, str],
    engine: str,
    now: float,
) -> Node:
    """The node record after an agent (re)registers: user-set availability and labels survive."""
    if existing is None:
        return Node(
            name=name,
            address=address,
            labels=labels,
            resources=resources,
            engine=engine,
            last_heartbeat=now,
            registered_at=now,
        )
    if existing.address != address and existing.state == NodeState.ready:
        raise InvalidSpec("name", f"node {name} is already registered from {existing.address} and is up")
    return existing.model_copy(
        update={
            "address": address,
            "resources": resources,
            "labels": {**labels, **existing.labels},
            "engine": engine,
            "state": NodeState.ready,
            "message": "",
            "last_heartbeat": now,
        }
    )


def back_up(node: Node, now: float) -> Node:
    """A down node whose agent was heard from again: ready, with the heartbeat that brought it back.

    Its tasks were lost when it went down and are replaced elsewhere; the agent stops and
    removes their containers when it sees them `lost` (agent/reconcile.py)."""
    return node.model_copy(update={"state": NodeState.ready, "message": "", "last_heartbeat": now})


def with_availability(node: Node, availability: NodeAvailability) -> Node:
    return node.model_copy(update={"availability": availability})


def changed_node(node: Node, availability: NodeAvailability | None, labels: dict[str, str] | None) -> Node:
    """The node after a user's change: what is given replaces what it had (labels: all the user labels)."""
    changes: dict[str, object] = {}
    if availability is not None:
        changes["availability"] = availability
    if labels is not None:
        changes["labels"] = labels
    return node.model_copy(update=changes) if changes else node


def check_removable(node: Node, force: bool) -> None:
    """A node that is up is removed only by force: its agent would register it again."""
    if node.state == NodeState.ready and not force:
        raise InvalidSpec("name", f"node {node.name} is up: drain it and stop its agent first, or pass force=true")


@dataclass
class Leases:
    """Last heartbeat per node, in memory; every node starts with a fresh lease."""

    last: dict[str, float] = field(default_factory=dict)

    def renew(self, node: str, now: float) -> None:
        self.last[node] = now

    def seed(self, nodes: list[str], now: float) -> None:
        for name in nodes:
            self.last.setdefault(name, now)

    def forget(self, node: str) -> None:
        self.last.pop(node, None)

    def clear(self) -> None:
        """Forget every lease: a manager taking over the lead gives every node a fresh one (`seed`), whatever it
        heard in an earlier term."""
        self.last.clear()

    def extend(self, by: float) -> None:
        """Every lease lasts `by` seconds longer: the manager could not hear heartbeats for that long."""
        for name in self.last:
            self.last[name] += by
