"""The service keys that become engine options of the containers (`ContainerOptions`).

`user`, `working_dir`, `hostname`, `domainname`, `cap_add`, `cap_drop`,
`sysctls`, `ulimits`, `init`, `tmpfs`, `read_only`, `stop_signal`,
`shm_size`, `extra_hosts`, `dns`, `dns_search`, `dns_opt`, `logging`,
`stdin_open`, `tty`, `pids_limit`, `security_opt` and `platform`, read as
`docker compose` reads them; `privileged`, `pid`/`ipc`/`uts: host` and
`devices` too, which only a manager started with --allow-privileged lets
through. What the deploy policy forbids among them
(dangerous capabilities, unconfined security options) is refused before,
by `privileges.check_privileges`.
"""

import re
from collections.abc import Mapping
from typing import Literal

from corral.compose.keyvalues import parse_labels
from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.sizes import parse_bytes
from corral.compose.values import optional, read_bool, read_count, read_mapping, read_non_empty_string, read_string, read_string_list, show
from corral.model.container import ContainerOptions, Logging, Ulimit
from corral.model.errors import InvalidSpec

CONTAINER_KEYS = frozenset(
    {
        "user", "working_dir", "hostname", "domainname", "cap_add", "cap_drop", "sysctls", "ulimits", "init", "tmpfs",
        "read_only", "stop_signal", "shm_size", "extra_hosts", "dns", "dns_search", "dns_opt", "logging", "stdin_open",
        "tty", "pids_limit", "security_opt", "platform", "container_name", "privileged", "pid", "ipc", "uts", "devices",
    }
)
_LOGGING_KEYS = frozenset({"driver", "options"})
_ULIMIT_KEYS = frozenset({"soft", "hard"})
_CAPABILITY = re.compile(r"(CAP_)?[A-Z_]{2,32}", re.IGNORECASE)
_SIGNAL = re.compile(r"(SIG)?[A-Z0-9+-]{2,16}|[0-9]{1,2}", re.IGNORECASE)
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
_PERMISSIONS = re.compile(r"[rwm]{1,3}")
_HOST_NAME = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})?")


def parse_container(section: Mapping[str, object], path: str, notes: Notes) -> ContainerOptions:
    """The engine options of the service whose keys are `section`, at `path`."""
    if section.get("container_name") is not None:
        notes.warn(
            f"{child(path, 'container_name')} is ignored: a service's replicas each get their own name; "
            "other services reach it by its service name"
        )
    get = section.get
    return ContainerOptions(
        user=optional(section, "user", path, _read_user, None),
        working_dir=optional(section, "working_dir", path, _read_absolute, None),
        hostname=optional(section, "hostname", path, _read_host_name, None),
        domainname=optional(section, "domainname", path, _read_host_name, None),
        cap_add=_read_capabilities(get("cap_add"), child(path, "cap_add")),
        cap_drop=_read_capabilities(get("cap_drop"), child(path, "cap_drop")),
        sysctls=parse_labels(get("sysctls"), child(path, "sysctls")),  # KEY=VALUE in list or mapping form, as labels
        ulimits=_read_ulimits(get("ulimits"), child(path, "ulimits"), notes),
        init=optional(section, "init", path, read_bool, None),
        tmpfs=_read_tmpfs(get("tmpfs"), child(path, "tmpfs")),
        read_only=optional(section, "read_only", path, read_bool, False),
        stop_signal=optional(section, "stop_signal", path, _read_signal, None),
        shm_size=optional(section, "shm_size", path, parse_bytes, None),
        extra_hosts=_read_extra_hosts(get("extra_hosts"), child(path, "extra_hosts")),
        dns=_read_one_or_many(get("dns"), child(path, "dns")),
        dns_search=_read_one_or_many(get("dns_search"), child(path, "dns_search")),
        dns_opt=read_string_list(get("dns_opt"), child(path, "dns_opt")),
        logging=optional(section, "logging", path, lambda value, at: _read_logging(value, at, notes), None),
        stdin_open=optional(section, "stdin_open", path, read_bool, False),
        tty=optional(section, "tty", path, read_bool, False),
        pids_limit=optional(section, "pids_limit", path, _read_pids_limit, None),
        security_opt=read_string_list(get("security_opt"), child(path, "security_opt")),
        platform=optional(section, "platform", path, _read_platform, None),
        privileged=optional(section, "privileged", path, read_bool, False),
        pid=_read_host(get("pid")),
        ipc=_read_host(get("ipc")),
        uts=_read_host(get("uts")),
        devices=_read_devices(get("devices"), child(path, "devices")),
    )


def _read_user(value: object, path: str) -> str:
    """`user: 1000`, `"1000:1000"` or `nobody`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = read_non_empty_string(value, path)
    if any(c.isspace() for c in text):
        raise InvalidSpec(path, f"invalid user {show(text)}: expected NAME, UID or UID:GID")
    return text


def _read_absolute(value: object, path: str) -> str:
    text = read_string(value, path)
    if not text.startswith("/"):
        raise InvalidSpec(path, f"{show(text)} must be an absolute path (starting with /)")
    return text


def _read_host_name(value: object, path: str) -> str:
    text = read_string(value, path)
    if not _HOST_NAME.fullmatch(text):
        raise InvalidSpec(path, f"invalid host name {show(text)}: letters, digits, '.' and '-'")
    return text


def _read_capabilities(value: object, path: str) -> list[str]:
    names = read_string_list(value, path)
    for index, name in enumerate(names):
        if not _CAPABILITY.fullmatch(name):
            raise InvalidSpec(item(path, index), f"invalid capability {show(name)}: e.g. NET_BIND_SERVICE or CHOWN")
    return [name.upper() for name in names]


def _read_signal(value: object, path: str) -> str:
    text = read_string(value, path)
    if not _SIGNAL.fullmatch(text):
        raise InvalidSpec(path, f"invalid signal {show(text)}: e.g. SIGTERM, SIGINT or SIGQUIT")
    return text.upper()


def _read_ulimits(value: object, path: str, notes: Notes) -> dict[str, Ulimit]:
    """`nofile: 1024` (soft = hard) or `nofile: {soft: 1024, hard: 2048}`."""
    ulimits: dict[str, Ulimit] = {}
    for name, raw in read_mapping(value, path).items():
        at = child(path, name)
        if isinstance(raw, dict):
            limits = read_mapping(raw, at)
            notes.ignore_unknown(limits, _ULIMIT_KEYS, at)
            for key in ("soft", "hard"):
                if limits.get(key) is None:
                    raise InvalidSpec(child(at, key), "is required with the long form (soft and hard)")
            soft, hard = _read_limit(limits["soft"], child(at, "soft")), _read_limit(limits["hard"], child(at, "hard"))
        else:
            soft = hard = _read_limit(raw, at)
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidSpec(at, f"soft limit {soft} is above the hard limit {hard}")
        ulimits[name] = Ulimit(soft=soft, hard=hard)
    return ulimits


def _read_limit(value: object, path: str) -> int:
    if value == -1:  # unlimited
        return -1
    return read_count(value, path)


def _read_tmpfs(value: object, path: str) -> dict[str, str]:
    """`tmpfs: /run` or a list of `PATH[:OPTIONS]` (`/run:size=64m,mode=1777`)."""
    entries = [value] if isinstance(value, str) else read_string_list(value, path)
    mounts: dict[str, str] = {}
    for index, entry in enumerate(entries):
        target, _, options = str(entry).partition(":")
        at = path if isinstance(value, str) else item(path, index)
        if not target.startswith("/"):
            raise InvalidSpec(at, f"{show(entry)} must be an absolute path, optionally with :OPTIONS")
        mounts[target] = options
    return mounts


def _read_extra_hosts(value: object, path: str) -> dict[str, str]:
    """`["db:10.0.0.2", "api=10.0.0.3"]` or `{db: 10.0.0.2}`; `host-gateway` is the engine's."""
    if isinstance(value, dict):
        pairs = [(name, read_string(address, child(path, name)), child(path, name)) for name, address in read_mapping(value, path).items()]
    else:
        pairs = []
        for index, entry in enumerate(read_string_list(value, path)):
            separator = "=" if "=" in entry else ":"
            name, found, address = entry.partition(separator)
            if not found:
                raise InvalidSpec(item(path, index), f"invalid entry {show(entry)}: expected HOST:ADDRESS or HOST=ADDRESS")
            pairs.append((name, address, item(path, index)))
    hosts: dict[str, str] = {}
    for name, address, at in pairs:
        if not _HOST_NAME.fullmatch(name) or not address.strip():
            raise InvalidSpec(at, f"invalid entry {show(name)}: expected a host name and an address")
        hosts[name] = address.strip("[]")
    return hosts


def _read_one_or_many(value: object, path: str) -> list[str]:
    return [value] if isinstance(value, str) else read_string_list(value, path)


def _read_logging(value: object, path: str, notes: Notes) -> Logging:
    section = read_mapping(value, path)
    notes.ignore_unknown(section, _LOGGING_KEYS, path)
    return Logging(
        driver=optional(section, "driver", path, read_non_empty_string, ""),
        options=parse_labels(section.get("options"), child(path, "options")),
    )


def _read_pids_limit(value: object, path: str) -> int:
    if value == -1:
        return -1
    return read_count(value, path, minimum=1)


def _read_platform(value: object, path: str) -> str:
    text = read_string(value, path)
    if not _PLATFORM.fullmatch(text):
        raise InvalidSpec(path, f"invalid platform {show(text)}: expected OS/ARCH, e.g. linux/amd64 or linux/arm64/v8")
    return text


def _read_host(value: object) -> Literal["host"] | None:
    """`host`, the node's namespace; any other value (`private`, `shareable`) is the engine's default."""
    return "host" if value == "host" else None


def _read_devices(value: object, path: str) -> list[str]:
    """`/dev/fuse`, `/dev/sda:/dev/xvda` or `/dev/sda:/dev/xvda:r`, each as HOST:CONTAINER:PERMS."""
    devices = []
    for index, entry in enumerate(read_string_list(value, path)):
        parts = entry.split(":")
        host, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
        permissions = parts[2] if len(parts) > 2 else "rwm"
        if len(parts) > 3 or not host.startswith("/") or not target.startswith("/") or not _PERMISSIONS.fullmatch(permissions):
            raise InvalidSpec(item(path, index), f"invalid device {show(entry)}: expected HOST[:CONTAINER[:PERMISSIONS]], e.g. /dev/fuse or /dev/sda:/dev/xvda:r")
        devices.append(f"{host}:{target}:{permissions}")
    return devices
