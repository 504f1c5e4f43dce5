"""Where a service's tasks go relative to another service's: affinity (with it) and anti-affinity (away from it).

As Kubernetes' pod (anti-)affinity with topology key "node": `require` is a
filter (a node that breaks it takes no task; the pending reason says so),
`prefer` a ranking step (such nodes are taken only when no other fits).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AffinityMode = Literal["require", "prefer"]


class Affinity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(description="the other service's full name (stack_service)")
    mode: AffinityMode = "require"
    anti: bool = Field(default=False, description="True: keep away from the service's tasks; False: run beside them")

    def describe(self) -> str:
        return f"{'anti-affinity' if self.anti else 'affinity'} with {self.service} ({self.mode})"
