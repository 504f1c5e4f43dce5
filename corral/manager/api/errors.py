"""The one place that turns errors into HTTP responses.

Every error body is {"error": message, "path": field path or null}, whoever
raised it: corral's own errors, pydantic validation of a request (with the
field path), a body that is not JSON, an unknown route (404), a method the
path does not have (405, with an `Allow` header naming every method the path
has), and anything unexpected (500). Each CorralError carries its status
(corral/model/errors.py); a 503 (NotCaughtUp: the write is stored, this
manager has not seen it yet) also says when to retry (`Retry-After`).
"""

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from corral.model.errors import CorralError, InvalidSpec, NotCaughtUp, Unauthorized

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str = Field(description="what was wrong, and what to do")
    path: str | None = Field(description="the field at fault (e.g. services.web.deploy.replicas), or null")


def error_response(status: int, message: str, path: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "path": path}, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(CorralError)
    async def corral_error(_request: Request, err: CorralError) -> JSONResponse:
        path = err.path if isinstance(err, InvalidSpec) else None
        headers = {"Retry-After": "1"} if isinstance(err, NotCaughtUp) else {"WWW-Authenticate": "Bearer"} if isinstance(err, Unauthorized) else None
        return error_response(err.status, str(err), path, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        problems = []
        for item in err.errors():
            loc = ".".join(str(part) for part in item["loc"] if part not in ("body",))
            problems.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
        first = err.errors()[0]["loc"] if err.errors() else ()
        path = ".".join(str(p) for p in first if p != "body") or None
        return error_response(422, "; ".join(problems) or "invalid request", path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        headers = dict(err.headers or {})
        if err.status_code == 405:
            allowed = allowed_methods(request) or sorted(headers.get("Allow", "").replace(" ", "").split(","))
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}: use {', '.join(allowed)}"
        elif err.status_code == 404 and err.detail == "Not Found":
            message = f"no such route: {request.url.path} (see /docs for the API)"
        else:
            message = str(err.detail)
        return error_response(err.status_code, message, None, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return error_response(500, f"internal error: {type(err).__name__}; see the manager's log")


def allowed_methods(request: Request) -> list[str]:
    """Every method of the request's path, as the OpenAPI document has them (Starlette's 405 names
    only those of the first route that matched the path, not of the routes beside it)."""
    path = request.url.path
    methods = set()
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations if method.upper() in HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever GET is
    return sorted(methods)


HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}
