"""Who may push to and pull from the cluster's registry (HTTP basic auth, corral/registry/access.py).

- A person or a CI job: any user name, an API token as the password. Any
  role pulls; pushing (and deleting) needs `deployer` or `admin`.
- An agent: its node name and its node credential (`corral-node-...`):
  it may pull, never push.
- Another manager's registry: `corral-peer` and the managers' shared peer secret
  (registry_peers.py): it copies pushes here and fetches what it lacks.
"""

import hmac

from corral.manager import credentials
from corral.manager.access import tokens
from corral.manager.access.roles import Forbidden, Role, grants
from corral.manager.context import ManagerContext
from corral.manager.registry_peers import peer_secret
from corral.model.errors import Unauthorized
from corral.registry.access import Authorizer
from corral.registry.replication import PEER_USER


def registry_authorizer(ctx: ManagerContext) -> Authorizer:
    async def authorize(user: str, password: str, writes: bool) -> bool | None:
        if user == PEER_USER:
            if ctx.data_key is None or not hmac.compare_digest(password.encode(), peer_secret(ctx.data_key).encode()):
                raise Unauthorized(f"{PEER_USER!r} is the user of the other managers' registries: wrong peer secret")
            return True
        if password.startswith(credentials.PREFIX):
            found = ctx.cache.nodes.get(user)
            if found is None:
                raise Unauthorized(f"node {user!r} is not registered: a node pulls with its own name and credential")
            credentials.check(found.obj, password)
            if writes:
                raise Forbidden("a node may pull images, not push them: push with an API token of the deployer or admin role")
            return None
        record = await tokens.authenticate(ctx.store, password, ctx.clock(), ctx.cache.tokens)  # no store read per request
        if writes and not grants(record.role, Role.deployer):
            raise Forbidden(f"pushing needs the deployer or admin role; token {record.name!r} has the {record.role.value} role")
        return None

    return authorize
