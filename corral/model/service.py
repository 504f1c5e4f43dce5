"""A service: the desired state of one replicated (or global) container set."""

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corral.model.resources import Resources


class ServiceMode(str, Enum):
    replicated = "replicated"
    global_ = "global"


class PortSpec(BaseModel):
    """One published container port.

    `published` None means "any free host port on the node's address"; a
    published port in `ingress` mode belongs to the routing mesh, in `host`
    mode it is bound on the node running the task.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: int = Field(ge=1, le=65535)
    published: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    mode: Literal["ingress", "host"] = "ingress"


class RestartPolicy(BaseModel):
    """When a task that ended is replaced (Swarm's restart_policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: Literal["any", "on-failure", "none"] = "any"
    delay: float = Field(default=5.0, ge=0)
    max_attempts: int | None = Field(default=None, ge=0)
    window: float = Field(default=0.0, ge=0)


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    constraints: list[str] = Field(default_factory=list)
    max_replicas_per_node: int | None = Field(default=None, ge=1)


class ServiceSpec(BaseModel):
    """Everything a user says about a service; what a task runs is a copy of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
    stack: str = ""
    image: str = Field(min_length=1)
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict, description="labels on the containers")
    service_labels: dict[str, str] = Field(default_factory=dict, description="deploy.labels: labels on the service")
    ports: list[PortSpec] = Field(default_factory=list)
    stop_grace_period: float = Field(default=10.0, ge=0)
    mode: ServiceMode = ServiceMode.replicated
    replicas: int = Field(default=1, ge=0)
    limits: Resources = Resources()
    reservations: Resources = Resources()
    placement: Placement = Placement()
    restart_policy: RestartPolicy = RestartPolicy()

    def task_shape(self) -> "ServiceSpec":
        """The spec without what does not change a running task (replicas, service labels)."""
        return self.model_copy(update={"replicas": 0, "service_labels": {}})


class Service(BaseModel):
    """A service as stored: the spec plus its bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    spec: ServiceSpec
    version: int = 1
    created_at: float
    updated_at: float

    @property
    def name(self) -> str:
        return self.spec.name
