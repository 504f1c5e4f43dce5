"""Jobs in compose: deploy.mode replicated-job / global-job, x-corral-job, x-corral-schedule(-timezone)."""

import pytest

from compose_helpers import web, web_error, web_result
from corral.model.job import JobSpec
from corral.model.service import ServiceMode


def test_replicated_job_with_its_settings() -> None:
    spec = web(
        {
            "image": "busybox",
            "deploy": {"mode": "replicated-job", "replicas": 3},
            "x-corral-job": {"parallelism": 2, "backoff_limit": 1, "deadline": "2m"},
        }
    )
    assert spec.mode is ServiceMode.replicated_job and spec.replicas == 3
    assert spec.job == JobSpec(parallelism=2, backoff_limit=1, deadline=120.0)


def test_job_mode_alone_has_the_defaults() -> None:
    assert web({"image": "busybox", "deploy": {"mode": "global-job"}}).job == JobSpec()


def test_cron_job() -> None:
    spec = web(
        {
            "image": "busybox",
            "deploy": {"mode": "replicated-job"},
            "x-corral-schedule": "*/5 * * * *",
            "x-corral-schedule-timezone": "Europe/Paris",
            "x-corral-job": {"concurrency_policy": "replace", "starting_deadline": "30s"},
        }
    )
    assert spec.job is not None
    assert (spec.job.schedule, spec.job.timezone, spec.job.concurrency_policy, spec.job.starting_deadline) == (
        "*/5 * * * *", "Europe/Paris", "replace", 30.0,
    )


def test_unknown_job_key_is_a_warning() -> None:
    result = web_result({"image": "busybox", "deploy": {"mode": "replicated-job"}, "x-corral-job": {"completions": 3}})
    assert any("services.web.x-corral-job.completions" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("service", "path", "reason"),
    [
        ({"x-corral-job": {"parallelism": 2}}, "services.web.x-corral-job", "is only for jobs"),
        ({"x-corral-schedule": "@hourly"}, "services.web.x-corral-schedule", "is only for jobs"),
        ({"deploy": {"mode": "replicated-job"}, "x-corral-schedule": "* * *"}, "services.web.x-corral-schedule", "expected five fields"),
        (
            {"deploy": {"mode": "replicated-job"}, "x-corral-schedule": "@daily", "x-corral-schedule-timezone": "Nowhere/City"},
            "services.web.x-corral-schedule-timezone",
            "unknown time zone",
        ),
        ({"deploy": {"mode": "replicated-job"}, "x-corral-schedule-timezone": "UTC"}, "services.web.x-corral-schedule-timezone", "needs x-corral-schedule"),
        (
            {"deploy": {"mode": "replicated-job"}, "x-corral-job": {"concurrency_policy": "forbid"}},
            "services.web.x-corral-job.concurrency_policy",
            "only for a job with x-corral-schedule",
        ),
        (
            {"deploy": {"mode": "replicated-job"}, "x-corral-schedule": "@hourly", "x-corral-job": {"concurrency_policy": "queue"}},
            "services.web.x-corral-job.concurrency_policy",
            "unknown concurrency policy 'queue'",
        ),
        ({"deploy": {"mode": "replicated-job"}, "x-corral-job": {"parallelism": 0}}, "services.web.x-corral-job.parallelism", "positive integer"),
        ({"deploy": {"mode": "replicated-job"}, "x-corral-job": {"deadline": "0s"}}, "services.web.x-corral-job.deadline", "longer than 0"),
        ({"deploy": {"mode": "global-job", "replicas": 2}}, "services.web.deploy.replicas", "not allowed with mode global-job"),
        ({"deploy": {"mode": "cron"}}, "services.web.deploy.mode", "expected replicated, global, replicated-job or global-job"),
    ],
)
def test_bad_job_settings_name_the_field(service: dict[str, object], path: str, reason: str) -> None:
    error = web_error({"image": "busybox", **service})
    assert error.path == path
    assert reason in error.reason
