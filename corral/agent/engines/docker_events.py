"""Following the Docker engine's events, so that an idle agent need not list its containers every second.

Listing was most of an idle agent's CPU: once a second, and the SDK's listing inspects every container (21 engine
calls a second for 20 containers). Instead the agent subscribes to the engine's `/events`, filtered to its own
containers (its cluster's and node's labels) and to the changes that matter (start, die, destroy, pause, unpause,
oom, health_status), and every event wakes its reconcile loop, which then lists once. Nothing is decoded: any event
means "look again", and the engine inspects the container it names at that look (its listing is a snapshot
updated a moment after the event: a container that died can still be listed as running).

An event missed is healed: every (re)subscription is followed by one listing (whatever changed while nobody
listened is found then), while the stream is down `live` is False and the agent lists on its fast timer as
before, and even while it is up the agent lists on a slow resync interval.
"""

import json
import logging
from collections.abc import AsyncIterator, Callable

from corral.agent import labels
from corral.agent.clock import Backoff, Clock
from corral.agent.engines.base import EngineError

log = logging.getLogger(__name__)

EVENTS = ("start", "die", "destroy", "pause", "unpause", "oom", "health_status")

# Subscribe (calling `opened()` once the engine has accepted), then yield each event as it comes.
EventStream = Callable[[Callable[[], None]], AsyncIterator[object]]


def event_filters(cluster_id: str, node: str) -> dict[str, list[str]]:
    """The engine's filters for the events of this agent's containers that can change what it should do."""
    return {"type": ["container"], "event": list(EVENTS), "label": labels.ownership_filter(cluster_id, node)}


def event_container(line: str) -> str:
    """The id of the container an event (one JSON line of the stream) is about; "" if it names none."""
    try:
        event = json.loads(line)
    except ValueError:
        return ""
    return str(event.get("id") or (event.get("Actor") or {}).get("ID") or "") if isinstance(event, dict) else ""


class EventFollower:
    """Keeps one subscription to the engine's events open (reconnecting with back-off) and calls `changed()`."""

    def __init__(self, stream: EventStream, clock: Clock) -> None:
        self.stream = stream
        self.clock = clock
        self.live = False  # subscribed now: every change of the agent's containers will be told
        self.events = 0  # events seen (tests, logs)

    async def run(self, changed: Callable[[], None]) -> None:
        """Until cancelled."""
        backoff = Backoff(self.clock)

        def opened() -> None:
            self.live = True
            backoff.reset()
            changed()  # what changed while nobody listened: the next listing finds it

        while True:
            try:
                async for _ in self.stream(opened):
                    self.events += 1
                    changed()
                reason = "the engine ended the stream"
            except EngineError as err:
                reason = str(err)
            finally:
                was_live, self.live = self.live, False
            if was_live:
                log.info("engine events: %s; listing containers on the fast timer until the stream is back", reason)
                changed()
            await backoff.wait()
