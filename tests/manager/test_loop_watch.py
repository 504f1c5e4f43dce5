"""The event loop's lag probe and the stall sampler (corral/manager/loop_watch.py)."""

import asyncio
import sys
import time

import pytest

from corral.manager.loop_watch import LoopLag, StallSampler, section_of


def test_lag_is_how_late_the_probe_ran_and_names_the_code_it_was_in() -> None:
    times = iter([10.0, 10.3, 10.3, 10.3])  # asked at 10.0 for 0.05 s later, ran at 10.3: 0.25 s late
    seen: list[float] = []
    sections: list[str] = []

    def observe(lag: float) -> None:
        seen.append(lag)
        sections.append(section_of(sys._getframe()))
        raise asyncio.CancelledError  # one probe is enough

    probe = LoopLag(observe, every=0.0, clock=lambda: next(times))
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(probe.run())
    assert seen == [pytest.approx(0.3)]
    assert probe.worst == pytest.approx(0.3)
    # the innermost frame outside corral (this test), then corral's own frames, innermost first
    assert sections[0].startswith("[manager/test_loop_watch.py:observe] manager.loop_watch.run:")


def test_a_probe_on_time_has_no_lag() -> None:
    times = iter([5.0, 5.0])
    seen: list[float] = []

    def observe(lag: float) -> None:
        seen.append(lag)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(LoopLag(observe, every=0.0, clock=lambda: next(times)).run())
    assert seen == [0.0]


def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a synchronous section: what the sampler is for


def test_the_sampler_reports_a_stall_and_the_code_that_held_the_loop() -> None:
    async def scenario() -> StallSampler:
        sampler = StallSampler(asyncio.get_running_loop(), threshold=0.08, summary_every=3600)
        sampler.start()
        try:
            await asyncio.sleep(0.05)  # the loop runs freely: no stall
            assert sampler.stalls == []
            _hold_the_loop(0.25)
            await asyncio.sleep(0.05)  # the sampler's no-op runs: the stall ends and is noted
            for _ in range(100):
                if sampler.stalls:
                    break
                await asyncio.sleep(0.01)
        finally:
            sampler.stop()
        return sampler

    sampler = asyncio.run(scenario())
    assert len(sampler.stalls) == 1
    assert 0.2 <= sampler.stalls[0] < 2.0
    section, count = sampler.sections.most_common(1)[0]
    assert "_hold_the_loop" in section
    assert count >= 3  # sampled several times while it held the loop
