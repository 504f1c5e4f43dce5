"""The one place that knows where each kind of object lives in the store."""

SERVICES = "services/"
TASKS = "tasks/"
NODES = "nodes/"
CLUSTER = "cluster/info"
MANAGERS = "managers/"  # the managers of the control plane, each by its --name (its URL, when it started)
REGISTRY_TAGS = "registry/tags/"  # NAME:TAG -> the manifest digest last pushed under it (every manager's registry follows it)


def service_key(name: str) -> str:
    return SERVICES + name


def task_key(task_id: str) -> str:
    return TASKS + task_id


def node_key(name: str) -> str:
    return NODES + name

TOKENS = "tokens/"
SECRETS = "secrets/"
CONFIGS = "configs/"
AUDIT = "audit/last"  # the last write a token made (api/audit.py): its history is the audit trail
DATA_KEY = "cluster/data-key"  # the secrets' data-encryption key, wrapped by the key-encryption key


def token_key(token_id: str) -> str:
    return TOKENS + token_id


def secret_key(name: str) -> str:
    return SECRETS + name


def config_key(name: str) -> str:
    return CONFIGS + name

VOLUMES = "volumes/"


def volume_key(node: str, name: str) -> str:
    """A volume is known by the node that holds it and its name (a disposable one may be on several nodes)."""
    return f"{VOLUMES}{node}/{name}"
