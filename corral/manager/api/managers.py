"""/v1/managers: the managers of the control plane, which one leads, which answer."""

from fastapi import APIRouter, Depends

from corral.manager import managers
from corral.manager.api.deps import context
from corral.manager.context import ManagerContext
from corral.model.managers import ManagerInfo

router = APIRouter(prefix="/v1/managers", tags=["cluster"])


@router.get("", response_model=list[ManagerInfo])
async def list_managers(ctx: ManagerContext = Depends(context)) -> list[ManagerInfo]:
    """Every manager that has joined this control plane: its URL, whether it leads, whether its API answers now."""
    return await managers.listing(ctx)
