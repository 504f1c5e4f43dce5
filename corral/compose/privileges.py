"""The deploy policy: what a compose file may not ask of the nodes.

A deploy runs containers on every node, so a key that would give a
container the node itself (`privileged`, the host's namespaces, its
devices, capabilities that reach past the container) is refused with the
path and the reason, never dropped with a warning: a service that needs it
would otherwise run without it and behave differently. corral runs no
privileged container; there is no option to allow one yet, and nothing a
token can do changes that (docs/security.md).
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
_HOST_NAMESPACES = ("pid", "ipc", "network_mode", "userns_mode", "uts", "cgroup")
_WHY = "a deploy must not be a way to become root on every node"


def check_privileges(section: Mapping[str, object], path: str) -> None:
    """Refuse every key of a service's `section` that the deploy policy does not allow (all in one error)."""
    problems = Problems()
    _check(section, path, problems)
    problems.raise_if_any()


def _check(section: Mapping[str, object], path: str, problems: Problems) -> None:
    if section.get("privileged") not in (None, False):
        problems.add(child(path, "privileged"), f"privileged containers are not allowed: {_WHY}")
    for key in _HOST_NAMESPACES:
        value = section.get(key)
        if isinstance(value, str) and (value == "host" or value.startswith(("container:", "service:"))):
            problems.add(child(path, key), f"{key}: {value[:40]} shares a namespace outside the task's own container: {_WHY}")
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
