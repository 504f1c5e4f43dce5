"""Which task a user means: its id, a unique prefix of it (as `service ps` shows 12 characters), or `SERVICE.SLOT`."""

from corral.manager.cache import StateCache
from corral.model import Task
from corral.model.errors import NotFound


def find_task(cache: StateCache, ref: str) -> Task:
    """The task `ref` names; for `SERVICE.SLOT` the slot's newest task. NotFound names what was tried."""
    found = cache.tasks.get(ref)
    if found is not None:
        return found.obj
    service, _, slot = ref.rpartition(".")
    if service and service in cache.services:
        tasks = [t for t in cache.tasks_of(service) if str(t.slot if t.slot is not None else t.node) == slot]
        if tasks:
            return max(tasks, key=lambda t: t.created_at)
        raise NotFound(f"service {service} has no task in slot {slot!r} (see `corral service ps {service}`)")
    if len(ref) >= 4:
        matches = [v.obj for task_id, v in cache.tasks.items() if task_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound(f"task id prefix {ref!r} is ambiguous ({len(matches)} tasks): give more of it")
    raise NotFound(f"task {ref!r} not found: give a task id (or its first characters) or SERVICE.SLOT")
