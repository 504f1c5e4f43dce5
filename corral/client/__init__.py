"""The clients of the manager's API: ManagerClient (httpx, async: agents and most CLI commands) and PlainClient
(standard library, blocking: the CLI's one-off listings), which share ApiError and the token header (calls.py).

Each is imported on first use (corral/lazy_exports.py), so a CLI command that needs only ApiError or PlainClient
starts without httpx.
"""

from typing import TYPE_CHECKING

from corral.client.calls import ApiError
from corral.lazy_exports import exports

if TYPE_CHECKING:
    from corral.client.http import ManagerClient
    from corral.client.plain import PlainClient

__getattr__ = exports(__name__, {"http": ["ManagerClient"], "plain": ["PlainClient"]})

__all__ = ["ApiError", "ManagerClient", "PlainClient"]
