"""Request-scoped access to the manager context, and the checks of who may call the agent routes.

Joining (`POST /v1/agent/register`) needs the join token; every other
/v1/agent route is made with `agent_router()`, whose one dependency checks
the node credential (corral/manager/credentials.py).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corral.manager import credentials, node_identity
from corral.manager.cluster import check_token, current_token
from corral.manager.context import ManagerContext
from corral.manager.peer_certs import client_certificate
from corral.model.errors import NotFound
from corral.model.managers import LEADER_HEADER

bearer = HTTPBearer(auto_error=False, description="the join token (to register) or the node's credential (every other agent call)")


def context_of(request: Request) -> ManagerContext:
    ctx: ManagerContext = request.app.state.context  # Starlette's State is untyped: create_app put it there
    return ctx


async def context(request: Request) -> ManagerContext:
    """The manager context, as a dependency. `async` although it does not wait: FastAPI runs a plain `def`
    dependency in its thread pool, and the hop there and back put every request twice more in the event
    loop's queue behind the agents' work during a large deploy (docs/performance.md, round two: the loop)."""
    return context_of(request)


def _secret(found: HTTPAuthorizationCredentials | None) -> str | None:
    return found.credentials.strip() if found else None


def require_token(request: Request, found: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """The join token, to join: the one in the data dir now (`corral join-token --rotate` replaces it)."""
    ctx = context_of(request)
    check_token(current_token(ctx.settings.data_dir, ctx.join_token), _secret(found))


def peer_node(request: Request) -> str | None:
    """The node whose certificate this TLS connection presented (refused unless it is one of the node's current
    certificates); None over plain HTTP (`--insecure`, loopback only)."""
    return node_identity.check_peer(context_of(request), client_certificate(request.scope), request.url.scheme == "https")


@dataclass(frozen=True)
class NodeCredential:
    """The credential a call presented; a call about many nodes checks them with `check_nodes`."""

    secret: str | None

    def check_nodes(self, ctx: ManagerContext, names: Iterable[str]) -> None:
        nodes = ctx.cache.nodes
        credentials.check_each([nodes[name].obj for name in names if name in nodes], self.secret)


def _node_digests(request: Request) -> set[str]:
    """The digests of every registered node's credential, remade when a node changed (not at every revision:
    during a deploy the revision moves at every task write, and 5,000 nodes were scanned per agent call)."""
    cache, state = context_of(request).cache, request.app.state
    kept = getattr(state, "node_digests", None)
    if kept is None or kept[0] != (cache.loads, cache.nodes_written):
        kept = state.node_digests = ((cache.loads, cache.nodes_written), {v.obj.credential for v in cache.nodes.values() if v.obj.credential})
    digests: set[str] = kept[1]
    return digests


async def require_node_credential(request: Request, found: HTTPAuthorizationCredentials | None = Depends(bearer)) -> NodeCredential:
    """A call about one node (`{node}` in the path): 404 at once for an unknown node, 401 unless the
    credential is the node's. A call about many nodes: 401 unless the credential is a registered node's.
    Over TLS, first: the client certificate of a registered node, not revoked (`peer_node`)."""
    peer_node(request)
    secret = _secret(found)
    name = request.path_params.get("node")
    if name is not None:
        node = context_of(request).cache.nodes.get(name)
        if node is None:
            raise NotFound(f"node {name!r} is not registered: its agent must register (again)")
        credentials.check(node.obj, secret)
    else:  # a call about many nodes: the credential must be some registered node's (the body says which)
        credentials.check_known(_node_digests(request), secret)
    return NodeCredential(secret)


async def require_leader(ctx: ManagerContext = Depends(context)) -> None:
    """Agents talk to the leader (it holds the node leases and acts on them): a follower sends them there."""
    leadership = ctx.leadership
    if leadership is None or leadership.leading:
        return
    leader = await ctx.store.election(ctx.settings.leader_ttl).leader()
    where = f"{leader.get('name')} at {leader.get('url')}" if leader else "none right now: try again shortly"
    raise HTTPException(
        503, f"manager {ctx.settings.name} does not lead the control plane; agents talk to the leader ({where})",
        headers={LEADER_HEADER: str(leader.get("url", ""))} if leader else {"Retry-After": "1"},
    )


def agent_router() -> APIRouter:
    """A router for /v1/agent routes: each checks the node credential before anything else, then that this manager leads."""
    return APIRouter(
        prefix="/v1/agent", tags=["agent"], dependencies=[Depends(require_node_credential), Depends(require_leader)]
    )


def join_router() -> APIRouter:
    return APIRouter(prefix="/v1/agent", tags=["agent"], dependencies=[Depends(require_token), Depends(require_leader)])
