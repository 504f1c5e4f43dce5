"""Who may call a route: the one check in front of every route of the API.

`authorize` is an application-wide dependency (create_app): it takes the
route's path template (`/v1/nodes/{name}`, not the request's path), asks
`roles.required_role` which role it needs, and then

- for /v1/agent routes (the `node` role), does nothing: those routes check
  the node's identity themselves (deps.py: certificate and node credential;
  registration: the join token), and a user token is no node credential, so
  it is refused there (401);
- for every other route, needs `Authorization: Bearer <API token>`: 401 when
  it is missing, malformed, unknown, revoked or expired, 403 when its role
  is too weak. Both answer the one error body and say which role is needed.

The token's record is kept on the request (`caller`) for the audit trail
(audit.py). What is not a route (the OpenAPI document and /docs) is not
checked: the document is the API's public description and holds no data.
"""

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from starlette.routing import Route

from corral.manager.access import tokens
from corral.manager.access.roles import CODE_ONLY, Role, require, required_role
from corral.manager.access.tokens import TokenRecord
from corral.manager.api.deps import context_of
from corral.manager.api.openapi import API_TOKEN
from corral.manager.context import ManagerContext
from corral.model.errors import Unauthorized

api_token = HTTPBearer(
    auto_error=False, scheme_name=API_TOKEN,
    description="an API token (`corral token create`; DATA_DIR/admin-token); the /v1/agent routes take a node's credential instead",
)


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    return route.path_format if isinstance(route, Route) else request.url.path  # as the document has it: {ref}, not {ref:path}


async def authorize(request: Request, found: HTTPAuthorizationCredentials | None = Depends(api_token)) -> None:
    needed = required_role(request.method, route_template(request))
    if needed == Role.node:
        return  # the agent routes' own dependencies check the node's identity
    if (request.method, route_template(request)) in CODE_ONLY:
        return  # the body's one-time code is the credential (the web UI signing in)
    ctx = context_of(request)
    try:
        record = await tokens.authenticate(ctx.store, found.credentials if found else None, ctx.clock(), ctx.cache.tokens)
    except Unauthorized as err:
        raise Unauthorized(f"{err}; {request.method} {route_template(request)} needs a token of the {needed.value} role or above") from None
    request.state.caller = record
    require(record.role, request.method, route_template(request))


def caller(request: Request) -> TokenRecord:
    """The token the request was authorized with (a route behind `authorize`, not an agent route)."""
    record: TokenRecord = request.state.caller
    return record


async def authorize_session(connection: HTTPConnection, template: str) -> TokenRecord:
    """The check of `authorize` for a WebSocket route (FastAPI's dependencies and HTTPBearer are for requests):
    the method is `WEBSOCKET`, which roles.POLICY gives to admin. Unauthorized or Forbidden when refused."""
    scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
    ctx: ManagerContext = connection.app.state.context
    try:
        record = await tokens.authenticate(ctx.store, secret.strip() if scheme.lower() == "bearer" else None, ctx.clock())
    except Unauthorized as err:
        raise Unauthorized(f"{err}; WEBSOCKET {template} needs a token of the {required_role('WEBSOCKET', template).value} role") from None
    require(record.role, "WEBSOCKET", template)
    return record
