"""What corral does with each key of a compose file: the one table, data only.

    HONOURED: corral does what the key asks (the parser reads it).
    IGNORED:  harmless on a cluster; each use is one warning line saying why.
    REFUSED:  it would change what the application does and corral cannot do it:
              an error (the deploy changes nothing) saying why and what to use instead.

A key in no table is not a Compose key: refused, with the nearest known key
as a hint (a typo such as `enviroment:` would otherwise drop the section).
`x-` keys are extensions and are skipped.
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
    "networks": HONOURED,  # per-stack networks (agent/networks), with aliases, internal, external
    "volumes": HONOURED,
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
    "container_name": HONOURED,  # a warning from container.py: each replica gets its own name
    "expose": HONOURED,  # a listener on the service's VIP, not published
    "networks": HONOURED,
    "links": _ignored("services of a stack reach each other by service name already"),
    "external_links": _ignored("services of a stack reach each other by service name already"),
    "pull_policy": _ignored("nodes pull the image from the registry when they do not have it"),
    "scale": _ignored("use deploy.replicas (scale is the older form; deploy.replicas is what corral reads)"),
    "depends_on": HONOURED,  # dependents wait pending until the condition holds (manager/dependencies.py)
    "logging": HONOURED,
    "volumes": HONOURED,  # named volumes (one per replica, kept on its node), bind mounts under --allow-bind, tmpfs
    "develop": _ignored("`docker compose watch` settings have no meaning for a deploy"),
    "attach": _ignored("`docker compose up` log attachment has no meaning for a deploy; use `corral service logs`"),
    "stdin_open": HONOURED,
    "tty": HONOURED,
    "mac_address": _ignored("each task gets an address on the stack network"),
    # not honoured, and the application would behave differently: errors
    "env_file": _refused("the manager cannot read files on your machine: `corral deploy` reads env_file and sends environment"),
    "build": HONOURED,  # `corral deploy --build` builds and pushes it; without it, refused by builds.check_build
    "restart": HONOURED,  # the restart policy, unless deploy.restart_policy is set (older_forms.py)
    "extends": _refused("corral does not resolve extends; merge the files with several -c options instead"),
    "profiles": _refused("corral deploys every service of the file; remove the profiled services or the profiles key"),
    "volumes_from": _refused("tasks run on different nodes and cannot share another container's volumes"),
    "user": HONOURED,  # engine options (container.py, model/container.py)
    "working_dir": HONOURED,
    "hostname": HONOURED,
    "domainname": HONOURED,
    "cap_add": HONOURED,
    "cap_drop": HONOURED,
    "sysctls": HONOURED,
    "ulimits": HONOURED,
    "init": HONOURED,
    "tmpfs": HONOURED,
    "read_only": HONOURED,
    "stop_signal": HONOURED,
    "shm_size": HONOURED,
    "extra_hosts": HONOURED,
    "dns": HONOURED,
    "dns_search": HONOURED,
    "dns_opt": HONOURED,
    "pids_limit": HONOURED,
    "mem_limit": HONOURED,  # older forms of deploy.resources (older_forms.py)
    "mem_reservation": HONOURED,
    "cpus": HONOURED,
    "platform": HONOURED,
    "security_opt": HONOURED,
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
    "deploy.resources.limits.pids": _ignored("corral does not limit the number of processes yet"),
    "deploy.resources.reservations.devices": _refused("corral does not schedule devices or GPUs: the task would run without them"),
    "deploy.resources.reservations.generic_resources": _refused("corral does not schedule generic resources"),
    "deploy.restart_policy.jitter": _ignored("not part of the Compose Specification"),
    "ports[].app_protocol": _ignored("a hint for tools; the routing mesh forwards TCP and UDP as they are"),
    "ports[].name": _ignored("a name for tools; ports are addressed by number"),
    "healthcheck.start_interval": HONOURED,
}

ALL_SERVICE_KEYS = frozenset(SERVICE)
