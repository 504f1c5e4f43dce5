"""Isolation.apply writes iptables only when the rules changed, or `recheck` seconds after the last write (an idle
agent's keeper syncs every 2 s: that was three iptables processes each time). Commands recorded, fake clock."""

import pytest

from corral.agent.clock import FakeClock
from corral.agent.networks import isolation
from corral.agent.networks.isolation import Isolation, IsolationError
from corral.agent.networks.view import Network, NetworkView

VIEW = NetworkView({"shop_default": Network("shop_default", "n1", "br-aaa", "172.20.0.0/16")})


async def test_unchanged_rules_are_written_again_only_after_the_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[str] = []
    failing = {"on": False}

    async def run(command: list[str], stdin: str | None = None) -> None:
        commands.append(command[0])
        if failing["on"]:
            raise IsolationError("iptables-restore: exit 4")

    async def succeeds(command: list[str]) -> bool:
        commands.append(" ".join(command[2:4]))
        return True

    monkeypatch.setattr(isolation, "_run", run)
    monkeypatch.setattr(isolation, "_succeeds", succeeds)
    clock = FakeClock()
    rules = Isolation("0123456789", clock, recheck=30.0)
    allowed = {"shop_default": {"10.217.0.2"}}
    await rules.apply("10.217.0.0/24", "10.217.0.1", VIEW, allowed)
    assert commands == ["iptables-restore", "-C INPUT", "-C FORWARD"] and rules.writes == 1
    clock.advance(29.0)
    await rules.apply("10.217.0.0/24", "10.217.0.1", VIEW, allowed)
    assert rules.writes == 1 and len(commands) == 3  # the same rules: no process at all
    await rules.apply("10.217.0.0/24", "10.217.0.1", VIEW, {"shop_default": {"10.217.0.2", "10.217.0.3"}})
    assert rules.writes == 2  # changed: written at once
    clock.advance(30.0)
    await rules.apply("10.217.0.0/24", "10.217.0.1", VIEW, {"shop_default": {"10.217.0.2", "10.217.0.3"}})
    assert rules.writes == 3  # the recheck: heals a chain someone flushed
    failing["on"] = True
    with pytest.raises(IsolationError):
        await rules.apply("10.217.0.0/24", "10.217.0.1", VIEW, allowed)
    failing["on"] = False
    await rules.apply("10.217.0.0/24", "10.217.0.1", VIEW, allowed)
    assert rules.writes == 5  # a write that failed is not taken for done
