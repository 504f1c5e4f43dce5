"""One-time login codes: each works once, within its minute, and carries the role of whoever asked for it."""

import pytest

from corral.manager.access.login_codes import CODE_LIFETIME, LoginCodes
from corral.manager.access.roles import Role
from corral.model.errors import Unauthorized


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_is_spent_by_its_first_use() -> None:
    codes = LoginCodes(Clock())
    code, _ = codes.issue("ci", Role.viewer)
    grant = codes.redeem(code)
    assert (grant.name, grant.role) == ("ci", Role.viewer)
    with pytest.raises(Unauthorized, match="works once"):
        codes.redeem(code)
    with pytest.raises(Unauthorized, match="not valid"):
        codes.redeem("made-up")


def test_a_code_expires_after_its_minute_and_stale_codes_are_dropped() -> None:
    clock = Clock()
    codes = LoginCodes(clock)
    old, _ = codes.issue("admin", Role.admin)
    fresh, _ = codes.issue("admin", Role.admin)
    assert old != fresh
    clock.now += CODE_LIFETIME
    with pytest.raises(Unauthorized, match="expired"):
        codes.redeem(old)
    codes.issue("admin", Role.admin)  # issuing sweeps the codes that can no longer be used
    with pytest.raises(Unauthorized, match="not valid"):
        codes.redeem(fresh)
