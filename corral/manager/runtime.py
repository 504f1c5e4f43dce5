"""How the manager's Python process is tuned: garbage collection and thread switching.

Garbage collection, for a process that holds hundreds of thousands of objects:

CPython's full collection (generation 2) walks every tracked object. With 100,000 tasks
in the cache that is about 0.2 s with the event loop stopped (measured on this machine,
uncontended), and it recurs each time the heap grows by a quarter, as it does all
through a large deploy: those pauses were the API's slowest answers.

The manager's state (tasks, nodes, indexes) is acyclic and freed by reference
counting, so the cycle collector need not keep looking at it. Every FREEZE_EVERY
seconds every object alive is frozen (`gc.freeze`): a later collection walks
only what was made since. Cyclic garbage not yet collected at a freeze is kept
(little: generation 0 is collected every 10,000 allocations, and collecting the
young generations first took 0.15 s itself at 100,000 tasks).

Thread switching: the event loop shares the GIL with the store's thread and the
controller's worker threads. A thread that gives up the GIL (every socket call,
every SQLite statement) waits for it up to the switch interval (5 ms by default)
while another runs Python; at 1 ms the event loop answers sooner between them.
"""

import asyncio
import gc
import sys

FREEZE_EVERY = 5.0
THRESHOLDS = (10_000, 10, 10)  # generation 0 every 10,000 allocations instead of 700
SWITCH_INTERVAL = 0.001  # seconds


def tune() -> None:
    """Settings for the whole process: call once, from the manager's main."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*THRESHOLDS)


async def keep_old_objects_out_of_collections(every: float = FREEZE_EVERY) -> None:
    while True:
        await asyncio.sleep(every)
        gc.freeze()
