"""What the managers of one control plane tell clients about each other."""

from pydantic import BaseModel, Field

from corral.model.headers import LEADER_HEADER as LEADER_HEADER


class ManagerInfo(BaseModel):
    """One manager of the control plane, as `GET /v1/managers` and `corral manager ls` show it."""

    name: str
    url: str = Field(description="where agents, the CLI and the other managers reach it (its --advertise URL)")
    leader: bool = Field(description="whether it leads the control plane now (runs the controller and node health)")
    healthy: bool = Field(description="whether its API answered the manager asked, just now")
    error: str | None = Field(default=None, description="why it is not healthy")
