"""Scheduling: which node runs each task that has none yet.

`schedule(nodes, placed, unplaced, now)` returns a `Plan`: an `Assignment`
per task placed and an `Unplaced` (with the reason) per task no node can take.
A caller scheduling in a loop can keep a `ClusterIndex` between calls and pass
it as `index=` so that already placed tasks are not re-read on every call.

Modules: `demand` (what a task asks of a node), `snapshot` (the indexed view
of nodes and what they hold), `filters` (feasibility), `ranking` (choosing
among feasible nodes), `reasons` (why a task was not placed), `plan` (the
output), `scheduler` (`schedule()`, the pass that ties them together).
"""

from corral.manager.scheduling.plan import Assignment, Plan, Unplaced
from corral.manager.scheduling.scheduler import schedule
from corral.manager.scheduling.snapshot import ClusterIndex, NodeUsage

__all__ = ["Assignment", "ClusterIndex", "NodeUsage", "Plan", "Unplaced", "schedule"]
