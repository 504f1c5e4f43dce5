"""A service's `ContainerOptions` as the docker SDK's `containers.create` keywords (pure, no engine call).

Only what the spec sets is passed, so an empty `ContainerOptions` leaves
every engine default as it is. `extra_hosts` of the spec come before the
stack's service names (`hosts`), and a name the spec gives is not
overridden by them: /etc/hosts answers with its first line for a name.
"""

from collections.abc import Mapping
from typing import Any

from docker.types import LogConfig, Ulimit

from corral.model.container import ContainerOptions

DEFAULT_STOP_SIGNAL = "SIGTERM"


def create_options(options: ContainerOptions, hosts: Mapping[str, str]) -> dict[str, Any]:
    """The keywords for `containers.create` that `options` and the stack's `hosts` ask for."""
    created: dict[str, Any] = {"stop_signal": options.stop_signal or DEFAULT_STOP_SIGNAL}
    plain = {
        "user": options.user,
        "working_dir": options.working_dir,
        "hostname": options.hostname,
        "domainname": options.domainname,
        "init": options.init,
        "shm_size": options.shm_size,
        "pids_limit": options.pids_limit,
        "platform": options.platform,
        "pid_mode": options.pid,
        "ipc_mode": options.ipc,
        "uts_mode": options.uts,
    }
    created.update({key: value for key, value in plain.items() if value is not None})
    collections: dict[str, Any] = {
        "cap_add": options.cap_add,
        "cap_drop": options.cap_drop,
        "sysctls": dict(options.sysctls),
        "tmpfs": dict(options.tmpfs),
        "dns": options.dns,
        "dns_search": options.dns_search,
        "dns_opt": options.dns_opt,
        "security_opt": options.security_opt,
        "devices": options.devices,
    }
    created.update({key: list(value) if isinstance(value, list) else value for key, value in collections.items() if value})
    for flag in ("read_only", "stdin_open", "tty", "privileged"):
        if getattr(options, flag):
            created[flag] = True
    if options.ulimits:
        created["ulimits"] = [Ulimit(name=name, soft=limit.soft, hard=limit.hard) for name, limit in options.ulimits.items()]
    if options.logging is not None and (options.logging.driver or options.logging.options):  # no driver: the engine's default
        created["log_config"] = LogConfig(type=options.logging.driver, config=dict(options.logging.options))
    extra = [f"{name}:{address}" for name, address in options.extra_hosts.items()]
    extra += [f"{name}:{address}" for name, address in hosts.items() if name not in options.extra_hosts]
    if extra:
        created["extra_hosts"] = extra
    return created
