"""The deploy policy: what a compose file may not ask of the nodes.

A deploy runs containers on every node, so a key that would give a
container the node itself (`privileged`, the host's namespaces, its
devices, capabilities that reach past the container, an unconfined
security option) is refused with the path and the reason, never dropped
with a warning: a service that needs it would otherwise run without it and
behave differently. The manager's start option `--allow-privileged` lets
these keys through (they are then honoured, `ContainerOptions`); it is the
operator's decision, and nothing a token of any role can do changes it
(docs/security.md).

Some keys stay refused even with the option, because corral could not
honour them: `network_mode: host` (a task lives on its stack's networks,
where others reach it by name and VIP and its published ports are routed),
`userns_mode`/`cgroup: host`, and any namespace shared with another
container (`container:` / `service:`), which may be on another node.
"""

from collections.abc import Mapping

from corral.compose.paths import child, item
from corral.compose.problems import Problems

# Capabilities that reach outside the container (Docker's default set is kept; these are not in it).
DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "SYS_BOOT", "SYS_TIME", "NET_ADMIN",
        "DAC_READ_SEARCH", "MAC_ADMIN", "MAC_OVERRIDE", "BPF", "PERFMON", "SYSLOG", "LINUX_IMMUTABLE",
    }
)
HOST_NAMESPACES = ("pid", "ipc", "uts")  # `host` is honoured for these with --allow-privileged
_NEVER_HOST = ("network_mode", "userns_mode", "cgroup")  # `host` is refused even with it
_WHY = "a deploy must not be a way to become root on every node; the operator allows it with `corral manager --allow-privileged`"
_NETWORK_HOST = (  # the whole reason: docs/security.md, "Deploy policy"
    "network_mode: host is not supported, even with --allow-privileged: a task lives on its stack's networks "
    "(service names, VIPs, routed published ports); publish the ports instead"
)


def check_privileges(section: Mapping[str, object], path: str, allowed: bool = False) -> None:
    """Refuse every key of a service's `section` that the deploy policy does not allow (all in one error).

    `allowed`: the manager was started with --allow-privileged (or the policy is not known here, the CLI):
    only what corral could not honour at all is refused.
    """
    problems = Problems()
    _check_always(section, path, problems)
    if not allowed:
        _check_allowable(section, path, problems)
    problems.raise_if_any()


def _check_always(section: Mapping[str, object], path: str, problems: Problems) -> None:
    for key in (*HOST_NAMESPACES, *_NEVER_HOST):
        value = section.get(key)
        if not isinstance(value, str):
            continue
        if value.startswith(("container:", "service:")):
            problems.add(
                child(path, key),
                f"{key}: {value[:40]} shares the namespace of another container, which may run on another node: "
                "each task keeps its own",
            )
        elif value == "host" and key == "network_mode":
            problems.add(child(path, key), _NETWORK_HOST)
        elif value == "host" and key in _NEVER_HOST:
            problems.add(child(path, key), f"{key}: host is not supported, even with --allow-privileged")


def _check_allowable(section: Mapping[str, object], path: str, problems: Problems) -> None:
    if section.get("privileged") not in (None, False):
        problems.add(child(path, "privileged"), f"privileged containers are not allowed: {_WHY}")
    for key in HOST_NAMESPACES:
        if section.get(key) == "host":
            problems.add(child(path, key), f"{key}: host shares the node's namespace with the container: {_WHY}")
    if section.get("devices"):
        problems.add(child(path, "devices"), f"host devices are not allowed: {_WHY}")
    added = section.get("cap_add")
    if isinstance(added, list):
        for index, capability in enumerate(added):
            name = str(capability).upper().removeprefix("CAP_")
            if name in DANGEROUS_CAPABILITIES:
                problems.add(item(child(path, "cap_add"), index), f"capability {name[:32]} is not allowed: {_WHY}")
    options = section.get("security_opt")
    if isinstance(options, list):
        for index, option in enumerate(options):
            text = str(option).replace("=", ":")
            if text.endswith(":unconfined") or text in ("label:disable", "no-new-privileges:false"):
                problems.add(item(child(path, "security_opt"), index), f"{text[:40]} lifts the container's confinement: {_WHY}")
