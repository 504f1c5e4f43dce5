"""Request-scoped access to the manager context, and the agent's token check."""

from fastapi import Header, Request

from corral.manager.cluster import check_token
from corral.manager.context import ManagerContext


def context(request: Request) -> ManagerContext:
    ctx: ManagerContext = request.app.state.context  # Starlette's State is untyped: create_app put it there
    return ctx


def require_token(request: Request, authorization: str | None = Header(default=None)) -> None:
    token = authorization.removeprefix("Bearer ").strip() if authorization else None
    check_token(context(request).join_token, token)
