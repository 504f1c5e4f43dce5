"""VipInterface.ensure runs `ip` only for what changed, and lists the host's addresses again `recheck` seconds after
the last listing or after a failure (each `ip` was a fork of the agent on its event loop at every change of the
mesh routes, a quarter of a local cluster's busy time during a run of deploys). Commands recorded, fake clock."""

import pytest

from corral.agent import vips
from corral.agent.clock import FakeClock
from corral.agent.vips import VipError, VipInterface


async def test_unchanged_vips_run_no_process_until_the_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    host = {"10.217.0.9"}  # on `lo` under the cluster's label, left by an earlier run
    commands: list[str] = []
    failing = {"on": False}

    async def ip(*args: str, ok_if: str = "") -> str:
        commands.append(" ".join(args[:3]))
        if failing["on"]:
            raise VipError("ip addr add: RTNETLINK answers: Operation not permitted")
        if args[:2] == ("addr", "add"):
            host.add(args[2].removesuffix("/32"))
        elif args[:2] == ("addr", "del"):
            host.discard(args[2].removesuffix("/32"))
        return "".join(f"1: lo    inet {vip}/32 scope global lo:crl01234567\n" for vip in sorted(host))

    monkeypatch.setattr(vips, "_ip", ip)
    clock = FakeClock()
    interface = VipInterface("0123456789", clock, recheck=30.0)

    await interface.ensure({"10.217.0.2"})
    assert commands == ["-o -4 addr", "addr add 10.217.0.2/32", "addr del 10.217.0.9/32"] and host == {"10.217.0.2"}
    commands.clear()
    await interface.ensure({"10.217.0.2"})  # the routes changed, the VIPs did not: no process at all
    assert commands == []
    await interface.ensure({"10.217.0.2", "10.217.0.3"})  # a new service: its address added, nothing listed
    assert commands == ["addr add 10.217.0.3/32"]
    commands.clear()
    host.discard("10.217.0.3")  # removed by hand
    clock.advance(29.0)
    await interface.ensure({"10.217.0.2", "10.217.0.3"})
    assert commands == []
    clock.advance(1.0)  # the recheck: listed again, and the missing address healed
    await interface.ensure({"10.217.0.2", "10.217.0.3"})
    assert commands == ["-o -4 addr", "addr add 10.217.0.3/32"] and host == {"10.217.0.2", "10.217.0.3"}
    commands.clear()

    failing["on"] = True
    with pytest.raises(VipError):
        await interface.ensure({"10.217.0.2", "10.217.0.3", "10.217.0.4"})
    failing["on"] = False
    commands.clear()
    await interface.ensure({"10.217.0.2", "10.217.0.3"})  # a pass that failed is not taken for done: listed again
    assert commands[0] == "-o -4 addr"
    commands.clear()
    await interface.remove()  # teardown lists what is there, whatever was ensured before
    assert commands[0] == "-o -4 addr" and host == set()
