"""The web UI: its static files at /ui/, the one-time codes that sign a browser in (access/login_codes.py), and
/docs and /redoc with their scripts from the package (fastapi-offline's copies of Swagger UI and ReDoc), not a CDN.

The page, its files and the API's documentation hold no data: they are Starlette routes, outside the
application-wide token check (auth.py); every call the page makes sends its own token.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from corral.manager.access import tokens
from corral.manager.access.login_codes import SESSION_LIFETIME, LoginCodes
from corral.manager.access.tokens import TokenRecord
from corral.manager.api.auth import caller
from corral.manager.api.deps import context, context_of
from corral.manager.api.openapi import error_responses
from corral.manager.context import ManagerContext
from corral.ui import STATIC_DIR

router = APIRouter(prefix="/v1/ui", tags=["ui"])


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


async def _codes(request: Request) -> LoginCodes:
    state = request.app.state
    if not hasattr(state, "login_codes"):
        state.login_codes = LoginCodes(context_of(request).clock)
    codes: LoginCodes = state.login_codes  # Starlette's State is untyped
    return codes


@router.post("/codes", response_model=LoginCode, status_code=201)
async def create_code(record: TokenRecord = Depends(caller), codes: LoginCodes = Depends(_codes)) -> LoginCode:
    """A one-time login code standing for the caller's token (`corral ui` prints the URL)."""
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


DOCS_ASSETS = "/docs-assets"


def install(app: FastAPI) -> None:
    """/ui/ serves the page and its files; /docs and /redoc the API's documentation, offline."""
    app.include_router(router)
    app.mount("/ui/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")
    title, document = app.title, app.openapi_url or "/openapi.json"

    async def ui_root(_: Request) -> RedirectResponse:
        return RedirectResponse("/ui/")

    async def swagger(_: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=document, title=f"{title} API", swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css", swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    async def redoc(_: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=document, title=f"{title} API", redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False,
        )

    app.add_route("/ui", ui_root, include_in_schema=False)
    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
