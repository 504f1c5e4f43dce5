"""The mesh's pure parts: table validation and the order backends are tried in."""

import pytest

from corral.agent.mesh import Backend, Listener, Pool, parse_table
from corral.model.errors import InvalidSpec

A, B, C = Backend("127.0.0.1", 1001), Backend("127.0.0.1", 1002), Backend("127.0.0.1", 1003)


def test_plain_tuples_become_listeners_and_backends() -> None:
    table = parse_table({("127.0.0.2", 8080, "tcp"): [("127.0.0.1", 1001)], ("::1", 53, "udp"): []})
    assert table == {Listener("127.0.0.2", 8080, "tcp"): (A,), Listener("::1", 53, "udp"): ()}
    assert str(Listener("::1", 53, "udp")) == "[::1]:53/udp"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({("127.0.0.2", 70000, "tcp"): []}, "port 70000 is out of range"),
        ({("127.0.0.2", 0, "tcp"): []}, "port 0 is out of range"),
        ({("127.0.0.2", 80, "sctp"): []}, "unknown protocol 'sctp'"),
        ({("node-1", 80, "tcp"): []}, "'node-1' is not an IP address"),
        ({("127.0.0.2", 80, "tcp"): [("127.0.0.1", "80")]}, "backend 0 ('127.0.0.1', '80'): port '80' is out of range"),
        ({("127.0.0.2", 80, "tcp"): [("127.0.0.1",)]}, "a backend is (ip, port)"),
    ],
)
def test_a_bad_entry_is_named(raw: dict, named: str) -> None:
    with pytest.raises(InvalidSpec, match=named.replace("(", r"\(").replace(")", r"\)")):
        parse_table(raw)


def test_round_robin_starts_each_connection_at_the_next_backend() -> None:
    pool = Pool([A, B, C])
    assert [pool.order()[0] for _ in range(6)] == [A, B, C, A, B, C]
    assert pool.order() == [A, B, C]  # the rest of the order is the fallback
    assert pool.order() == [B, C, A]


def test_least_connections_prefers_the_idlest_then_rotates() -> None:
    pool = Pool([A, B, C], "least-connections")
    pool.opened(A)
    pool.opened(A)
    pool.opened(B)
    assert pool.order() == [C, B, A]
    pool.closed(A)
    pool.closed(A)
    assert {pool.order()[0] for _ in range(4)} == {A, C}  # A and C tie at 0: rotation shares them


def test_update_keeps_counts_of_backends_still_listed() -> None:
    pool = Pool([A, B], "least-connections")
    pool.opened(A)
    pool.update([A, B, C])
    assert pool.order()[-1] == A
    assert pool.active[A] == 1


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown balancing strategy 'random'"):
        Pool([A], "random")  # type: ignore[arg-type]
