"""What corral does with each key of a compose file: the one table, data only.

    HONOURED: corral does what the key asks (the parser reads it).
    IGNORED:  harmless on a cluster; each use is one warning line saying why.
    REFUSED:  it would change what the application does and corral cannot do it:
              an error (the deploy changes nothing) saying why and what to use instead.

A key in no table is not a Compose key: refused, with the nearest known key
as a hint (a typo such as `enviroment:` would otherwise drop the section).
`x-` keys are extensions and are skipped. `restart` is refused only for the
values whose behaviour corral's own restart differs from (HARMLESS_VALUES).
"""

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["honoured", "ignored", "refused"]


@dataclass(frozen=True)
class Rule:
    verdict: Verdict
    why: str = ""  # for ignored and refused keys: why, and what to use instead


HONOURED = Rule("honoured")


def _ignored(why: str) -> Rule:
    return Rule("ignored", why)


def _refused(why: str) -> Rule:
    return Rule("refused", why)


_NOT_YET = "corral does not apply this key yet, and the containers would run without it"

TOP_LEVEL: dict[str, Rule] = {
    "services": HONOURED,
    "secrets": HONOURED,
    "configs": HONOURED,
    "name": HONOURED,
    "version": HONOURED,  # obsolete in the Compose Specification, and harmless: accepted silently
    "networks": HONOURED,
    "volumes": _ignored("named volumes are created by the engine of each node when a task first uses them"),
    "include": _refused("corral does not read included files; pass each file with -c, in order"),
    "models": _refused("corral does not run AI models; deploy a service that serves the model"),
}

SERVICE: dict[str, Rule] = {
    "image": HONOURED,
    "command": HONOURED,
    "entrypoint": HONOURED,
    "environment": HONOURED,
    "labels": HONOURED,
    "ports": HONOURED,
    "stop_grace_period": HONOURED,
    "deploy": HONOURED,
    "healthcheck": HONOURED,
    "secrets": HONOURED,
    "configs": HONOURED,
    # harmless on a cluster: warnings
    "container_name": _ignored("replicas cannot share one name; containers are named STACK_SERVICE.N.ID"),
    "expose": HONOURED,
    "networks": HONOURED,
    "links": _ignored("services of a stack reach each other by service name already"),
    "external_links": _ignored("services of a stack reach each other by service name already"),
    "pull_policy": _ignored("nodes pull the image from the registry when they do not have it"),
    "scale": _ignored("use deploy.replicas (scale is the older form; deploy.replicas is what corral reads)"),
    "depends_on": _ignored("start order is not enforced yet: services must retry until what they depend on answers"),
    "logging": _ignored("containers log with each node's default driver; read them with `corral service logs`"),
    "volumes": _ignored("a named volume lives on the node where the task runs and does not follow it to another node"),
    "develop": _ignored("`docker compose watch` settings have no meaning for a deploy"),
    "attach": _ignored("`docker compose up` log attachment has no meaning for a deploy; use `corral service logs`"),
    "stdin_open": _ignored("nothing attaches to a task's standard input; use `corral service exec`-style tools"),
    "tty": _ignored("nothing attaches to a task's terminal"),
    "mac_address": _ignored("each task gets an address on the stack network"),
    # not honoured, and the application would behave differently: errors
    "env_file": _refused("the manager cannot read files on your machine: `corral deploy` reads env_file and sends environment"),
    "build": _refused("corral does not build images yet: build and push the image (`corral image push`), then set image:"),
    "restart": _refused("set deploy.restart_policy.condition instead (none, on-failure or any)"),
    "extends": _refused("corral does not resolve extends; merge the files with several -c options instead"),
    "profiles": _refused("corral deploys every service of the file; remove the profiled services or the profiles key"),
    "volumes_from": _refused("tasks run on different nodes and cannot share another container's volumes"),
    "user": _refused(_NOT_YET + " as that user"),
    "working_dir": _refused(_NOT_YET + " in that directory"),
    "hostname": _refused(_NOT_YET),
    "domainname": _refused(_NOT_YET),
    "cap_add": _refused(_NOT_YET + " with the added capabilities"),
    "cap_drop": _refused(_NOT_YET + " with those capabilities"),
    "sysctls": _refused(_NOT_YET),
    "ulimits": _refused(_NOT_YET + " within those limits"),
    "init": _refused(_NOT_YET + " under an init process"),
    "tmpfs": _refused(_NOT_YET + " with those tmpfs mounts"),
    "read_only": _refused(_NOT_YET + " with a read-only root file system"),
    "stop_signal": _refused(_NOT_YET + ": they would be stopped with SIGTERM"),
    "shm_size": _refused(_NOT_YET + " with that /dev/shm size"),
    "extra_hosts": _refused(_NOT_YET + " with those /etc/hosts entries"),
    "dns": _refused(_NOT_YET + " with those DNS servers"),
    "dns_search": _refused(_NOT_YET + " with those DNS search domains"),
    "dns_opt": _refused(_NOT_YET + " with those DNS options"),
    "pids_limit": _refused(_NOT_YET + "; use deploy.resources.limits.pids"),
    "mem_limit": _refused("use deploy.resources.limits.memory"),
    "mem_reservation": _refused("use deploy.resources.reservations.memory"),
    "cpus": _refused("use deploy.resources.limits.cpus"),
    "platform": _refused(_NOT_YET + "; use a deploy.placement constraint on node.platform"),
    "security_opt": _refused(_NOT_YET + " with those security options"),
    "group_add": _refused(_NOT_YET + " with those groups"),
    "runtime": _refused(_NOT_YET + " under that runtime"),
    "isolation": _refused(_NOT_YET),
    "gpus": _refused("corral does not schedule GPUs"),
    "post_start": _refused(_NOT_YET + ": the hook would not run"),
    "pre_stop": _refused(_NOT_YET + ": the hook would not run"),
    "oom_kill_disable": _refused(_NOT_YET),
    "oom_score_adj": _refused(_NOT_YET),
    "cgroup_parent": _refused(_NOT_YET),
    "storage_opt": _refused(_NOT_YET),
    "label_file": _refused("write the labels under labels:"),
    "provider": _refused("corral runs containers, not provider services"),
    "use_api_socket": _refused("a task may not reach the node's Docker engine"),
    # the deploy policy (privileges.py) refuses these with its own reasons when set to something that matters
    "privileged": HONOURED,
    "pid": HONOURED,
    "ipc": HONOURED,
    "network_mode": HONOURED,
    "userns_mode": HONOURED,
    "uts": HONOURED,
    "cgroup": HONOURED,
    "devices": HONOURED,
}

# Keys inside a service's sections that its reader does not take, by their place in the service
# (`[]` is any list item). A key of those sections not listed here is ignored with a generic warning.
NESTED: dict[str, Rule] = {
    "deploy.endpoint_mode": _ignored("every service gets a virtual IP, and `tasks.NAME` resolves to its replicas"),
    "deploy.placement.preferences": _ignored("corral spreads the replicas of a service across nodes already"),
    "deploy.resources.limits.pids": _ignored("corral does not limit the number of processes yet"),
    "deploy.resources.reservations.devices": _refused("corral does not schedule devices or GPUs: the task would run without them"),
    "deploy.resources.reservations.generic_resources": _refused("corral does not schedule generic resources"),
    "deploy.restart_policy.jitter": _ignored("not part of the Compose Specification"),
    "ports[].app_protocol": _ignored("a hint for tools; the routing mesh forwards TCP and UDP as they are"),
    "ports[].name": _ignored("a name for tools; ports are addressed by number"),
    "healthcheck.start_interval": HONOURED,
}

# The few other keys whose meaning the table cannot say alone:
# `restart: always` and `unless-stopped` are what corral does anyway (it restarts any task that stops).
HARMLESS_VALUES: dict[str, frozenset[object]] = {"restart": frozenset({"always", "unless-stopped"})}
HARMLESS_WHY: dict[str, str] = {"restart": "corral restarts every task that stops (deploy.restart_policy.condition: any)"}

ALL_SERVICE_KEYS = frozenset(SERVICE)
