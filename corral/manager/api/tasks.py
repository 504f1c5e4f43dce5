"""/v1/tasks: every task, filterable by service, stack and node."""

from fastapi import APIRouter, Depends, Response

from corral.manager.api.deps import context
from corral.manager.api.pages import PAGED, Listings, PageRequest, listing_name, listings, page_request
from corral.manager.api.views import TaskView
from corral.manager.context import ManagerContext
from corral.model import Task
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


@router.get("", response_model=list[TaskView], responses=PAGED)
async def list_tasks(
    response: Response, service: str | None = None, stack: str | None = None, node: str | None = None,
    ctx: ManagerContext = Depends(context), paging: PageRequest = Depends(page_request), held: Listings = Depends(listings),
) -> list[TaskView]:
    """Every task by service and slot; with `limit`, a page of them (api/pages.py)."""
    cache = ctx.cache

    def chosen() -> list[Task]:
        # From the cache's indexes when a service or node is named: no scan of every task.
        some = cache.tasks_of(service) if service is not None else cache.tasks_on(node) if node is not None else None
        tasks = [
            t
            for t in (some if some is not None else (v.obj for v in cache.tasks.values()))
            if (service is None or t.service == service) and (stack is None or t.stack == stack) and (node is None or t.node == node)
        ]
        tasks.sort(key=lambda t: (t.service, t.slot if t.slot is not None else 0, t.node or "", -t.created_at))
        return tasks

    if paging.limit is None:
        return [TaskView.of(t) for t in chosen()]
    page = held.page(listing_name("/v1/tasks", service=service, stack=stack, node=node), cache.revision, chosen, paging, ctx.clock())
    page.apply(response)
    return [TaskView.of(t) for t in page.items]


@router.get("/{task_id}", response_model=TaskView)
async def inspect_task(task_id: str, ctx: ManagerContext = Depends(context)) -> TaskView:
    found = ctx.cache.tasks.get(task_id)
    if found is None:
        raise NotFound(f"task {task_id!r} not found")
    return TaskView.of(found.obj)
