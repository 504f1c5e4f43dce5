"""What every call to the managers shares, whichever client makes it (ManagerClient over httpx, PlainClient over
http.client): the managers it may go to (ManagerList), the one place a token becomes a request header, the error
it raises and how an error answer or a failed connection reads to a person.

Standard library only: the one-off CLI calls (corral/client/plain.py) import this without httpx.
"""

import json

PAGE = 500  # items per page a client's `pages` asks for (the manager allows 1 to 5,000)


class ApiError(Exception):
    """The manager answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int = 0, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class ManagerList:
    """`url` may name several managers of one control plane, comma-separated: calls go to one of them (`url`), and
    move on (`_next`) to the next when it cannot be reached, or to the leader a follower names."""

    def __init__(self, url: str) -> None:
        self.urls = [each.strip().rstrip("/") for each in url.split(",") if each.strip()] or [url.rstrip("/")]
        self._at = 0

    @property
    def url(self) -> str:
        """The manager calls go to now."""
        return self.urls[self._at]

    def _next(self, leader: str | None = None) -> None:
        """Go to the leader a follower named (added to the list if new), else to the next manager of the list."""
        if leader:
            leader = leader.rstrip("/")
            if leader not in self.urls:
                self.urls.append(leader)
            self._at = self.urls.index(leader)
        else:
            self._at = (self._at + 1) % len(self.urls)


def authorization(token: str | None) -> dict[str, str]:
    """The header that carries `token` (none without one): every call of either client gets its token here."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def error_answer(status: int, body: bytes, reason: str) -> ApiError:
    """The ApiError of an error answer: the body's `error` (or FastAPI's `detail`) and `path`, else its text."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("not an object")
        message = parsed.get("error") or parsed.get("detail") or text
        path = parsed.get("path")
    except ValueError:
        message, path = text or reason, None
    return ApiError(str(message), status, path)


def why_unreachable(url: str, said: str, closed: bool) -> str:
    """What went wrong on the way (`said`: the transport's error). `closed`: the connection was closed without an
    answer, which over TLS is what a refused client certificate looks like."""
    if "CERTIFICATE_VERIFY_FAILED" in said:
        return f"{said}: trust the cluster's CA (its DATA_DIR/ca.pem) with CORRAL_CA=FILE or `corral --ca FILE`"
    if url.startswith("https://") and closed:
        return f"{said}: the manager closed the connection (over TLS: is the node certificate from another cluster's CA?)"
    return said
