"""Autoscaling (`x-corral-autoscale`): what the user asks for, and the last decision kept on the service.

The target is one of: CPU in percent of the service's CPU reservation per replica (of one core when the
service reserves none), or requests per second per replica, counted by the routing mesh of every node
(the mesh is a TCP proxy: it counts connections, so a request is a new connection); the decision rule (Kubernetes' HorizontalPodAutoscaler v2) is in
manager/autoscale.py, the loop that samples and scales in manager/autoscaler.py.
"""

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AutoscaleSpec(BaseModel):
    """min/max replicas, the target (CPU or requests per second), how often to sample and how long decisions are stabilized."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(default=1, ge=1)
    max: int = Field(ge=1)
    target_cpu: float | None = Field(default=None, gt=0, le=10_000, allow_inf_nan=False, description="percent of the reservation (or of one core)")
    target_requests_per_second: float | None = Field(
        default=None, gt=0, le=1_000_000, allow_inf_nan=False, description="per replica, new connections through the routing mesh"
    )
    tolerance: float = Field(default=0.1, ge=0, lt=1, description="no change while usage/target is within 1 +- this (HPA: 10%)")
    interval: float = Field(default=15.0, gt=0, le=3600, description="seconds between two samples (HPA's sync period)")
    scale_up_stabilization: float = Field(default=0.0, ge=0, le=3600, description="seconds: the lowest recommendation of the window")
    scale_down_stabilization: float = Field(default=300.0, ge=0, le=3600, description="seconds: the highest recommendation of the window")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscaleSpec":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is more than max ({self.max})")
        if (self.target_cpu is None) == (self.target_requests_per_second is None):
            raise ValueError("give one target: target_cpu or target_requests_per_second")
        return self

    @property
    def metric(self) -> str:
        """What the target measures: "cpu" or "requests_per_second"."""
        return "cpu" if self.target_cpu is not None else "requests_per_second"

    @property
    def target(self) -> float:
        value = self.target_cpu if self.target_cpu is not None else self.target_requests_per_second
        assert value is not None  # the validator makes one of them set
        return value


class AutoscaleDecision(BaseModel):
    """The autoscaler's last decision on a service: when, from how many replicas to how many, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: float
    current: int
    desired: int
    metric: str = Field(default="cpu", description="cpu or requests_per_second")
    usage: float | None = Field(
        description="cpu: mean CPU of the sampled replicas, in percent of the target's base; requests_per_second: the mesh's "
        "new connections per second over all nodes, per replica; None: no figures"
    )
    target: float
    reason: str
