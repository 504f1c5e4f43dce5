"""One-time login codes for the web UI, as Jupyter's login links: `corral ui` asks for a code with its token,
prints a URL carrying it, and the browser trades the code, once and within a minute, for a token of its own.

The browser's token is a new API token with the caller's role, named after the caller and expiring with the
session, so revoking it (`corral token revoke`) ends that session alone. Codes live in the manager's memory:
they are worth a minute, and a restart simply makes `corral ui` print a new one.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.manager.access.roles import Role
from corral.model.errors import Unauthorized

CODE_LIFETIME = 60.0  # seconds a code can be traded
SESSION_LIFETIME = 12 * 3600.0  # how long the browser's token works


@dataclass(frozen=True)
class Grant:
    """What a code stands for: who asked for it and with which role."""

    name: str
    role: Role
    expires_at: float


@dataclass
class LoginCodes:
    clock: Callable[[], float]
    _codes: dict[str, Grant] = field(default_factory=dict)

    def issue(self, name: str, role: Role) -> tuple[str, Grant]:
        now = self.clock()
        self._codes = {code: grant for code, grant in self._codes.items() if grant.expires_at > now}  # drop stale ones
        code = secrets.token_urlsafe(24)
        grant = self._codes[code] = Grant(name, role, now + CODE_LIFETIME)
        return code, grant

    def redeem(self, code: str) -> Grant:
        """The grant behind `code`, which is spent now whatever the answer; Unauthorized when unknown or expired."""
        grant = self._codes.pop(code, None)
        if grant is None:
            raise Unauthorized("this login link is not valid (each works once): run `corral ui` for a new one")
        if self.clock() >= grant.expires_at:
            raise Unauthorized("this login link has expired (it works for a minute): run `corral ui` for a new one")
        return grant
