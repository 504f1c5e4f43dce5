"""A service: the desired state of one replicated (or global) container set."""

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corral.model.affinity import Affinity
from corral.model.autoscale import AutoscaleDecision, AutoscaleSpec
from corral.model.container import ContainerOptions
from corral.model.dependency import Dependency
from corral.model.job import JobSpec, JobStatus
from corral.model.resources import Resources
from corral.model.volume import Mount

UpdateOrder = Literal["stop-first", "start-first"]
FailureAction = Literal["pause", "continue", "rollback"]


class ServiceMode(str, Enum):
    replicated = "replicated"
    global_ = "global"
    replicated_job = "replicated-job"  # `replicas` tasks run to completion
    global_job = "global-job"  # one task per eligible node runs to completion

    @property
    def is_job(self) -> bool:
        return self in (ServiceMode.replicated_job, ServiceMode.global_job)


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


class HttpProbe(BaseModel):
    """Healthy when GET http://CONTAINER:port/path answers 2xx or 3xx."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(ge=1, le=65535)
    path: str = Field(default="/", pattern=r"^/")


class TcpProbe(BaseModel):
    """Healthy when a TCP connection to CONTAINER:port is accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(ge=1, le=65535)


class HealthCheck(BaseModel):
    """How the agent decides that a task is healthy: one probe and its timing (compose's defaults).

    `test` is compose's form (["CMD", ...] or ["CMD-SHELL", "..."]), run inside
    the container; `http` and `tcp` (x-corral-healthcheck) are run by the
    agent from outside, for images without a shell.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    test: list[str] | None = None
    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    interval: float = Field(default=30.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    retries: int = Field(default=3, ge=1)
    start_period: float = Field(default=0.0, ge=0)
    start_interval: float = Field(default=5.0, gt=0)


class UpdateConfig(BaseModel):
    """How a spec change is rolled out over the tasks (Swarm's update_config / rollback_config).

    `parallelism` 0 means every slot at once; `monitor` is how long after it
    starts a new task's failure counts against the update; `failure_action`
    applies once failed/total exceeds `max_failure_ratio`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    parallelism: int = Field(default=1, ge=0)
    delay: float = Field(default=0.0, ge=0)
    order: UpdateOrder = "stop-first"
    monitor: float = Field(default=5.0, ge=0)
    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    failure_action: FailureAction = "pause"


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    constraints: list[str] = Field(default_factory=list)
    max_replicas_per_node: int | None = Field(default=None, ge=1)
    preferences: list[str] = Field(
        default_factory=list, description="spread over these node labels' values, in order (node.labels.KEY; Swarm's spread preferences)"
    )


class FileReference(BaseModel):
    """A secret or config a service's containers see as a file (compose's long form of `secrets:`/`configs:`).

    `source` is the stored name of the secret or config; `target` the absolute path in the
    container (secrets default to /run/secrets/NAME, on a tmpfs). uid and gid are strings
    as compose has them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
    target: str = Field(pattern=r"^/")
    uid: str = "0"
    gid: str = "0"
    mode: int = Field(default=0o444, ge=0, le=0o777)


NETWORK_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$"


class NetworkAttachment(BaseModel):
    """A network a service's containers join on every node that runs them (compose's service `networks:`).

    `name` is the network's name in the cluster (`shop_default`, `shop_backend`, or the name of another
    stack's network joined on purpose with `external: true`); `aliases` are more names the service
    answers to on it; an `internal` network has no route out of the node.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NETWORK_NAME)
    aliases: list[str] = Field(default_factory=list)
    internal: bool = False


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
    healthcheck: HealthCheck | None = None
    update_config: UpdateConfig = UpdateConfig()
    rollback_config: UpdateConfig = UpdateConfig()
    canary: int | None = Field(default=None, ge=1, description="update only this many replicas, then hold")
    secrets: list[FileReference] = Field(default_factory=list, description="secrets mounted as files: /run/secrets/NAME on a tmpfs")
    configs: list[FileReference] = Field(default_factory=list, description="configs mounted as files")
    affinities: list[Affinity] = Field(default_factory=list, description="x-corral-affinity and x-corral-anti-affinity")
    rebalance: bool = Field(default=True, description="x-corral-rebalance: move replicas to restore the spread when nodes come")
    rebalance_cooldown: float = Field(default=60.0, ge=0, description="a replica started this many seconds ago or less is not moved")
    autoscale: AutoscaleSpec | None = Field(default=None, description="x-corral-autoscale: replicas follow CPU use")
    job: JobSpec | None = Field(default=None, description="a job's runs: x-corral-job and x-corral-schedule (job modes only)")
    volumes: list[Mount] = Field(default_factory=list, description="named volumes (one per slot), bind mounts, tmpfs")
    container: ContainerOptions = Field(default_factory=ContainerOptions, description="engine options: user, hostname, ulimits...")
    depends_on: list[Dependency] = Field(default_factory=list, description="services whose condition its tasks wait for")
    networks: list[NetworkAttachment] = Field(
        default_factory=list, description="networks its containers join (none: its stack's `STACK_default`)"
    )

    def attached_networks(self) -> list[NetworkAttachment]:
        """The networks its containers join: those named, or its stack's default network."""
        return list(self.networks) or [NetworkAttachment(name=f"{self.stack or 'corral'}_default")]

    def task_shape(self) -> "ServiceSpec":
        """The spec without what does not change a running task (replicas, labels, rollout settings, dependencies)."""
        return self.model_copy(
            update={
                "replicas": 0,
                "service_labels": {},
                "update_config": UpdateConfig(),
                "rollback_config": UpdateConfig(),
                "canary": None,
                "job": None,
                "autoscale": None,
                "rebalance": True,
                "rebalance_cooldown": 60.0,
                "depends_on": [],
            }
        )


class UpdateState(str, Enum):
    updating = "updating"
    paused = "paused"
    completed = "completed"
    rollback_started = "rollback_started"
    rollback_paused = "rollback_paused"
    rollback_completed = "rollback_completed"
    canary_hold = "canary_hold"


ROLLING_BACK = frozenset({UpdateState.rollback_started, UpdateState.rollback_paused})
# States in which a rollout replaces no more running tasks until someone acts (or never again).
ROLLOUT_SETTLED = frozenset(
    {UpdateState.paused, UpdateState.completed, UpdateState.rollback_paused, UpdateState.rollback_completed, UpdateState.canary_hold}
)


class UpdateStatus(BaseModel):
    """Where the service's latest rollout stands (Swarm's UpdateStatus)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: UpdateState
    started_at: float
    completed_at: float | None = None
    message: str = ""
    updated: int = Field(default=0, description="slots running the current spec")
    total: int = Field(default=0, description="slots the service should have")
    failed: int = Field(default=0, description="new tasks that failed within `monitor`")


class Service(BaseModel):
    """A service as stored: the spec plus its bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    spec: ServiceSpec
    version: int = 1
    created_at: float
    updated_at: float
    previous_spec: ServiceSpec | None = Field(default=None, description="the spec before the last update: what rollback returns to")
    update_status: UpdateStatus | None = None
    job_status: JobStatus | None = Field(default=None, description="a job's current run and the runs before it")
    autoscale_status: AutoscaleDecision | None = Field(default=None, description="the autoscaler's last decision")
    vip: str = Field(default="", description="virtual IP where the other services of its stack reach it by name")
    reconcile_error: str = Field(
        default="", description="why the controller's last reconcile of the service failed (retried with back-off); empty when it succeeds"
    )

    @property
    def name(self) -> str:
        return self.spec.name
