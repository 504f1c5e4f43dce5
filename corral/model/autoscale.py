"""Autoscaling (`x-corral-autoscale`): what the user asks for, and the last decision kept on the service.

The target is CPU in percent of the service's CPU reservation per replica, or of one core when the
service reserves none; the decision rule (Kubernetes' HorizontalPodAutoscaler v2) is in
manager/autoscale.py, the loop that samples and scales in manager/autoscaler.py.
"""

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AutoscaleSpec(BaseModel):
    """min/max replicas, the CPU target, how often to sample and how long decisions are stabilized."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(default=1, ge=1)
    max: int = Field(ge=1)
    target_cpu: float = Field(gt=0, le=10_000, allow_inf_nan=False, description="percent of the reservation (or of one core)")
    tolerance: float = Field(default=0.1, ge=0, lt=1, description="no change while usage/target is within 1 +- this (HPA: 10%)")
    interval: float = Field(default=15.0, gt=0, le=3600, description="seconds between two samples (HPA's sync period)")
    scale_up_stabilization: float = Field(default=0.0, ge=0, le=3600, description="seconds: the lowest recommendation of the window")
    scale_down_stabilization: float = Field(default=300.0, ge=0, le=3600, description="seconds: the highest recommendation of the window")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscaleSpec":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is more than max ({self.max})")
        return self


class AutoscaleDecision(BaseModel):
    """The autoscaler's last decision on a service: when, from how many replicas to how many, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: float
    current: int
    desired: int
    usage: float | None = Field(description="mean CPU of the sampled replicas, in percent of the target's base; None: no figures")
    target: float
    reason: str
