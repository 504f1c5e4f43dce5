"""/v1/tasks: every task, filterable by service, stack and node."""

import asyncio

from fastapi import APIRouter, Depends, Response

from corral.manager.api.deps import context
from corral.manager.api.pages import PAGED, Listings, PageRequest, listing_name, listings, page_request
from corral.manager.api.views import TaskView, by_service_and_slot, task_list_json
from corral.manager.cache import Versioned
from corral.manager.context import ManagerContext
from corral.model import Task
from corral.model.errors import NotFound

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


@router.get("", response_model=list[TaskView], responses=PAGED)
async def list_tasks(
    response: Response, service: str | None = None, stack: str | None = None, node: str | None = None,
    ctx: ManagerContext = Depends(context), paging: PageRequest = Depends(page_request), held: Listings = Depends(listings),
) -> list[TaskView] | Response:
    """Every task by service and slot; with `limit`, a page of them, in the manager's own order (api/pages.py)."""
    cache = ctx.cache

    def matching() -> list[Versioned[Task]]:
        """In the cache's order. From its indexes when a service or node is named; a copy of its dict (no loop in
        Python) when nothing is: what a first page costs at 100,000 tasks, where sorting them took over a second."""
        if service is None and node is None and stack is None:
            return list(cache.tasks.values())
        ids = cache.service_tasks.get(service, ()) if service is not None else cache.node_tasks.get(node, ()) if node is not None else None
        found = [cache.tasks[i] for i in ids] if ids is not None else list(cache.tasks.values())
        return [
            v for v in found
            if (service is None or v.obj.service == service) and (stack is None or v.obj.stack == stack) and (node is None or v.obj.node == node)
        ]

    if paging.limit is None:  # the whole list: read here, made into JSON in a worker thread (views.task_list_json)
        tasks = [v.obj for v in matching()]
        return Response(await asyncio.to_thread(task_list_json, tasks, by_service_and_slot), media_type="application/json")
    page = held.page(listing_name("/v1/tasks", service=service, stack=stack, node=node), cache.revision, matching, paging, ctx.clock())
    page.apply(response)
    return [TaskView.of(v.obj) for v in page.items]


@router.get("/{task_id}", response_model=TaskView)
async def inspect_task(task_id: str, ctx: ManagerContext = Depends(context)) -> TaskView:
    found = ctx.cache.tasks.get(task_id)
    if found is None:
        raise NotFound(f"task {task_id!r} not found")
    return TaskView.of(found.obj)
