"""/v1/tokens (admin only, roles.POLICY) and /v1/whoami (any token): API tokens made, listed, revoked.

A token's text is in the answer to its creation and nowhere else, ever: the
store keeps its sha256 (access/tokens.py). Names are unique among tokens not
revoked, so `DELETE /v1/tokens/{name}` says which one; a revoked token stays
listed (the audit trail names it).
"""

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from corral.manager.access import tokens
from corral.manager.access.roles import TOKEN_ROLES, Role
from corral.manager.access.tokens import TokenRecord
from corral.manager.api.auth import caller
from corral.manager.api.deps import context
from corral.manager.api.openapi import error_responses
from corral.manager.context import ManagerContext
from corral.model.errors import Conflict, InvalidSpec, NotFound

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
whoami_router = APIRouter(prefix="/v1", tags=["tokens"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,63}$", description="unique among the tokens not revoked")
    role: Role = Field(description="viewer, deployer or admin")
    expires_in: float | None = Field(default=None, gt=0, description="seconds from now; none: never expires")


class TokenInfo(BaseModel):
    """A token as listed: never its text."""

    id: str
    name: str
    role: Role
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    state: str = Field(description="active, expired or revoked")


class NewToken(TokenInfo):
    token: str = Field(description="the token itself: shown this once, kept nowhere")


def _info(record: TokenRecord, now: float) -> TokenInfo:
    state = "revoked" if record.revoked else "expired" if record.expires_at is not None and now >= record.expires_at else "active"
    return TokenInfo(**record.model_dump(exclude={"secret_sha256"}), state=state)


@router.post("", response_model=NewToken, status_code=201)
async def create(body: TokenRequest, ctx: ManagerContext = Depends(context)) -> NewToken:
    if body.role not in TOKEN_ROLES:
        raise InvalidSpec("role", f"a token's role is one of {', '.join(r.value for r in TOKEN_ROLES)}")
    now = ctx.clock()
    if any(t.name == body.name and not t.revoked for t in await tokens.list_tokens(ctx.store)):
        raise Conflict(f"a token named {body.name!r} exists: revoke it first (`corral token revoke {body.name}`) or pick another name")
    text, record = await tokens.create_token(
        ctx.store, body.name, body.role, now, None if body.expires_in is None else now + body.expires_in
    )
    return NewToken(**_info(record, now).model_dump(), token=text)


@router.get("", response_model=list[TokenInfo])
async def listing(ctx: ManagerContext = Depends(context)) -> list[TokenInfo]:
    now = ctx.clock()
    return [_info(record, now) for record in await tokens.list_tokens(ctx.store)]


@router.delete("/{name}", response_model=TokenInfo, responses=error_responses(404))
async def revoke(name: str, ctx: ManagerContext = Depends(context)) -> TokenInfo:
    """Revoke the token named `name` (or with that id); it is refused from the next request on."""
    found = [t for t in await tokens.list_tokens(ctx.store) if (t.name == name and not t.revoked) or t.id == name]
    if not found:
        raise NotFound(f"no token named {name!r} that is not revoked (see `corral token ls`)")
    revoked = await tokens.revoke_token(ctx.store, found[0].id, ctx.clock())
    if ctx.cache.synced.is_set():  # requests are authenticated from the cache: refused from the next one on, here too
        await ctx.cache.wait_for(await ctx.store.revision())
    return _info(revoked, ctx.clock())


@whoami_router.get("/whoami", response_model=TokenInfo)
async def whoami(request: Request, ctx: ManagerContext = Depends(context)) -> TokenInfo:
    """The token this request carries: its name, role and expiry."""
    return _info(caller(request), ctx.clock())
