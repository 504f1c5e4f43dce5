"""The one HTTP client of the manager's API, used by the CLI and by agents."""

from corral.client.http import ApiError, ManagerClient

__all__ = ["ApiError", "ManagerClient"]
