"""The OCI Distribution registry: content-addressed storage, its /v2/ HTTP API, garbage collection.

It imports nothing of corral's but the model; the manager serves it next to
its own API and runs its garbage collection.
"""

from corral.registry.api import create_registry_app
from corral.registry.gc import GcReport, collect_garbage, repository_reference
from corral.registry.storage import RegistryStorage

__all__ = ["GcReport", "RegistryStorage", "collect_garbage", "create_registry_app", "repository_reference"]
