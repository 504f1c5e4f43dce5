"""/v1/tasks: every task, filterable by service, stack and node."""

from fastapi import APIRouter, Depends

from corral.manager.api.deps import context
from corral.manager.api.views import TaskView
from corral.manager.context import ManagerContext
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


@router.get("", response_model=list[TaskView])
async def list_tasks(
    service: str | None = None, stack: str | None = None, node: str | None = None, ctx: ManagerContext = Depends(context)
) -> list[TaskView]:
    tasks = [
        v.obj
        for v in ctx.cache.tasks.values()
        if (service is None or v.obj.service == service)
        and (stack is None or v.obj.stack == stack)
        and (node is None or v.obj.node == node)
    ]
    tasks.sort(key=lambda t: (t.service, t.slot if t.slot is not None else 0, t.node or "", -t.created_at))
    return [TaskView.of(t) for t in tasks]


@router.get("/{task_id}", response_model=TaskView)
async def inspect_task(task_id: str, ctx: ManagerContext = Depends(context)) -> TaskView:
    found = ctx.cache.tasks.get(task_id)
    if found is None:
        raise NotFound(f"task {task_id!r} not found")
    return TaskView.of(found.obj)
