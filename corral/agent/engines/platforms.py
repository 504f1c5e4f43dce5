"""Whether an image platform a service asks for (`platform: linux/arm64`) can run on this node's engine.

The engine names its architecture as the kernel does (`x86_64`, `aarch64`);
images and compose use Go's names (`amd64`, `arm64`). A mismatch rejects
the task at once (retrying on the same node cannot help).
"""

from corral.agent.engines.base import EngineError

_ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386"}


def normalise(platform: str) -> str:
    """`linux/x86_64` -> `linux/amd64`; the variant (`/v8`) is dropped, as the engine does not report one."""
    parts = platform.lower().split("/")
    os_name, arch = parts[0], parts[1] if len(parts) > 1 else ""
    return f"{os_name}/{_ARCH_NAMES.get(arch, arch)}"


def check_platform(wanted: str, engine: str) -> None:
    """Raise a permanent EngineError when the service's `wanted` platform is not the engine's."""
    if normalise(wanted) != normalise(engine):
        raise EngineError(f"platform {wanted} cannot run on this node ({normalise(engine)})", permanent=True)
