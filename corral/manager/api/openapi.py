"""The OpenAPI document, with every error a route can answer declared.

FastAPI documents what a route returns when it succeeds, and a 422 in its own
`{"detail": ...}` shape. This module declares on every operation the errors
it can give, each with the one error body (`ErrorBody`), from what the
document already says of the operation (so a route added later gets them
without a word):

- 422 for an operation with parameters or a body, or that writes (validation; `InvalidSpec`);
- 400 for an operation with a body (one that cannot be read at all), and 413
  (a body over `--max-request-bytes`, api/body_limit.py);
- 404 for an operation with a path parameter (the object is unknown);
- 401 and 403 for an operation behind a credential (`security`: every route, api/auth.py);
- 409 for an operation that writes (POST, PUT, PATCH, DELETE: a lost compare-and-swap);
- 503 for an operation that writes (stored, but this manager has not caught up yet: `NotCaughtUp`);
- 507 for an operation that writes (the manager's disk is full: `StorageFull`).

A route adds what its shape cannot tell with `responses=error_responses(...)`
(e.g. 404 for the image routes of a manager without a registry), and a
route that reads its body itself (the agent's batched routes) documents it
with `openapi_extra=body_of(Model)`.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from corral.manager.access.roles import Role, required_role
from corral.manager.api.errors import ErrorBody

API_TOKEN = "APIToken"  # the security scheme of api/auth.py

WRITES = {"post", "put", "patch", "delete"}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
REASONS = {
    400: "The body could not be read",
    401: "A missing, unknown, expired or revoked credential; the error says which role the route needs",
    403: "The token's role does not allow this: the error names the role needed",
    404: "Not found",
    409: "Somebody else changed it first; retry",
    413: "The body is larger than the manager's --max-request-bytes",
    422: "Invalid input: the field path and why; nothing was changed",
    410: "That revision has been compacted: the error names the oldest one available",
    503: "The change is stored, but this manager has not caught up yet; retry the read",
    507: "The manager's disk is full: nothing was changed; writes work again once space is freed",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: these statuses answer with the error body."""
    return {status: {"model": ErrorBody, "description": REASONS.get(status, "Error")} for status in statuses}


_BODIES: dict[str, type[BaseModel]] = {}  # the models of `body_of`, by name


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads its JSON body itself: the document says it is a `model`."""
    _BODIES[model.__name__] = model
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def declared_errors(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from its description in the document."""
    parameters = operation.get("parameters", [])
    statuses = set()
    if parameters or "requestBody" in operation or method in WRITES:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if operation.get("security"):
        statuses |= {401, 403, 422}
    if method in WRITES:
        statuses |= {409, 503, 507}
    return statuses


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every operation's errors declared, FastAPI's own error shape gone, and the
    models of `body_of` in its components."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    if _BODIES:
        _, bodies = models_json_schema([(m, "validation") for m in _BODIES.values()], ref_template="#/components/schemas/{model}")
        for name, schema in bodies.get("$defs", {}).items():
            schemas.setdefault(name, schema)
    _agent_routes_take_no_api_token(document)
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in declared_errors(method, operation):
                declared = operation["responses"].get(str(status), {})
                operation["responses"][str(status)] = {
                    "description": declared.get("description", REASONS[status]),
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _agent_routes_take_no_api_token(document: dict[str, Any]) -> None:
    """The app-wide check (api/auth.py) declares an API token on every operation; the agent routes check a node's
    identity instead (their own `security`, or none: the CA certificate is public)."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and required_role(method, path) == Role.node and "security" in operation:
                operation["security"] = [s for s in operation["security"] if API_TOKEN not in s]
                if not operation["security"]:
                    del operation["security"]


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = completed(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
