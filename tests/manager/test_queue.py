"""The keyed work queue: no duplicates, nothing missed while processing, per-key back-off with jitter."""

import random

from corral.manager.queue import Backoff, WorkQueue


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_queued_once_in_the_order_it_came() -> None:
    queue = WorkQueue(Clock())
    for key in ["b", "a", "b", "c", "a"]:
        queue.add(key)
    assert len(queue) == 3
    assert queue.take() == ["b", "a", "c"]
    assert queue.take() == []


def test_a_key_added_while_processing_is_processed_again_after() -> None:
    queue = WorkQueue(Clock())
    queue.add("web")
    assert queue.take() == ["web"]
    queue.add("web")  # a change came in while it was reconciled
    queue.add("web")
    assert queue.take() == []  # not twice at once
    queue.done("web")
    assert queue.take() == ["web"]
    queue.done("web")
    assert queue.take() == []


def test_a_failing_key_backs_off_exponentially_with_jitter_and_the_others_go_on() -> None:
    clock = Clock()
    queue = WorkQueue(clock, Backoff(base=0.5, cap=4.0, jitter=0.2), random.Random(1))
    delays = []
    for _ in range(6):
        queue.add("bad")
        queue.add("good")
        assert sorted(queue.take()) == ["bad", "good"]
        queue.done("bad")
        queue.done("good")
        queue.forget("good")
        delays.append(queue.retry("bad"))
        assert queue.take() == []  # waiting out its back-off
        assert queue.next_due() == clock.now + delays[-1]
        clock.now += delays[-1]
        assert queue.take() == ["bad"]
        queue.done("bad")
        queue.add_all(["bad"])  # a resync keeps it; what is due comes back
    for n, delay in enumerate(delays):
        plain = min(4.0, 0.5 * 2**n)
        assert 0.8 * plain <= delay <= 1.2 * plain
    assert len(set(delays)) == len(delays)  # jittered
    assert queue.failures("bad") == 6 and queue.failures("good") == 0
    queue.forget("bad")
    assert queue.failures("bad") == 0


def test_a_resync_does_not_hurry_a_key_in_back_off_but_a_change_does() -> None:
    clock = Clock()
    queue = WorkQueue(clock, rng=random.Random(2))
    queue.add("bad")
    queue.take()
    queue.done("bad")
    queue.retry("bad")
    queue.add_all(["bad", "other"])
    assert queue.take() == ["other"]
    queue.done("other")
    queue.add("bad")  # the user changed it: reconciled now
    assert queue.take() == ["bad"]
    assert queue.next_due() is None


def test_a_retry_after_a_change_came_in_is_immediate() -> None:
    queue = WorkQueue(Clock(), rng=random.Random(3))
    queue.add("web")
    queue.take()
    queue.add("web")  # changed while it failed
    queue.done("web")
    assert queue.retry("web") == 0.0
    assert queue.take() == ["web"] and queue.failures("web") == 1
