"""What the managers of one control plane tell clients about each other."""

from pydantic import BaseModel, Field

# A follower's 503 to an agent names the leader's URL in this header: the client goes there.
LEADER_HEADER = "X-Corral-Leader"


class ManagerInfo(BaseModel):
    """One manager of the control plane, as `GET /v1/managers` and `corral manager ls` show it."""

    name: str
    url: str = Field(description="where agents, the CLI and the other managers reach it (its --advertise URL)")
    leader: bool = Field(description="whether it leads the control plane now (runs the controller and node health)")
    healthy: bool = Field(description="whether its API answered the manager asked, just now")
    error: str | None = Field(default=None, description="why it is not healthy")
