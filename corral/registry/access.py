"""Who may use the registry: HTTP basic auth, checked by the manager before any route runs.

`docker login HOST:PORT -u corral -p TOKEN` stores the credentials; Docker
sends them as basic auth after a 401 with a `WWW-Authenticate: Basic`
challenge (the distribution spec allows basic auth besides its token
flow). The check itself is the manager's (`Authorizer`: API tokens and
node credentials live in its store); this module only reads the header and
answers refusals as the spec does: 401 `UNAUTHORIZED` with the challenge,
403 `DENIED`. Reads are GET and HEAD; everything else writes.
"""

import base64
import binascii
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.model.errors import CorralError, Unauthorized

# (user, password, writes) -> None (or False) when allowed, True when allowed as another manager's registry (a peer:
# see replication.py); raises a CorralError (401: who are you, 403: not allowed) otherwise.
Authorizer = Callable[[str, str, bool], Awaitable[bool | None]]
PEER = "corral.registry.peer"  # the ASGI scope key set on a peer's request
CHALLENGE = 'Basic realm="corral registry"'


def basic_credentials(header: str | None) -> tuple[str, str]:
    if not header:
        raise Unauthorized("the registry needs credentials: `docker login HOST:PORT -u corral -p TOKEN` with an API token")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("the registry takes HTTP basic auth (`docker login`), with an API token as the password")
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed basic auth header") from None
    if not sep or not password:
        raise Unauthorized("the registry needs a password: an API token (`corral token create`)")
    return user, password


class RequireCredentials:
    """ASGI middleware: every request passes `authorize` first."""

    def __init__(self, app: ASGIApp, authorize: Authorizer) -> None:
        self.app = app
        self.authorize = authorize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            user, password = basic_credentials(Headers(scope=scope).get("authorization"))
            peer = await self.authorize(user, password, scope["method"] not in ("GET", "HEAD"))
        except CorralError as err:
            refused = err.status == 401
            body = {"errors": [{"code": "UNAUTHORIZED" if refused else "DENIED", "message": str(err), "detail": None}]}
            headers = {"WWW-Authenticate": CHALLENGE, "Docker-Distribution-API-Version": "registry/2.0"} if refused else {}
            await JSONResponse(body, status_code=401 if refused else 403, headers=headers)(scope, receive, send)
            return
        scope[PEER] = bool(peer)
        await self.app(scope, receive, send)
