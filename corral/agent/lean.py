"""What an agent process leaves out of its memory: libraries it never runs, loaded only because they are installed.

httpcore (under httpx) imports trio whenever trio is installed, to tell which async library runs it. corral's test
extras install trio (selenium needs it), so an agent started from such an environment carried 3.6 MiB of trio for an
event loop that is always asyncio. Marked absent before httpcore loads, httpcore takes its documented fallback (asyncio,
through anyio), as an install without trio does. Only the agent's own process does this (`corral agent` calls it
first): a test process that drives a browser needs trio.
"""

import sys


def leave_out_unused_libraries() -> None:
    """Mark trio absent, unless httpcore (which may have loaded it) is loaded already."""
    if "httpcore" not in sys.modules:
        sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
