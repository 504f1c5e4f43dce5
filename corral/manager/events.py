"""Turning store changes into the events users read in `corral events`.

Pure: a store WatchEvent in, zero or one Event out. Every event is derived
from a change that was stored, so the stream can be replayed from any
revision the store still holds.
"""

from typing import Any

from pydantic import BaseModel

from corral.manager import keys
from corral.store import WatchEvent


class Event(BaseModel):
    revision: int
    time: float
    type: str  # service | task | node | secret | config | audit
    action: str  # create | update | remove | <new task state> | <new node state> | <method of an audited write> ...
    name: str
    message: str
    actor: str | None = None  # audit events: the name of the token that made the write


def describe(event: WatchEvent) -> Event | None:
    key = event.key
    if key.startswith(keys.SERVICES):
        return _service_event(event)
    if key.startswith(keys.TASKS):
        return _task_event(event)
    if key.startswith(keys.NODES):
        return _node_event(event)
    if key.startswith((keys.SECRETS, keys.CONFIGS)):
        return _value_event(event)
    if key == keys.AUDIT:
        return _audit_event(event)
    return None


def _audit_event(event: WatchEvent) -> Event | None:
    new = event.value
    if new is None:
        return None
    message = f"{new['actor']} ({new['role']}): {new['method']} {new['path']} -> {new['status']}"
    return Event(
        revision=event.revision, time=_time(new, "time"), type="audit", action=str(new["method"]).lower(), name=new["actor"],
        message=message, actor=new["actor"],
    )


def _time(value: dict[str, Any] | None, *fields: str) -> float:
    for name in fields:
        if value and isinstance(value.get(name), (int, float)):
            return float(value[name])
    return 0.0


def _because(reason: str | None) -> str:
    return f": {reason}" if reason else ""


def _service_event(event: WatchEvent) -> Event | None:
    name = event.key.removeprefix(keys.SERVICES)
    new, old = event.value, event.prev_value
    if new is None:
        return Event(revision=event.revision, time=_time(old, "updated_at"), type="service", action="remove", name=name, message=f"service {name} removed")
    if old is None:
        spec = new["spec"]
        message = f"service {name} created: {spec['image']}, {spec['mode']}" + (
            f", {spec['replicas']} replicas" if spec["mode"] == "replicated" else ""
        )
        return Event(revision=event.revision, time=_time(new, "created_at"), type="service", action="create", name=name, message=message)
    changes = [
        f"{field} {old['spec'].get(field)!r} -> {new['spec'].get(field)!r}"
        for field in sorted(new["spec"])
        if new["spec"].get(field) != old["spec"].get(field)
    ]
    decision = new.get("autoscale_status")
    if decision and decision != old.get("autoscale_status"):
        return _autoscale_event(event, name, decision, bool(changes))
    status = new.get("update_status")
    error = new.get("reconcile_error", "")
    if not changes and error != old.get("reconcile_error", "") and (error or status == old.get("update_status")):
        when = _time(new, "updated_at")
        if error:
            message = f"service {name} cannot be reconciled: {error} (retried with back-off)"
            return Event(revision=event.revision, time=when, type="service", action="reconcile-error", name=name, message=message)
        return Event(revision=event.revision, time=when, type="service", action="reconciled", name=name, message=f"service {name} reconciles again")
    job, was = new.get("job_status"), old.get("job_status") or {}
    if not changes and job and (job["run"], job["state"]) != (was.get("run"), was.get("state")) and job["run"]:
        return _job_event(event, name, job)
    if not changes and status and status != old.get("update_status"):  # the controller moved a rollout on
        when = status.get("completed_at") or status["started_at"]
        message = f"service {name} rollout {status['state']}: {status['updated']}/{status['total']} updated"
        message += f" ({status['message']})" if status["message"] else ""
        return Event(revision=event.revision, time=when, type="service", action="rollout", name=name, message=message)
    message = f"service {name} updated to version {new['version']}: " + ("; ".join(changes) or "no spec change")
    return Event(revision=event.revision, time=_time(new, "updated_at"), type="service", action="update", name=name, message=message)


def _autoscale_event(event: WatchEvent, name: str, decision: dict[str, Any], changed: bool) -> Event | None:
    """The autoscaler wrote a decision: news when it scaled; a refresh of a "keep" (inspect's figures) is not."""
    if decision["desired"] == decision["current"] and not changed:
        return None
    message = f"service {name} autoscaled {decision['current']} -> {decision['desired']}: {decision['reason']}"
    return Event(revision=event.revision, time=decision["time"], type="service", action="autoscale", name=name, message=message)


def _job_event(event: WatchEvent, name: str, job: dict[str, Any]) -> Event:
    """A job's run began or ended (the controller wrote its `job_status`)."""
    message = f"job {name} run {job['run']} {job['state']}"
    if job["state"] != "running":
        message += f": {job['completed']}/{job['wanted']} completed" + (f", {job['message']}" if job["message"] else "")
    when = job.get("ended_at") or job["started_at"]
    return Event(revision=event.revision, time=when, type="service", action="job", name=name, message=message)


def _task_event(event: WatchEvent) -> Event | None:
    task_id = event.key.removeprefix(keys.TASKS)
    new, old = event.value, event.prev_value
    if new is None:
        return None  # history trimmed: not news
    where = f" on {new['node']}" if new.get("node") else ""
    slot = new["slot"] if new.get("slot") is not None else new.get("node")
    label = f"task {new['service']}.{slot} ({task_id})"
    when = _time(new, "updated_at")
    if old is None:  # the controller creates tasks already placed (or pending, with why)
        state = new.get("state", "new")
        if state == "assigned" and new.get("node"):
            detail = f", assigned to {new['node']}"
        else:
            detail = "" if state == "new" else f", {state}{_because(new.get('error'))}"
        return Event(revision=event.revision, time=when, type="task", action="create", name=task_id, message=f"{label} created{detail}")
    if old["state"] != new["state"]:
        why = _because(new.get("error"))
        return Event(revision=event.revision, time=when, type="task", action=new["state"], name=task_id, message=f"{label} {new['state']}{where}{why}")
    if old["desired_state"] != new["desired_state"]:
        why = _because(new.get("error"))
        return Event(revision=event.revision, time=when, type="task", action=f"desired-{new['desired_state']}", name=task_id, message=f"{label} asked to {new['desired_state']}{why}")
    return None


def _node_event(event: WatchEvent) -> Event | None:
    name = event.key.removeprefix(keys.NODES)
    new, old = event.value, event.prev_value
    if new is None:
        return Event(revision=event.revision, time=0.0, type="node", action="remove", name=name, message=f"node {name} removed")
    when = _time(new, "last_heartbeat", "registered_at")
    if old is None:
        return Event(revision=event.revision, time=when, type="node", action="join", name=name, message=f"node {name} joined from {new['address']}")
    if old["state"] != new["state"]:
        why = _because(new.get("message"))
        return Event(revision=event.revision, time=when, type="node", action=new["state"], name=name, message=f"node {name} is {new['state']}{why}")
    if old["availability"] != new["availability"]:
        return Event(revision=event.revision, time=when, type="node", action=new["availability"], name=name, message=f"node {name} availability {new['availability']}")
    return None


def _value_event(event: WatchEvent) -> Event:
    """A secret or config created or removed: its name and size, never its value."""
    kind, _, name = event.key.partition("/")
    kind = kind.removesuffix("s")
    record = event.value or event.prev_value or {}
    if event.value is None:
        return Event(revision=event.revision, time=0.0, type=kind, action="remove", name=name, message=f"{kind} {name} removed")
    message = f"{kind} {name} created ({record.get('size', 0)} bytes)"
    return Event(revision=event.revision, time=_time(record, "created_at"), type=kind, action="create", name=name, message=message)
