"""The web UI: its static files at /ui/, and the one-time codes that sign a browser in (access/login_codes.py)."""

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from corral.manager.access import tokens
from corral.manager.access.login_codes import SESSION_LIFETIME, LoginCodes
from corral.manager.api.deps import context
from corral.manager.api.openapi import error_responses
from corral.manager.context import ManagerContext
from corral.ui import STATIC_DIR

router = APIRouter(prefix="/v1/ui", tags=["ui"])
bearer = HTTPBearer(auto_error=False, description="an API token")


class LoginCode(BaseModel):
    code: str = Field(description="trade it once, within a minute, at POST /v1/ui/session")
    path: str = Field(description="the UI's login path carrying the code: append it to the manager's URL")
    expires_at: float


class SessionRequest(BaseModel):
    code: str = Field(max_length=100)


class Session(BaseModel):
    token: str = Field(description="an API token for this browser, with the role of whoever asked for the code")
    name: str
    role: str
    expires_at: float


def _codes(request: Request) -> LoginCodes:
    state = request.app.state
    if not hasattr(state, "login_codes"):
        state.login_codes = LoginCodes(context(request).clock)
    codes: LoginCodes = state.login_codes  # Starlette's State is untyped
    return codes


@router.post("/codes", response_model=LoginCode, status_code=201, responses=error_responses(401))
async def create_code(
    found: HTTPAuthorizationCredentials | None = Depends(bearer), ctx: ManagerContext = Depends(context),
    codes: LoginCodes = Depends(_codes),
) -> LoginCode:
    """A one-time login code standing for the caller's token (`corral ui` prints the URL)."""
    record = await tokens.authenticate(ctx.store, found.credentials if found else None, ctx.clock())
    code, grant = codes.issue(record.name, record.role)
    return LoginCode(code=code, path=f"/ui/#/?code={code}", expires_at=grant.expires_at)


@router.post("/session", response_model=Session, status_code=201, responses=error_responses(401))
async def create_session(
    body: SessionRequest, ctx: ManagerContext = Depends(context), codes: LoginCodes = Depends(_codes)
) -> Session:
    """Trade a login code (no token needed: the code is the credential) for a token of the browser's own."""
    grant = codes.redeem(body.code)
    now = ctx.clock()
    name = f"ui@{grant.name}"[:64]
    text, record = await tokens.create_token(ctx.store, name, grant.role, now, now + SESSION_LIFETIME)
    assert record.expires_at is not None
    return Session(token=text, name=record.name, role=record.role.value, expires_at=record.expires_at)


def install(app: FastAPI) -> None:
    """/ui/ serves the page and its files (they hold no data: the page reads the API with its token)."""
    app.include_router(router)
    app.mount("/ui/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")
