"""Jobs: services whose tasks run to completion (Swarm's replicated-job and global-job), and their runs.

`JobSpec` is what the user says (`x-corral-job`, `x-corral-schedule`): how many tasks at once,
how many failures and how much time a run may take (Kubernetes Job), and for a cron job when
runs start and what happens when one is due while another still runs (Kubernetes CronJob).
`JobStatus` is what the controller keeps on the service: the current run and the last ones.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConcurrencyPolicy = Literal["forbid", "allow", "replace"]
RunState = Literal["waiting", "running", "completed", "failed", "superseded"]

RUN_HISTORY = 5  # runs kept in JobStatus.history (Kubernetes keeps 3 successful and 1 failed by default)


class JobSpec(BaseModel):
    """How a job runs: None fields take their defaults where they are used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parallelism: int | None = Field(default=None, ge=1, description="tasks running at once; default: all completions (Swarm)")
    backoff_limit: int = Field(default=6, ge=0, description="failed tasks a run tolerates before it fails (Kubernetes' default 6)")
    deadline: float | None = Field(default=None, gt=0, description="seconds a run may take before it fails (activeDeadlineSeconds)")
    schedule: str | None = Field(default=None, description="cron expression, @hourly-style name or '@every 30s'")
    timezone: str = Field(default="UTC", description="the IANA time zone the schedule is read in")
    concurrency_policy: ConcurrencyPolicy = "forbid"
    starting_deadline: float | None = Field(
        default=None, gt=0, description="a run missed by more than this many seconds is skipped (startingDeadlineSeconds)"
    )


class JobRun(BaseModel):
    """One run of a job as remembered after it ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: int
    started_at: float
    ended_at: float | None = None
    state: RunState
    completed: int = 0
    failed: int = 0
    message: str = ""


class JobStatus(BaseModel):
    """The current (or last) run of a job and the runs before it; written by the controller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: int = Field(description="the run the service's tasks belong to now (Task.job_run); 0: none yet")
    state: RunState
    spec_version: int = Field(default=0, description="the service version the run started with")
    started_at: float
    ended_at: float | None = None
    completed: int = Field(default=0, description="slots of this run whose task exited 0")
    failed: int = Field(default=0, description="tasks of this run that failed (counted against backoff_limit)")
    wanted: int = Field(default=0, description="completions this run needs")
    message: str = ""
    last_schedule: float | None = Field(default=None, description="cron: the scheduled time of the last run started or skipped")
    history: list[JobRun] = Field(default_factory=list, description="the runs before this one, newest last")

    @property
    def active(self) -> bool:
        return self.state == "running"

    def summary(self, running: int) -> str:
        """What `corral service ls` shows: `3/3 completed`, `2/3 running`, `failed: backoff limit reached`."""
        if self.state == "failed":
            return f"failed: {self.message}"
        if self.state == "waiting":
            return "waiting for its first run"
        if self.state == "completed":
            return f"{self.completed}/{self.wanted} completed"
        text = f"{running}/{self.wanted} running"
        return f"{text}, {self.completed} completed" if self.completed else text
