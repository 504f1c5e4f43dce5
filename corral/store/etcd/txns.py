"""corral transactions as etcd Txns (pure: no I/O).

A corral `Op` list may touch a key more than once and each op carries its own expectation; an etcd Txn
takes each key once (it refuses a duplicate) and compares before it writes. `plan` folds the ops into
one write per key and the compares they need:

- the first op on a key compares the key's stored `mod_revision` (0: absent) with its `expect`;
- a later op on the same key is judged against what the ops before it did: `expect=0` holds after a
  delete, no revision can be expected of a value written in this same transaction (etcd gives all of a
  transaction's writes one revision, known only once it is committed);
- with `known` (each key's stored mod_revision, read when a first try failed) every expectation is
  judged here, so `each` (txn_each) can leave out exactly the ops that lost and still compare the keys
  it judged, in case they moved meanwhile.

`chunks` splits a txn_each batch to fit etcd's limits (--max-txn-ops, --max-request-bytes): its ops are
independent, so each chunk is its own transaction. An all-or-nothing `txn` is never split: one that does
not fit is refused (TooLarge) naming the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from corral.model.errors import Conflict, InvalidSpec, TooLarge
from corral.store.base import Op


@dataclass
class EtcdTxn:
    compares: dict[str, int] = field(default_factory=dict)  # key -> mod_revision it must have (0: absent)
    writes: dict[str, bytes | None] = field(default_factory=dict)  # key -> encoded value, None: delete
    skipped: list[int] = field(default_factory=list)  # indexes of the ops left out (each) ...
    # ... and the first op whose expectation cannot hold (not each): the txn is refused without asking etcd
    conflict: str | None = None


_UNKNOWN = -1  # a key's stored revision, before anything was read


def encode(op: Op) -> bytes | None:
    """The op's value as stored; InvalidSpec (naming the key) when the key or the value cannot be stored."""
    try:
        op.key.encode("utf-8")
    except UnicodeEncodeError as err:  # e.g. a lone surrogate
        raise InvalidSpec("", f"{op.key!r} cannot be stored as a key: {err.reason}") from None
    if op.value is None:
        return None
    try:
        return orjson.dumps(op.value)
    except orjson.JSONEncodeError as err:  # e.g. an integer beyond 64 bits
        raise InvalidSpec("", f"{op.key} cannot be stored: {err}") from None


def plan(ops: Sequence[Op], each: bool, known: dict[str, int] | None = None) -> EtcdTxn:
    """The etcd Txn for `ops`. InvalidSpec when a value cannot be encoded."""
    txn = EtcdTxn()
    # key -> (present now, its revision if still the stored one, else None: written by this txn)
    state: dict[str, tuple[bool, int | None]] = {}
    for at, op in enumerate(ops):
        value = encode(op)
        if op.key not in state:
            stored = known.get(op.key, 0) if known is not None else _UNKNOWN
            state[op.key] = (stored > 0, stored) if stored != _UNKNOWN else (False, _UNKNOWN)
        present, revision = state[op.key]
        if op.expect is not None:
            if revision == _UNKNOWN:
                holds = True  # etcd judges it: compare
                txn.compares[op.key] = op.expect
            elif revision is None:
                holds = op.expect == 0 and not present
            else:
                holds = op.expect == revision
                if known is not None:
                    txn.compares.setdefault(op.key, revision)  # what it was judged against must still hold
            if not holds:
                if not each:
                    where = "written earlier in this transaction" if revision is None else (
                        f"at revision {revision}" if present else "absent"
                    )
                    txn.conflict = f"{op.key} changed: expected revision {op.expect}, it is {where}"
                    return txn
                txn.skipped.append(at)
                continue
        if value is None and revision is not None and revision != _UNKNOWN and not present:
            continue  # deleting what is not there: nothing to write
        txn.writes.pop(op.key, None)  # keep the key's place in order of its last write
        txn.writes[op.key] = value
        state[op.key] = (value is not None, None)
    return txn


def request_size(txn: EtcdTxn, prefix: bytes) -> int:
    """About the bytes etcd counts for the Txn (its protobuf size, a little over)."""
    size = sum(len(prefix) + len(key.encode()) + 16 for key in txn.compares)
    return size + sum(len(prefix) + len(key.encode()) + len(value or b"") + 16 for key, value in txn.writes.items())


def chunks(ops: Sequence[Op], max_ops: int, max_bytes: int) -> list[list[int]]:
    """Indexes of `ops` in groups that each fit one etcd Txn; the ops of one key stay in one group."""
    groups: list[list[int]] = []
    current: list[int] = []
    keys: set[str] = set()
    size = 0
    for at, op in enumerate(ops):
        op_size = len(op.key.encode()) + 64 + len(encode(op) or b"")
        if op_size > max_bytes:
            raise TooLarge(
                f"{op.key}: a value of about {op_size} bytes is more than the etcd store takes at once ({max_bytes}:"
                " etcd's --max-request-bytes, given to corral as ?max-request-bytes=N); nothing was changed"
            )
        if current and op.key not in keys and (len(keys) >= max_ops or size + op_size > max_bytes):
            groups.append(current)
            current, keys, size = [], set(), 0
        current.append(at)
        keys.add(op.key)
        size += op_size
    if current:
        groups.append(current)
    return groups


def refuse_if_too_large(txn: EtcdTxn, prefix: bytes, max_ops: int, max_bytes: int) -> None:
    if len(txn.writes) > max_ops or len(txn.compares) > max_ops:
        raise TooLarge(
            f"a transaction of {max(len(txn.writes), len(txn.compares))} keys is more than the etcd store takes at once"
            f" ({max_ops}: etcd's --max-txn-ops, given to corral as ?max-txn-ops=N); nothing was changed"
        )
    size = request_size(txn, prefix)
    if size > max_bytes:
        raise TooLarge(
            f"a transaction of about {size} bytes is more than the etcd store takes at once ({max_bytes}: etcd's"
            " --max-request-bytes, given to corral as ?max-request-bytes=N); nothing was changed"
        )


def conflict(txn_keys: dict[str, int], found: dict[str, int]) -> Conflict:
    """The Conflict naming the first compared key whose revision was not the expected one."""
    for key, expect in txn_keys.items():
        actual = found.get(key, 0)
        if actual != expect:
            where = f"at revision {actual}" if actual else "absent"
            return Conflict(f"{key} changed: expected revision {expect}, it is {where}")
    return Conflict("a key of the transaction changed meanwhile; read again and retry")
