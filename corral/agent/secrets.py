"""Fetching the secrets and configs a task needs, just before its container is created.

The manager answers `GET /v1/agent/{node}/secrets/{name}` (and `/configs/`)
only while a task assigned to this node refers to the value, so an agent
holds nothing it does not run. Values are fetched for each start and kept
only in memory until the engine writes them to its tmpfs; they are never
logged (`TaskFile.data` is left out of its repr).
"""

import base64
import binascii

from corral.agent.engines.base import EngineError, TaskFile
from corral.client import ApiError, ManagerClient
from corral.model import Task


async def task_files(client: ManagerClient, node: str, task: Task) -> list[TaskFile]:
    """The task's secrets then configs, each value fetched once; EngineError when one cannot be had."""
    fetched: dict[tuple[str, str], bytes] = {}
    files: list[TaskFile] = []
    for kind, references in (("secret", task.spec.secrets), ("config", task.spec.configs)):
        for reference in references:
            key = (kind, reference.source)
            if key not in fetched:
                fetched[key] = await _fetch(client, node, kind, reference.source)
            files.append(TaskFile("secret" if kind == "secret" else "config", reference, fetched[key]))
    return files


async def _fetch(client: ManagerClient, node: str, kind: str, name: str) -> bytes:
    try:
        reply = await client.get(f"/v1/agent/{node}/{kind}s/{name}")
    except ApiError as err:
        # 404: removed since; 403: the task is no longer this node's. Either way the start fails
        # and the reconcile loop decides again from fresh tasks.
        raise EngineError(f"cannot fetch {kind} {name!r}: {err}", permanent=err.status == 404) from None
    try:
        return base64.b64decode(reply["data"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise EngineError(f"cannot fetch {kind} {name!r}: the manager's answer is not a value") from None
