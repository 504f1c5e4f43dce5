"""The manager's API for one-off CLI calls (`corral service ls`, `node ls`...): blocking, standard library only.

A listing command makes one or a few GETs and exits, so what it pays for is start-up: httpx, httpcore, anyio and
asyncio cost ~90 ms of imports before the first byte is sent, more than the call itself. This client is
http.client and ssl, over one kept-alive connection (one TLS handshake for every page), with ManagerClient's
behaviour for what a listing needs: the same token header (corral/client/calls.py `authorization`), the same
errors (ApiError with the manager's message and path, the same "cannot reach the manager" hints), the same
paging (`pages` follows X-Corral-Continue), and the same failover over a comma-separated list of managers (one
that cannot be reached is passed over; a follower's 503 naming the leader sends the call there).
Long-lived callers (agents, streams, WebSockets) use ManagerClient (corral/client/http.py).
"""

import http.client
import json
import ssl
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from corral.client.calls import PAGE, ApiError, ManagerList, authorization, error_answer, why_unreachable
from corral.model.headers import LEADER_HEADER
from corral.model.paging import CONTINUE_HEADER


class PlainClient(ManagerList):
    """`verify`: the TLS context to check the manager with (the cluster CA's), True for the system's CAs, False for none."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(url)
        self.token = token
        self.timeout = timeout
        self.verify = verify
        self._headers = {"Accept": "application/json", **authorization(token)}
        self._connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> "PlainClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str, **params: Any) -> Any:
        answer, _ = self._send("GET", path, params)
        return json.loads(answer) if answer else None

    def pages(self, path: str, limit: int = PAGE, **params: Any) -> Iterator[list[Any]]:
        """A paged list (docs/api.md, "Paged lists"), one page at a time, following each page's continue token;
        a 410 (the listing expired) is raised as ApiError."""
        token: str | None = None
        while True:
            answer, headers = self._send("GET", path, {**params, "limit": limit, "continue": token})
            yield json.loads(answer)
            token = headers.get(CONTINUE_HEADER)
            if not token:
                return

    def _send(self, method: str, path: str, params: Mapping[str, Any]) -> tuple[bytes, http.client.HTTPMessage]:
        target = path + ("?" + query if (query := query_string(params)) else "")
        for attempt in range(len(self.urls) + 1):
            url = self.url
            try:
                connection = self._connect()
            except OSError as err:  # nothing was sent: the next manager may answer
                self._next()
                if attempt < len(self.urls) - 1:
                    continue
                raise ApiError(f"cannot reach the manager at {url}: {why_unreachable(url, _said(err), closed=False)}") from err
            try:
                connection.request(method, urlsplit(url).path + target, headers=self._headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as err:  # may have been sent: not repeated
                self.close()
                if len(self.urls) > 1:
                    self._next()
                closed = isinstance(err, (ConnectionError, http.client.RemoteDisconnected, ssl.SSLError))
                raise ApiError(f"cannot reach the manager at {url}: {why_unreachable(url, _said(err), closed)}") from err
            leader = response.headers.get(LEADER_HEADER)
            if response.status == 503 and leader and leader.rstrip("/") != url and attempt < len(self.urls):
                self._next(leader)
                continue
            if response.status >= 400:
                raise error_answer(response.status, body, response.reason)
            return body, response.headers
        raise ApiError(f"no manager of {', '.join(self.urls)} took the call")

    def _connect(self) -> http.client.HTTPConnection:
        """The open connection to the current manager, else a new one (connected here, so a failure means nothing was sent)."""
        if self._connection is None:
            parts = urlsplit(self.url)
            if parts.scheme == "https":
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port or 443, timeout=self.timeout, context=tls_context(self.verify),
                )
            elif parts.scheme == "http":
                connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=self.timeout)
            else:
                raise ApiError(f"the manager's URL {self.url!r} is neither https:// nor http://")
            try:
                connection.connect()
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _next(self, leader: str | None = None) -> None:
        self.close()  # the connection is to the manager calls went to
        super()._next(leader)


def tls_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The context to check a manager with: the one given (the cluster CA alone), else the system's CAs (loaded only
    here, for a manager whose certificate comes from a public CA), else none at all."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def query_string(params: Mapping[str, Any]) -> str:
    """`params` as httpx encodes them (None left out, booleans as true/false), so both clients ask the same."""
    pairs = [(key, ("true" if value else "false") if isinstance(value, bool) else str(value))
             for key, value in params.items() if value is not None]
    return urlencode(pairs)


def _said(err: BaseException) -> str:
    return str(err) or type(err).__name__
