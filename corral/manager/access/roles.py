"""Roles and the one table that says which role each route needs.

A token has one role. `admin` may do everything a token may; `deployer` may
change stacks, services, images, secrets and configs, but not nodes, tokens
or the join token; `viewer` may only read, and no route returns a secret's
value to any token (values go only to nodes, over the agents' routes).
`node` is not a token role: it is a node's identity (its certificate, or its
node credential), the only way into /v1/agent routes, and it grants nothing
else.

The table is read top to bottom, first match wins; a write to a route no
rule names needs `admin` (a route added later is closed, not open).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from corral.model.errors import CorralError


class Forbidden(CorralError):
    """The caller is known, but its role does not allow the action. Nothing was changed."""

    status = 403


class Role(str, Enum):
    viewer = "viewer"
    deployer = "deployer"
    admin = "admin"
    node = "node"


TOKEN_ROLES = (Role.viewer, Role.deployer, Role.admin)  # in order of power: each grants what the ones before grant
_RANK = {role: rank for rank, role in enumerate(TOKEN_ROLES)}

READ = frozenset({"GET", "HEAD"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANY = READ | WRITE
SESSION = frozenset({"WEBSOCKET"})  # a WebSocket route (api/auth.py authorize_session): a session, never a mere read


@dataclass(frozen=True)
class Rule:
    methods: frozenset[str]
    prefix: str  # a path template prefix, whole segments: "/v1/nodes" covers "/v1/nodes/{name}"
    role: Role

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and _under(path, self.prefix)


POLICY: tuple[Rule, ...] = (
    # the agents' routes: node identity only, no user token of any role
    Rule(ANY, "/v1/agent", Role.node),
    # what lets a machine join, and who may use the API: administration only, reading included
    Rule(ANY, "/v1/join-token", Role.admin),
    Rule(ANY, "/v1/tokens", Role.admin),
    Rule(WRITE, "/v1/nodes", Role.admin),
    Rule(WRITE, "/v1/cluster", Role.admin),  # cluster-wide policy (e.g. allow-privileged)
    Rule(SESSION, "/", Role.admin),  # interactive sessions (`corral exec -it`): a shell in a container
    # the application: deployers
    Rule(WRITE, "/v1/stacks", Role.deployer),
    Rule(WRITE, "/v1/services", Role.deployer),
    Rule(WRITE, "/v1/images", Role.deployer),
    Rule(WRITE, "/v1/registry", Role.deployer),
    Rule(WRITE, "/v1/secrets", Role.deployer),
    Rule(WRITE, "/v1/configs", Role.deployer),
    Rule(WRITE, "/v1/volumes", Role.deployer),
    Rule(WRITE, "/v2", Role.deployer),  # registry pushes and deletes
    Rule(WRITE, "/v1/ui", Role.viewer),  # a login code for the web UI, with the caller's own role
    # reading anything else (listings, metadata, events, pulls): every role
    Rule(READ, "/", Role.viewer),
)
UNLISTED = Role.admin
# Routes whose request carries its own one-time credential instead of a token: the web UI trading its login code
# (access/login_codes.py) for a token. The check of every other route (api/auth.py) lets these through.
CODE_ONLY: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/ui/session")})


def required_role(method: str, path_template: str, policy: Iterable[Rule] = POLICY) -> Role:
    """The role a request needs: `path_template` is the route's path as declared (`/v1/nodes/{name}`)."""
    method = method.upper()
    for rule in policy:
        if rule.matches(method, path_template):
            return rule.role
    return UNLISTED


def grants(held: Role, needed: Role) -> bool:
    """Whether a caller holding `held` may do what needs `needed`."""
    if Role.node in (held, needed):
        return held == needed
    return _RANK[held] >= _RANK[needed]


def require(held: Role, method: str, path_template: str) -> None:
    """Raise Forbidden, naming the role needed, unless `held` may call `method path_template`."""
    needed = required_role(method, path_template)
    if not grants(held, needed):
        if needed == Role.node:
            raise Forbidden(f"{method.upper()} {path_template} is for agents (a node certificate), not for API tokens")
        raise Forbidden(f"{method.upper()} {path_template} needs the {needed.value} role; this token has {held.value}")


def _under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return path.startswith("/")
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")
