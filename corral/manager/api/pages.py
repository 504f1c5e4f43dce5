"""Paged lists: `?limit=N&continue=TOKEN` on the lists that can be long, as Kubernetes' list API.

The first page (a `limit`, no `continue`) reads the list at the cache's revision R and, when more
than `limit` items match, keeps that list in order as a snapshot; each later page is a slice of it,
so every page of one listing is consistent with revision R: each object that existed at R is
listed exactly once, in the snapshot's order, as it was at R, whatever is written meanwhile.
A first page costs a copy of what matches (and, for nodes and services, a sort by name); task
lists keep the cache's order, since sorting 100,000 tasks per first page took over a second. (The cache holds only
the current state, so the snapshot is the one way it can honour a revision.) Figures computed
from other objects (a node's reserved resources, a service's running count, health) are current
when the page is served.

A snapshot is held by the manager that made it, for SNAPSHOT_IDLE seconds after its last page, at
most SNAPSHOTS_KEPT of them and SNAPSHOT_ITEMS items in all (the least recently used goes first):
a snapshot holds the objects as they were, so it keeps the versions written since alive in memory. A token whose snapshot is gone
(expired, evicted, a manager restart, another manager of the control plane) gets 410 Gone: list
again from the first page, as Kubernetes answers a token whose revision was compacted.

Without `limit` a list answers as before (every item, one JSON array), for the clients that know
no pages (the web UI, scripts); the answer's body is a JSON array in both cases and the paging
state travels in headers (CONTINUE_HEADER, REVISION_HEADER, REMAINING_HEADER).
"""

import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import orjson
from fastapi import Query, Request, Response

from corral.manager.api.openapi import error_responses
from corral.model.errors import BadParameter, ListingExpired
from corral.model.paging import CONTINUE_HEADER, REMAINING_HEADER, REVISION_HEADER

T = TypeVar("T")

DEFAULT_LIMIT = 500  # a page when `continue` comes without `limit`
MAX_LIMIT = 5000  # more is a 400: one page must stay cheap to build and encode
SNAPSHOTS_KEPT = 16
SNAPSHOT_ITEMS = 1_000_000  # items all snapshots hold together at most (the newest is kept whatever its size)
SNAPSHOT_IDLE = 60.0  # seconds a listing's snapshot is kept after its last page

PAGE_HEADERS: dict[str, Any] = {
    CONTINUE_HEADER: {"description": "opaque token: send it as `continue` for the next page (absent on the last)", "schema": {"type": "string"}},
    REVISION_HEADER: {"description": "the store revision every page of this listing reflects", "schema": {"type": "integer"}},
    REMAINING_HEADER: {"description": "how many items follow this page", "schema": {"type": "integer"}},
}
PAGED: dict[int | str, dict[str, Any]] = {
    200: {"headers": PAGE_HEADERS},
    400: {**error_responses(400)[400], "description": "A bad `limit` or `continue`: the error's path names it"},
    410: {**error_responses(410)[410], "description": "The listing's snapshot expired: list again from the first page"},
}


@dataclass(frozen=True)
class Token:
    listing: str  # a digest of what was listed (collection and filters): a token fits only its own listing
    revision: int
    offset: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(orjson.dumps([self.listing, self.revision, self.offset])).decode().rstrip("=")

    @staticmethod
    def decode(text: str) -> "Token":
        try:
            listing, revision, offset = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, TypeError, binascii.Error):
            raise BadParameter("continue", "not a token this API gave: send the X-Corral-Continue header of the previous page") from None
        if not (isinstance(listing, str) and type(revision) is int and type(offset) is int and offset > 0):
            raise BadParameter("continue", "not a token this API gave: send the X-Corral-Continue header of the previous page")
        return Token(listing, revision, offset)


@dataclass(frozen=True)
class PageRequest:
    limit: int | None  # None: the whole list, unpaged
    token: Token | None


async def page_request(
    # Read as text and checked here, for a 400 naming the parameter (FastAPI's own check answers 422); documented
    # as the integer it must be.
    limit: str = Query(
        None, description=f"at most this many items; the answer's {CONTINUE_HEADER} header continues",
        json_schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    ),
    continue_token: str | None = Query(
        None, alias="continue", description=f"the {CONTINUE_HEADER} header of the previous page",
        json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$"},
    ),
) -> PageRequest:
    """The paging parameters; 400 naming the parameter when one is wrong."""
    token = Token.decode(continue_token) if continue_token is not None else None
    if limit is None:
        return PageRequest(DEFAULT_LIMIT if token else None, token)
    try:
        number = int(limit)
    except ValueError:
        raise BadParameter("limit", f"{limit!r} is not a whole number: expected 1 to {MAX_LIMIT}") from None
    if not 1 <= number <= MAX_LIMIT:
        raise BadParameter("limit", f"{number} is out of range: expected 1 to {MAX_LIMIT}")
    return PageRequest(number, token)


@dataclass
class Snapshot:
    items: Sequence[object]
    used_at: float


@dataclass
class Page(Generic[T]):
    items: Sequence[T]
    revision: int
    remaining: int
    next: Token | None

    def headers(self) -> dict[str, str]:
        found = {REVISION_HEADER: str(self.revision), REMAINING_HEADER: str(self.remaining)}
        if self.next is not None:
            found[CONTINUE_HEADER] = self.next.encode()
        return found

    def apply(self, response: Response) -> None:
        response.headers.update(self.headers())


class Listings:
    """The snapshots of the listings under way on this manager (see the module's docstring)."""

    def __init__(self, kept: int = SNAPSHOTS_KEPT, idle: float = SNAPSHOT_IDLE, items: int = SNAPSHOT_ITEMS) -> None:
        self.kept = kept
        self.idle = idle
        self.items = items
        self._snapshots: OrderedDict[tuple[str, int], Snapshot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._snapshots)

    def page(self, listing: str, revision: int, items: Callable[[], Sequence[T]], request: PageRequest, now: float) -> Page[T]:
        """One page of `listing` (a name for the collection and its filters).

        `revision`: the cache's now; `items`: the whole list at it, in order (called for a first page only)."""
        assert request.limit is not None, "an unpaged request is answered without Listings"
        self._expire(now)
        digest = hashlib.blake2s(listing.encode(), digest_size=8).hexdigest()
        if request.token is None:
            key, offset = (digest, revision), 0
            snapshot = self._snapshots.get(key)  # one made at this very revision serves as well
            if snapshot is None:
                snapshot = Snapshot(items(), now)
        else:
            if request.token.listing != digest:
                raise BadParameter("continue", "the token belongs to another listing (other path or filters): send the same ones")
            key, offset = (digest, request.token.revision), request.token.offset
            found = self._snapshots.get(key)
            if found is None:
                raise ListingExpired(
                    f"the listing at revision {request.token.revision} has expired (kept {self.idle:g} s after its last page,"
                    " on the manager that began it): list again from the first page"
                )
            snapshot = found
        chosen = cast(Sequence[T], snapshot.items)
        end = offset + request.limit
        if end < len(chosen):
            snapshot.used_at = now
            self._snapshots[key] = snapshot
            self._snapshots.move_to_end(key)
            held = sum(len(each.items) for each in self._snapshots.values())
            while len(self._snapshots) > 1 and (len(self._snapshots) > self.kept or held > self.items):
                _, dropped = self._snapshots.popitem(last=False)
                held -= len(dropped.items)
            following: Token | None = Token(digest, key[1], end)
        else:  # the last page; the snapshot stays until it expires (another listing may share its revision)
            following = None
        return Page(chosen[offset:end], key[1], max(0, len(chosen) - end), following)

    def _expire(self, now: float) -> None:
        for key in [key for key, snapshot in self._snapshots.items() if now - snapshot.used_at > self.idle]:
            del self._snapshots[key]


async def listings(request: Request) -> Listings:
    """The app's Listings (one per manager process)."""
    state = request.app.state
    if not hasattr(state, "listings"):
        state.listings = Listings()
    found: Listings = state.listings  # Starlette's State is untyped: this is what it holds
    return found


def listing_name(path: str, **filters: Any) -> str:
    """What a token is bound to: the path and its filters."""
    return path + "?" + "&".join(f"{k}={v}" for k, v in sorted(filters.items()) if v is not None)
