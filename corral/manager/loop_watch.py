"""How long the manager's event loop keeps work waiting, and (when asked) which code held it.

Every answer the API gives waits for its turn on the one event loop: while the
loop runs a long synchronous section (a controller step, the cache applying a
burst of changes, a watch reply for thousands of nodes), `GET /v1/info` waits
as long as the largest listing would. Two tools, both off the hot path:

- `LoopLag.run`: a probe task that asks to run every EVERY seconds and records
  how late it ran (`corral_manager_loop_lag_seconds` in /metrics), the delay
  any request's next step sees;
- `StallSampler` (`corral manager --log-loop-stalls MS`, for profiling): a
  thread that posts a no-op to the loop and, while the loop has not run it,
  samples the event loop thread's Python stack every SAMPLE_EVERY seconds (as
  py-spy would, but only while a callback waits). A stall longer than the threshold is
  logged with its length and the code it was sampled in, and the code behind
  every stall is added up and logged every SUMMARY_EVERY seconds, longest
  first: what to break up next.

Neither changes what the manager does; the sampler costs a thread waking every
SAMPLE_EVERY seconds and a look at one stack while the loop is stalled.
"""

import asyncio
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger(__name__)

EVERY = 0.05  # seconds between two probes of the loop's lag
SAMPLE_EVERY = 0.005  # seconds between two stack samples during a stall
SUMMARY_EVERY = 10.0  # seconds between two summaries of where the stalls were
OWN_PACKAGE = "/corral/"  # frames of corral's own code name a section; the innermost other frame says what it called
FRAMES = 4  # corral frames kept per sample, innermost first


@dataclass
class LoopLag:
    """The lag of the event loop, probed every `every` seconds; `observe` gets each (in seconds)."""

    observe: Callable[[float], None]
    every: float = EVERY
    clock: Callable[[], float] = time.perf_counter
    worst: float = 0.0

    async def run(self) -> None:
        while True:
            asked = self.clock()
            await asyncio.sleep(self.every)
            lag = max(0.0, self.clock() - asked - self.every)
            self.worst = max(self.worst, lag)
            self.observe(lag)


def section_of(frame: FrameType | None, frames: int = FRAMES) -> str:
    """A stack as one line: the innermost `frames` frames of corral's code (innermost first), after the
    innermost frame of other code it was in (a library, the standard library), if any."""
    parts: list[str] = []
    outside = ""
    while frame is not None and len(parts) < frames:
        code = frame.f_code
        filename = code.co_filename
        if OWN_PACKAGE in filename:
            module = filename[filename.rindex(OWN_PACKAGE) + len(OWN_PACKAGE):].removesuffix(".py").replace("/", ".")
            parts.append(f"{module}.{code.co_name}:{frame.f_lineno}")
        elif not parts and not outside:
            outside = f"[{'/'.join(filename.split('/')[-2:])}:{code.co_name}] "
        frame = frame.f_back
    return outside + " < ".join(parts) if parts or outside else "(the loop itself: native code)"


@dataclass
class StallSampler:
    """Samples the loop thread's stack while the loop is stalled longer than `threshold` seconds."""

    loop: asyncio.AbstractEventLoop
    threshold: float
    sample_every: float = SAMPLE_EVERY
    summary_every: float = SUMMARY_EVERY
    clock: Callable[[], float] = time.perf_counter
    # section -> samples taken in it during stalls (each stands for about `sample_every` s), since the start
    sections: Counter[str] = field(default_factory=Counter)
    stalls: list[float] = field(default_factory=list)  # the length of each stall over the threshold
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _loop_thread: int = 0

    def start(self) -> None:
        """Call from the event loop's thread."""
        self._loop_thread = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="loop-stall-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _watch(self) -> None:
        next_summary = self.clock() + self.summary_every
        while not self._stop.is_set():
            ran = threading.Event()
            posted = self.clock()
            try:
                self.loop.call_soon_threadsafe(ran.set)
            except RuntimeError:  # the loop closed
                return
            samples: Counter[str] = Counter()
            while not ran.wait(self.sample_every):
                if self._stop.is_set():
                    return
                samples[section_of(sys._current_frames().get(self._loop_thread))] += 1
            waited = self.clock() - posted
            if waited >= self.threshold:
                self._note(waited, samples)
            if self.clock() >= next_summary:
                next_summary = self.clock() + self.summary_every
                self._summary()
            self._stop.wait(self.sample_every)

    def _note(self, waited: float, samples: Counter[str]) -> None:
        self.stalls.append(waited)
        self.sections.update(samples)
        top = "; ".join(f"{count}x {section}" for section, count in samples.most_common(3))
        log.warning("event loop stalled %.0f ms: %s", waited * 1000, top or "(no sample)")

    def _summary(self) -> None:
        if not self.stalls:
            return
        lines = "\n".join(f"  {count * self.sample_every:7.2f}s {section}" for section, count in self.sections.most_common(15))
        log.warning(
            "event loop stalls so far: %d over %.0f ms, %.1f s in all, longest %.0f ms; sampled in:\n%s",
            len(self.stalls), self.threshold * 1000, sum(self.stalls), max(self.stalls) * 1000, lines,
        )
