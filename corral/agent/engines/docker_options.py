"""A service's `ContainerOptions` as the Engine API's container create body (pure, no engine call).

The body of `POST /containers/create`: the container's own fields at the top (`User`, `Tty`, `StopSignal`...) and the
host's in `HostConfig` (`CapAdd`, `Ulimits`, `LogConfig`...), named as the Engine API names them. Only what the spec
sets is passed, so an empty `ContainerOptions` leaves every engine default as it is. `extra_hosts` of the spec come
before the stack's service names (`hosts`), and a name the spec gives is not overridden by them: /etc/hosts answers
with its first line for a name. The platform is not in the body: it is the create call's `platform` parameter.
"""

from collections.abc import Mapping
from typing import Any

from corral.model.container import ContainerOptions

DEFAULT_STOP_SIGNAL = "SIGTERM"


def create_body(options: ContainerOptions, hosts: Mapping[str, str]) -> dict[str, Any]:
    """The create body's fields, with its `HostConfig`, that `options` and the stack's `hosts` ask for."""
    config: dict[str, Any] = {"StopSignal": options.stop_signal or DEFAULT_STOP_SIGNAL}
    plain = {"User": options.user, "WorkingDir": options.working_dir, "Hostname": options.hostname, "Domainname": options.domainname}
    config.update({key: value for key, value in plain.items() if value is not None})
    if options.stdin_open:
        config["OpenStdin"] = True
    if options.tty:
        config["Tty"] = True
    host: dict[str, Any] = {}
    host_plain = {
        "Init": options.init, "ShmSize": options.shm_size, "PidsLimit": options.pids_limit,
        "PidMode": options.pid, "IpcMode": options.ipc, "UTSMode": options.uts,
    }
    host.update({key: value for key, value in host_plain.items() if value is not None})
    collections: dict[str, Any] = {
        "CapAdd": options.cap_add,
        "CapDrop": options.cap_drop,
        "Sysctls": dict(options.sysctls),
        "Tmpfs": dict(options.tmpfs),
        "Dns": options.dns,
        "DnsSearch": options.dns_search,
        "DnsOptions": options.dns_opt,
        "SecurityOpt": options.security_opt,
        "Devices": [device_mapping(device) for device in options.devices],
    }
    host.update({key: list(value) if isinstance(value, list) else value for key, value in collections.items() if value})
    if options.read_only:
        host["ReadonlyRootfs"] = True
    if options.privileged:
        host["Privileged"] = True
    if options.ulimits:
        host["Ulimits"] = [{"Name": name, "Soft": limit.soft, "Hard": limit.hard} for name, limit in options.ulimits.items()]
    if options.logging is not None and (options.logging.driver or options.logging.options):  # no driver: the engine's default
        host["LogConfig"] = {"Type": options.logging.driver, "Config": dict(options.logging.options)}
    extra = [f"{name}:{address}" for name, address in options.extra_hosts.items()]
    extra += [f"{name}:{address}" for name, address in hosts.items() if name not in options.extra_hosts]
    if extra:
        host["ExtraHosts"] = extra
    return {**config, "HostConfig": host}


def device_mapping(device: str) -> dict[str, str]:
    """`HOST[:CONTAINER[:PERMS]]` as the engine's device mapping (the container's path is the host's unless given,
    the permissions `rwm` unless given)."""
    parts = device.split(":")
    return {
        "PathOnHost": parts[0],
        "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
        "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm",
    }
