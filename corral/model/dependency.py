"""A service's dependency on another service of its stack (compose's `depends_on`)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DependencyCondition = Literal["service_started", "service_healthy", "service_completed_successfully"]


class Dependency(BaseModel):
    """The service's tasks wait until `service` (its full name) meets `condition` with at least one replica.

    Once met, the dependents run on whatever becomes of the dependency, as under compose.
    `required` False: a dependency that is not deployed is not waited for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
    condition: DependencyCondition = "service_started"
    required: bool = True
