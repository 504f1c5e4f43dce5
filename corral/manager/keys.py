"""The one place that knows where each kind of object lives in the store."""

SERVICES = "services/"
TASKS = "tasks/"
NODES = "nodes/"
CLUSTER = "cluster/info"


def service_key(name: str) -> str:
    return SERVICES + name


def task_key(task_id: str) -> str:
    return TASKS + task_id


def node_key(name: str) -> str:
    return NODES + name
