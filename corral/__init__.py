"""corral: a container orchestrator small enough to read in an afternoon."""

import sys

__version__ = "0.1.0"

# httpx's package imports its command-line tool (`httpx._main`: rich, click, pygments) when they are installed, as they
# are here: 5.3 MiB of every corral process's memory (an agent's included) and ~45 ms of each start, for a command
# corral never runs. Marking the module absent makes httpx take its documented fallback (`main` says to install
# httpx[cli]); httpx itself is unchanged.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
