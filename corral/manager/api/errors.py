"""The one place that turns corral errors into HTTP responses.

Every error body is {"error": message, "path": field path or null}; pydantic
validation errors name the field path too.
"""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from corral.model.errors import CorralError, InvalidSpec


def install(app: FastAPI) -> None:
    @app.exception_handler(CorralError)
    async def corral_error(_request: Request, err: CorralError) -> JSONResponse:
        path = err.path if isinstance(err, InvalidSpec) else None
        return JSONResponse(status_code=err.status, content={"error": str(err), "path": path})

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        problems = []
        for item in err.errors():
            loc = ".".join(str(part) for part in item["loc"] if part not in ("body",))
            problems.append(f"{loc}: {item['msg']}")
        first = err.errors()[0]["loc"] if err.errors() else ()
        path = ".".join(str(p) for p in first if p != "body") or None
        return JSONResponse(status_code=422, content={"error": "; ".join(problems), "path": path})
