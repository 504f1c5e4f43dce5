"""The OpenAPI document, with every error a route can answer declared.

FastAPI documents what a route returns when it succeeds, and a 422 in its own
`{"detail": ...}` shape. This module declares, on every operation and from
the route's shape alone (so a route added later gets them too), the errors it
can give, each with the one error body (`ErrorBody`):

- 422 for a route with parameters or a body (validation; `InvalidSpec`);
- 400 for a route with a body (one that cannot be read at all);
- 404 for a route with a path parameter (the object is unknown);
- 401 for a route behind a credential (the agent routes);
- 409 for a route that writes (POST, PUT, PATCH, DELETE: a lost compare-and-swap).

A router adds what its routes' shape cannot tell with `responses=` (e.g. 404
for the image routes of a manager without a registry).
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from corral.manager.api.errors import ErrorBody

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
REASONS = {
    400: "The body could not be read",
    401: "A missing or wrong credential",
    404: "Not found",
    409: "Somebody else changed it first; retry",
    422: "Invalid input: the field path and why; nothing was changed",
}


def error_responses(*statuses: int, reason: str | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or route: these statuses answer with the error body."""
    return {status: {"model": ErrorBody, "description": reason or REASONS.get(status, "Error")} for status in statuses}


def _walk(dependant: Dependant) -> list[Dependant]:
    found = [dependant]
    for sub in dependant.dependencies:
        found += _walk(sub)
    return found


def declared_errors(route: APIRoute, guarded: Callable[[Dependant], bool]) -> set[int]:
    """The error statuses a route can answer, from its shape."""
    parts = _walk(route.dependant)
    statuses = set()
    has_body = any(part.body_params for part in parts)
    if has_body or any(part.path_params or part.query_params or part.header_params for part in parts):
        statuses.add(422)
    if has_body:
        statuses.add(400)
    if any(part.path_params for part in parts):
        statuses.add(404)
    if any(guarded(part) for part in parts):
        statuses |= {401, 422}
    if route.methods & WRITES:
        statuses |= {409, 422}
    return statuses


def install(app: FastAPI, guarded: Callable[[Dependant], bool]) -> None:
    """`guarded(dependant)`: whether this dependency checks a credential (its routes can answer 401)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        for route in app.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods:
                operation = document["paths"][route.path_format].get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for status in declared_errors(route, guarded):
                    responses[str(status)] = {
                        "description": REASONS[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
