"""The managers of one control plane: each records itself at start; a listing asks each whether it answers.

A record (`managers/NAME`: name, URL, start time) stays when its manager stops: health is not a record
but a question asked when listing (GET URL/v1/info, trusting the cluster CA, within PROBE_TIMEOUT), so a
dead manager shows as not healthy rather than vanishing. `corral manager ls` and `GET /v1/managers`.
"""

import asyncio
import time

import httpx

from corral.manager import keys
from corral.manager.context import ManagerContext
from corral.model.headers import STALE_HEADER
from corral.model.managers import ManagerInfo
from corral.pki import client_context

PROBE_TIMEOUT = 1.0


async def announce(ctx: ManagerContext) -> None:
    settings = ctx.settings
    record = {"name": settings.name, "url": settings.public_url, "registry": settings.registry_listen, "started_at": time.time()}
    await ctx.store.put(keys.MANAGERS + settings.name, record)


async def listing(ctx: ManagerContext) -> list[ManagerInfo]:
    records, _ = await ctx.store.range(keys.MANAGERS)
    leader = await ctx.store.election(ctx.settings.leader_ttl).leader() or {}
    verify = client_context(ctx.settings.ca_file.read_bytes()) if ctx.settings.ca_file.exists() else False
    async with httpx.AsyncClient(verify=verify, timeout=PROBE_TIMEOUT) as http:
        errors = await asyncio.gather(*(_probe(http, str(record.value["url"])) for record in records))
    return [
        ManagerInfo(
            name=str(record.value["name"]), url=str(record.value["url"]), healthy=error is None, error=error,
            leader=record.value["name"] == leader.get("name") and record.value["url"] == leader.get("url"),
        )
        for record, error in zip(records, errors)
    ]


async def _probe(http: httpx.AsyncClient, url: str) -> str | None:
    try:
        response = await http.get(url.rstrip("/") + "/v1/agent/ca")  # open to all (every other route needs a token)
    except httpx.HTTPError as err:
        return str(err) or type(err).__name__
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    stale = response.headers.get(STALE_HEADER)
    return None if stale is None else f"its cache may be stale: {stale}"
