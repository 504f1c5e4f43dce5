"""The SQLite backend: one log table whose auto-increment id is the revision.

Every write appends a row to `log` (the value, or NULL for a delete) and
updates `current`, in one transaction. A unique index on (key, prev_revision)
makes the database itself refuse two writes that both think they are the
next version of a key, so compare-and-swap holds even if a bug in this file
let two slip through. WAL mode with synchronous=FULL: a write is on disk
when `txn` returns, so it survives a SIGKILL (and a power cut) of the manager.

All SQLite calls run on one worker thread, never on the event loop. The
transactions that queue while one commits are committed together (group
commit: one SQLite transaction and one fsync for all, each still applied or
refused on its own), and rows go in multi-row statements: every row a
statement steps through hands the GIL back and forth with the event loop.
A transaction that cannot be stored fails alone: a value that does not
encode is refused while the group is planned, and if the group's SQLite
transaction fails (nothing of it is written), each is committed alone.

`compact` forgets old history a step (one short transaction) at a time and
gives the space back with incremental vacuum; the oldest revision kept is
`meta.compacted`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import orjson

from corral.model.errors import Compacted, Conflict, InvalidSpec, StorageFull
from corral.store.base import KeyValue, Op, Store, WatchEvent, WatchExpired
from corral.store.watchers import WatchHub

T = TypeVar("T")

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    value TEXT,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_key_prev ON log (key, prev_revision);
CREATE TABLE IF NOT EXISTS current (
    key TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


_CHUNK = 500  # keys per IN (...) query
COMPACT_STEP = 2_000  # revisions compacted per transaction (about 20-50 ms of the store thread)
VACUUM_STEP = 1_000  # free pages (4 KiB each) given back per step
_INCREMENTAL = 2  # PRAGMA auto_vacuum value
_WAL_LIMIT = 64 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix + "\U0010ffff"


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._hub = WatchHub()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._revision = 0  # the store's revision: this object is its only writer
        self._queued: deque[_Txn] = deque()  # transactions waiting for the committer
        self._committer: asyncio.Task[None] | None = None

    async def open(self) -> "SqliteStore":
        self._loop = asyncio.get_running_loop()
        await self._run(self._open_sync)
        return self

    def _open_sync(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect in a new file (before its first table)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
        db.executescript(_SCHEMA)
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
            # A file made before compaction reclaimed space: switching its mode takes one full VACUUM.
            log.warning("store %s: switching to incremental vacuum (one full VACUUM)", self._path)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")
        self._db = db
        self._revision = self._revision_sync()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "store is not open"
        return self._db

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return await self._run(self._get_sync, key)

    def _get_sync(self, key: str) -> KeyValue | None:
        row = self.db.execute(
            "SELECT key, value, create_revision, revision FROM current WHERE key = ?", (key,)
        ).fetchone()
        return _key_value(row) if row else None

    async def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        return await self._run(self._list_sync, prefix)

    def _list_sync(self, prefix: str) -> tuple[list[KeyValue], int]:
        db = self.db
        db.execute("BEGIN")
        try:
            rows = db.execute(
                "SELECT key, value, create_revision, revision FROM current"
                " WHERE key >= ? AND key < ? ORDER BY key",
                (prefix, _prefix_end(prefix)),
            ).fetchall()
            revision = self._revision_sync()
        finally:
            db.execute("COMMIT")
        return [_key_value(row) for row in rows], revision

    async def revision(self) -> int:
        return await self._run(self._revision_sync)

    def _revision_sync(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        return int(row[0]) if row else 0

    # -- writes --------------------------------------------------------------

    async def txn(self, ops: Sequence[Op]) -> int:
        revision, _ = await self._submit(ops, each=False)
        return revision

    async def txn_each(self, ops: Sequence[Op]) -> tuple[int, list[int]]:
        return await self._submit(ops, each=True)

    async def _submit(self, ops: Sequence[Op], each: bool) -> tuple[int, list[int]]:
        """Queue a transaction; the committer writes what is queued together (group commit).

        Transactions that arrive while the worker thread is busy are written in one SQLite
        transaction and one fsync when it is free, each still all-or-nothing (or op by op with
        `each`) and in the order they came. With many small writers (the status reports of
        thousands of nodes) a transaction each cost a commit and several GIL hand-overs each.
        """
        future: asyncio.Future[tuple[int, list[int]]] = asyncio.get_running_loop().create_future()
        self._queued.append(_Txn(list(ops), each, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued())
        return await future

    async def _commit_queued(self) -> None:
        while self._queued:
            group: list[_Txn] = []
            size = 0
            while self._queued and (not group or size + len(self._queued[0].ops) <= _GROUP_OPS):
                txn = self._queued.popleft()
                group.append(txn)
                size += len(txn.ops)
            try:
                results = await self._commit_group(group)
            except BaseException as err:  # the store stopped (cancelled, closed): each caller learns why
                for txn in group:
                    if not txn.future.done():
                        txn.future.set_exception(err if isinstance(err, Exception) else RuntimeError("store stopped"))
                if not isinstance(err, Exception):
                    raise
                continue
            for txn, result in zip(group, results):
                if txn.future.done():
                    continue
                if isinstance(result, Exception):
                    txn.future.set_exception(result)
                else:
                    txn.future.set_result(result)

    async def _commit_group(self, group: list["_Txn"]) -> list[tuple[int, list[int]] | Exception]:
        """Commit a group; if its SQLite transaction fails (a row SQLite refuses, a disk error), nothing
        of it was written, and each transaction is tried alone: only those at fault fail."""
        try:
            return await self._run(self._group_sync, group)
        except Exception as err:
            if len(group) == 1:
                return [err]
        results: list[tuple[int, list[int]] | Exception] = []
        for txn in group:
            try:
                results += await self._run(self._group_sync, [txn])
            except Exception as err:
                results.append(err)
        return results

    def _group_sync(self, group: list["_Txn"]) -> list[tuple[int, list[int]] | Exception]:
        """Several transactions in one SQLite transaction; a Conflict or a value that cannot be encoded fails only its own.

        The ops are worked out in memory first (each sees the ones before it), then written with
        a few statements of many rows each: SQLite releases and retakes the GIL for each row
        a statement executes, and with the event loop busy in the other thread a row per
        statement (`executemany`) made large batches crawl.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            state = self._current_sync(sorted({op.key for txn in group for op in txn.ops}))
            revision = self._revision
            log_rows: list[_LogRow] = []
            events: list[WatchEvent] = []
            results: list[tuple[int, list[int]] | Exception] = []
            for txn in group:
                try:
                    revision, skipped = _plan(txn, state, revision, log_rows, events)
                    results.append((revision, skipped))
                except (Conflict, InvalidSpec) as err:
                    results.append(err)
            if log_rows:
                _insert(db, "INSERT INTO log (revision, key, value, create_revision, prev_revision)", log_rows)
                touched = {row[1] for row in log_rows}
                gone = [key for key in touched if state[key][2] is None]
                for start in range(0, len(gone), _CHUNK):
                    chunk = gone[start : start + _CHUNK]
                    db.execute(f"DELETE FROM current WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                _insert(
                    db,
                    "INSERT INTO current (key, revision, create_revision, value)",
                    [(key, *state[key][:3]) for key in touched if state[key][2] is not None],
                    " ON CONFLICT (key) DO UPDATE SET revision = excluded.revision, value = excluded.value,"
                    " create_revision = excluded.create_revision",
                )
            db.execute("COMMIT")
        except BaseException as err:
            self._abandon(err)
            raise
        self._revision = revision
        if events and self._loop is not None:
            # Published from this one worker thread, so in revision order.
            self._loop.call_soon_threadsafe(self._hub.publish, events)
        return results

    def _abandon(self, err: BaseException) -> None:
        """Roll back a failed write transaction; a full disk raises StorageFull (from `err`).

        On some errors (a full disk) SQLite has rolled back already, and a second ROLLBACK
        would hide the real error behind "no transaction is active"."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        if isinstance(err, sqlite3.Error) and err.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL:
            raise StorageFull(
                f"the manager's disk is full ({self._path.parent}): writes are refused until space is freed; nothing was changed"
            ) from err

    def _current_sync(self, keys: list[str]) -> dict[str, tuple[int, int, str | None, int]]:
        """key -> (mod revision, create revision, value or None if absent, revision of its last log row).

        Each query returns its rows as one JSON array in one row: every row a statement steps
        through releases and retakes the GIL, which with the event loop busy costs up to a
        switch interval (5 ms) each.
        """
        db = self.db
        state: dict[str, tuple[int, int, str | None, int]] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            found = _json_rows(
                db, "SELECT json_array(key, revision, create_revision, value) AS row FROM current WHERE key IN ({keys})", chunk
            )
            for key, revision, create_revision, value in found:
                state[key] = (revision, create_revision, value, revision)
            absent = [key for key in chunk if key not in state]
            if absent:
                found = _json_rows(
                    db, "SELECT json_array(key, MAX(revision)) AS row FROM log WHERE key IN ({keys}) GROUP BY key", absent
                )
                for key, last in found:
                    state[key] = (0, 0, None, last or 0)
        return state

    # -- compaction ----------------------------------------------------------

    async def oldest_revision(self) -> int:
        return await self._run(self._oldest_sync)

    def _oldest_sync(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()
        return int(row[0]) if row else 0

    async def compact(self, keep: int) -> int:
        """Forget history older than the last `keep` revisions, a step at a time; then give the space back.

        Each step is one short transaction on the store's thread, so the writes queued meanwhile
        go between two steps: compacting a million revisions never holds the store for long.
        """
        target = max(0, self._revision - max(keep, 0))
        oldest = await self._run(self._oldest_sync)
        while oldest < target:
            oldest = await self._run(self._compact_step_sync, target)
        while await self._run(self._vacuum_step_sync):
            pass
        return oldest

    def _compact_step_sync(self, target: int) -> int:
        """Compact up to COMPACT_STEP more revisions towards `target`; returns the oldest revision kept.

        Compacting to revision R keeps the state at R: each key's last row at or before R (a
        later row's previous value, what a watch from R needs), except a deletion's tombstone.
        A row is superseded at R exactly when the key's next row is at or before R, and that
        next row names it in `prev_revision`: so the step deletes the rows the rows of its
        range supersede, and the tombstones of its range. A key's latest row supersedes
        nothing newer and `current` is never touched: current values always survive.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            oldest = self._oldest_sync()
            upto = min(oldest + COMPACT_STEP, target)
            if upto > oldest:
                db.execute(
                    "DELETE FROM log WHERE revision IN"
                    " (SELECT prev_revision FROM log WHERE revision > ? AND revision <= ? AND prev_revision > 0)",
                    (oldest, upto),
                )
                db.execute("DELETE FROM log WHERE revision > ? AND revision <= ? AND value IS NULL", (oldest, upto))
                db.execute(
                    "INSERT INTO meta (name, value) VALUES ('compacted', ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
                    (upto,),
                )
                oldest = upto
            db.execute("COMMIT")
        except BaseException as err:
            self._abandon(err)
            raise
        return oldest

    def _vacuum_step_sync(self) -> bool:
        """Give up to VACUUM_STEP free pages back to the file system; whether more are left.

        Once none are left, a checkpoint writes the WAL into the file, which then shrinks."""
        db = self.db
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        if free:
            # executescript steps the pragma to its end; execute would free one page only
            db.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP})")
        if free > VACUUM_STEP:
            return True
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return False

    # -- watch ---------------------------------------------------------------

    async def watch(self, prefix: str, after: int, prev: bool = True) -> AsyncIterator[WatchEvent]:
        # `prev` costs nothing here (kept as stored text until read): always given.
        # Subscribe to live events first, then replay history, then drop
        # duplicates: nothing between the replay and the live stream is missed.
        watcher = self._hub.subscribe(prefix)
        try:
            history = await self._run(self._history_sync, prefix, after)
            last = after
            for event in history:
                yield event
                last = event.revision
            while True:
                live = await watcher.queue.get()
                if live is None:
                    raise WatchExpired(f"watch on {prefix!r} fell too far behind; list again")
                if live.revision > last:
                    last = live.revision
                    yield live
        finally:
            self._hub.unsubscribe(watcher)

    def _history_sync(self, prefix: str, after: int) -> list[WatchEvent]:
        oldest = self._oldest_sync()
        if after < oldest:
            raise Compacted(after, oldest)
        rows = self.db.execute(
            "SELECT l.revision, l.key, l.value, p.value FROM log l LEFT JOIN log p ON p.revision = l.prev_revision"
            " WHERE l.revision > ? AND l.key >= ? AND l.key < ? ORDER BY l.revision",
            (after, prefix, _prefix_end(prefix)),
        ).fetchall()
        return [
            WatchEvent(rev, key, orjson.loads(value) if value else None, prev)
            for rev, key, value, prev in rows
        ]

    async def close(self) -> None:
        if self._committer is not None:  # what was queued is written (and its callers answered) first
            await asyncio.gather(self._committer, return_exceptions=True)
        self._hub.close()
        if self._db is not None:
            await self._run(self.db.close)
            self._db = None
        self._executor.shutdown(wait=False)


def _json_rows(db: sqlite3.Connection, select: str, keys: list[str]) -> list[list[Any]]:
    """The rows of `select` (one `json_array(...) AS row` each, `{keys}` where the IN list goes),
    fetched as one JSON array in one row: one GIL hand-over instead of one per row."""
    marks = ",".join("?" * len(keys))
    (found,) = db.execute(f"SELECT json_group_array(json(row)) FROM ({select.format(keys=marks)})", keys).fetchone()
    rows: list[list[Any]] = orjson.loads(found)
    return rows


def _insert(db: sqlite3.Connection, head: str, rows: Sequence[tuple[object, ...]], tail: str = "") -> None:
    """INSERT `rows` with a few multi-row statements (`head` VALUES (...), (...) ... `tail`)."""
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        row = "(" + ",".join("?" * len(chunk[0])) + ")"
        db.execute(f"{head} VALUES {','.join([row] * len(chunk))}{tail}", [value for r in chunk for value in r])


def _key_value(row: tuple[str, str, int, int]) -> KeyValue:
    return KeyValue(key=row[0], value=orjson.loads(row[1]), create_revision=row[2], mod_revision=row[3])


# One row of the log table: (revision, key, value or None for a delete, create_revision, prev_revision).
_LogRow = tuple[int, str, str | None, int, int]


@dataclass
class _Txn:
    ops: list[Op]
    each: bool  # skip the ops whose expectation fails instead of failing the whole transaction
    future: "asyncio.Future[tuple[int, list[int]]]"


_GROUP_OPS = 20_000  # at most this many ops in one group commit (a larger transaction goes alone)


def _plan(
    txn: _Txn,
    state: dict[str, tuple[int, int, str | None, int]],
    revision: int,
    log_rows: list[_LogRow],
    events: list[WatchEvent],
) -> tuple[int, list[int]]:
    """Work out one transaction against `state` (key -> mod revision, create revision, value, last
    log revision), appending its log rows and events; returns (its revision, skipped op indexes).

    Raises Conflict, having changed nothing, when an expectation fails and not `txn.each`; InvalidSpec
    when a value cannot be encoded.
    """
    changes: dict[str, tuple[int, int, str | None, int]] = {}
    rows: list[_LogRow] = []
    found: list[WatchEvent] = []
    skipped: list[int] = []
    for at, op in enumerate(txn.ops):
        mod_revision, create_revision, text, last = changes.get(op.key) or state.get(op.key, (0, 0, None, 0))
        # A value written earlier in this transaction has no revision its writer could know (etcd gives
        # the whole transaction one, once committed): only "absent" (0, after a delete) can be expected of it.
        written_here = op.key in changes and text is not None
        if op.expect is not None and (op.expect != mod_revision or written_here):
            if not txn.each:
                where = f"at revision {mod_revision}" if text is not None else "absent"
                raise Conflict(f"{op.key} changed: expected revision {op.expect}, it is {where}")
            skipped.append(at)
            continue
        if op.value is None:
            if text is None:
                continue  # deleting what is not there: no change, no revision
            revision += 1
            rows.append((revision, op.key, None, create_revision, last))
            changes[op.key] = (0, 0, None, revision)
            found.append(WatchEvent(revision, op.key, None, text))
            continue
        revision += 1
        try:
            new_text = orjson.dumps(op.value).decode()
        except orjson.JSONEncodeError as err:  # e.g. an integer beyond 64 bits: refused, this transaction only
            raise InvalidSpec("", f"{op.key} cannot be stored: {err}") from None
        created = create_revision if text is not None else revision
        rows.append((revision, op.key, new_text, created, last))
        changes[op.key] = (revision, created, new_text, revision)
        # the previous value decoded if read; the writer's object (if any) saves the cache validating `value` again
        found.append(WatchEvent(revision, op.key, op.value, text, op.model))
    state.update(changes)
    log_rows.extend(rows)
    events.extend(found)
    return revision, skipped
