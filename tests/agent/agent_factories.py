"""Builders for agent tests: tasks as the manager hands them out, containers as the engine lists them."""

from corral.agent.engines.base import ContainerInfo
from corral.model import PortSpec, PublishedPort, ServiceSpec, Task, TaskState
from corral.model.task import DesiredState


def make_task(
    task_id: str = "t1",
    state: TaskState = TaskState.assigned,
    desired: DesiredState = DesiredState.running,
    ports: list[PortSpec] | None = None,
    **fields: object,
) -> Task:
    return Task(
        id=task_id,
        service="web",
        slot=1,
        node="n1",
        state=state,
        desired_state=desired,
        spec=fields.pop("spec", None) or ServiceSpec(name="web", image="nginx", ports=ports or []),
        created_at=0.0,
        updated_at=0.0,
        **fields,  # type: ignore[arg-type]
    )


def container(
    task_id: str = "t1",
    running: bool = True,
    exit_code: int | None = None,
    error: str = "",
    ports: list[PublishedPort] | None = None,
    container_id: str | None = None,
) -> ContainerInfo:
    return ContainerInfo(
        id=container_id or f"c-{task_id}",
        task_id=task_id,
        running=running,
        exit_code=exit_code,
        error=error,
        ports=ports or [],
    )


def published(target: int, host_port: int, protocol: str = "tcp") -> PublishedPort:
    return PublishedPort(target=target, protocol=protocol, host_ip="10.0.0.1", host_port=host_port)
