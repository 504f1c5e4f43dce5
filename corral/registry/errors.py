"""The registry's one error type, carrying the OCI Distribution Spec error code.

Every refusal of the registry is a `RegistryError`; the HTTP layer turns it
into the spec's body `{"errors": [{"code", "message", "detail"}]}` with the
status the spec gives for that code, so a malformed request is a 4xx, never a 500.
"""

from typing import Any

# The codes of the OCI Distribution Spec v1.1 and the status each is sent with.
STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 404,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 400,
    "TOOMANYREQUESTS": 429,
    "UNAVAILABLE": 503,  # (Docker's registry's code) the other managers could not take a copy of a push
}


class RegistryError(Exception):
    """A request the registry refuses; `status` overrides the code's usual HTTP status."""

    def __init__(self, code: str, message: str, detail: Any = None, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}
        if code not in STATUS:
            raise ValueError(f"unknown registry error code {code!r}")
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or STATUS[code]

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}
