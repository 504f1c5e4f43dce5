"""A thin async wrapper over httpx that turns error bodies into ApiError.

It knows URLs and JSON, not what the objects mean: callers get plain dicts
(the documented API fields) or pydantic models they validate themselves.
"""

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from corral.client.calls import PAGE, ApiError, ManagerList, authorization, error_answer, why_unreachable
from corral.model.headers import LEADER_HEADER
from corral.model.paging import CONTINUE_HEADER

__all__ = ["PAGE", "ApiError", "ManagerClient"]

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection


class ManagerClient(ManagerList):
    """`token`: sent as `Authorization: Bearer` on every call (an agent's node credential, see `use_token`).

    `url` may name several managers of one control plane, comma-separated: calls go to one of them, and move
    to the next when it cannot be reached (then the error is raised if a request may have been sent), or to
    the leader a follower names (a 503 with the `X-Corral-Leader` header, for agents' calls).
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0, verify: ssl.SSLContext | bool = True) -> None:
        """`verify`: the TLS context to check the manager with (the cluster CA; a node's certificate), as httpx takes it."""
        super().__init__(url)
        headers = authorization(token)
        self.token = token
        self._options: dict[str, Any] = {"timeout": timeout, "verify": verify}
        self._http = httpx.AsyncClient(headers=headers, **self._options)

    async def reconnect(self) -> None:
        """New connections from now on (a node certificate was replaced in the TLS context); the open ones are closed."""
        old, self._http = self._http, httpx.AsyncClient(headers=self._http.headers, **self._options)
        await old.aclose()

    def use_token(self, token: str) -> None:
        """Send this token from now on."""
        self.token = token
        self._http.headers.update(authorization(token))

    async def __aenter__(self) -> "ManagerClient":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None, timeout: float | None = None,
        token: str | None = None,
    ) -> Any:
        """`token`: sent instead of the client's for this call (an agent joins with the join token)."""
        response = await self._send(method, path, json_body=json_body, params=params, timeout=timeout, token=token)
        return orjson.loads(response.content) if response.content else None

    async def pages(self, path: str, limit: int = PAGE, **params: Any) -> AsyncIterator[list[Any]]:
        """A paged list (docs/api.md, "Paged lists"), one page at a time, following each page's continue token.

        Every page reflects the revision of the first; a 410 (the listing expired) is raised as ApiError."""
        query = {k: v for k, v in params.items() if v is not None}
        token: str | None = None
        while True:
            answer = await self._send("GET", path, params={**query, "limit": limit, **({"continue": token} if token else {})})
            yield orjson.loads(answer.content)
            token = answer.headers.get(CONTINUE_HEADER)
            if not token:
                return

    async def _send(
        self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None, timeout: float | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        body = None if json_body is None else orjson.dumps(json_body)  # large batches: orjson is ~10x json
        headers = dict(_JSON) if body is not None else {}
        if token is not None:
            headers.update(authorization(token))
        for attempt in range(len(self.urls) + 1):
            url = self.url
            try:
                response = await self._http.request(
                    method, url + path, content=body, params=params, headers=headers or None,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:  # nothing was sent: the next manager may answer
                self._next()
                if attempt < len(self.urls) - 1:
                    continue
                raise ApiError(f"cannot reach the manager at {url}: {_why(url, err)}") from err
            except httpx.TransportError as err:  # may have been sent: not repeated here, but the next call goes elsewhere
                if len(self.urls) > 1:
                    self._next()
                raise ApiError(f"cannot reach the manager at {url}: {_why(url, err)}") from err
            leader = response.headers.get(LEADER_HEADER)
            if response.status_code == 503 and leader and leader.rstrip("/") != url and attempt < len(self.urls):
                self._next(leader)  # a follower refused an agent's call: the leader takes it
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response
        raise ApiError(f"no manager of {', '.join(self.urls)} took the call")

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, json_body=body)

    def stream(self, path: str, **params: Any) -> AsyncIterator[Any]:
        """Follow an NDJSON stream, one JSON value (an object, or a list for endpoint watches) per line."""
        return self._ndjson("GET", path, params, None)

    def stream_post(self, path: str, body: Any) -> AsyncIterator[Any]:
        """POST `body` and follow the NDJSON stream that answers (e.g. a command's output)."""
        return self._ndjson("POST", path, {}, body)

    async def _ndjson(self, method: str, path: str, params: Mapping[str, Any], json_body: Any) -> AsyncIterator[Any]:
        try:
            async with self._http.stream(
                method, self.url + path, params=params, json=json_body, timeout=httpx.Timeout(10, read=None)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        item = json.loads(line)
                        if "error" in item:  # the stream failed after it started (docs/api.md)
                            raise ApiError(str(item["error"]), 0, item.get("path"))
                        yield item
        except httpx.TransportError as err:
            url = self.url
            self._next()  # the next stream (or call) tries another manager of the list
            raise ApiError(f"lost the manager at {url}: {err or type(err).__name__}") from err


    async def session(self, path: str) -> "ClientConnection":
        """A WebSocket to the manager (`corral exec -it`), with the token and the TLS trust of every call.
        A refused handshake raises ApiError with the manager's status and message, as a refused call does."""
        from websockets.asyncio.client import connect  # only `corral exec -i/-t` needs it (the CLI starts fast)
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        url = self.url
        secure = url.startswith("https://")
        target = ("wss://" + url.removeprefix("https://") if secure else "ws://" + url.removeprefix("http://")) + path
        context: ssl.SSLContext | None = None
        verify = self._options["verify"]
        if secure and isinstance(verify, ssl.SSLContext):
            context = verify
        elif secure and verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        headers = authorization(self.token)
        try:
            return await connect(target, ssl=context, additional_headers=headers, open_timeout=10, compression=None)
        except InvalidStatus as err:
            raise _error(httpx.Response(err.response.status_code, content=bytes(err.response.body or b""))) from None
        except (OSError, TimeoutError, InvalidHandshake) as err:
            raise ApiError(f"cannot reach the manager at {url}: {err or type(err).__name__}") from err


_JSON = {"content-type": "application/json"}


def _why(url: str, err: httpx.TransportError) -> str:
    return why_unreachable(url, str(err) or type(err).__name__, isinstance(err, (httpx.ReadError, httpx.RemoteProtocolError)))


def _error(response: httpx.Response) -> ApiError:
    return error_answer(response.status_code, response.content, response.reason_phrase)
