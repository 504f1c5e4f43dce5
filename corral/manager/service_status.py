"""What a service's row says beyond its running/desired counts (`corral service ls`, pure):

- `completed_slots`: replicas whose task ran to completion and rest there, because the restart policy
  restarts no completed task (`condition: none` or `on-failure`): `2/2 completed`, not `0/2`.
  (A job counts its completions in its run: manager/jobs/.)
- `unbound_ports`: the service's published ports that some node's routing mesh could not open (a
  port already taken there), from the errors the agents report; the same data as `service mesh`
  and `service endpoints`.
"""

from collections.abc import Iterable, Mapping

from corral.model import Service, ServiceMode, Task, TaskState

_JOBS = (ServiceMode.replicated_job, ServiceMode.global_job)


def completed_slots(service: Service, tasks: Iterable[Task]) -> int:
    """How many slots (nodes, for a global service) end in a completed task the policy does not restart."""
    if service.spec.mode in _JOBS or service.spec.restart_policy.condition == "any":
        return 0
    newest: dict[tuple[int | None, str | None], Task] = {}
    for task in tasks:
        key = (task.slot, task.node if task.slot is None else None)
        if key not in newest or task.created_at > newest[key].created_at:
            newest[key] = task
    done = sum(1 for task in newest.values() if task.state == TaskState.complete)
    return min(done, service.spec.replicas) if service.spec.mode == ServiceMode.replicated else done


def unbound_ports(service: Service, mesh_errors: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    """Published port (`8080/tcp`) -> the nodes whose mesh could not listen on it, in name order."""
    published = {f"{p.published}/{p.protocol}" for p in service.spec.ports if p.published and p.mode == "ingress"}
    found: dict[str, list[str]] = {}
    for node in sorted(mesh_errors):
        for listener in mesh_errors[node]:
            if listener in published:
                found.setdefault(listener, []).append(node)
    return found
