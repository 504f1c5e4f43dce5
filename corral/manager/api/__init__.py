"""The HTTP API under /v1 (OpenAPI at /openapi.json): one module per resource."""

from corral.manager.api.app import create_app

__all__ = ["create_app"]
