import pkgutil
from importlib import import_module

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st

import corral.manager.api
from corral.manager.access.roles import ANY, TOKEN_ROLES, Forbidden, Role, grants, require, required_role


def _api_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the manager's API modules declare, found without building the app."""
    routes: set[tuple[str, str]] = set()
    for module in pkgutil.iter_modules(corral.manager.api.__path__):
        for value in vars(import_module(f"corral.manager.api.{module.name}")).values():
            if isinstance(value, APIRouter):
                for route in value.routes:
                    if isinstance(route, APIRoute):
                        routes |= {(method, route.path) for method in route.methods}
    return sorted(routes)


ROUTES = _api_routes()


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/v1/services", Role.viewer),
        ("HEAD", "/v1/services/{name}", Role.viewer),
        ("GET", "/v1/events", Role.viewer),
        ("GET", "/v1/secrets/{name}", Role.viewer),  # metadata only: no route gives a token a secret's value
        ("POST", "/v1/stacks/{stack}/deploy", Role.deployer),
        ("DELETE", "/v1/services/{name}", Role.deployer),
        ("POST", "/v1/secrets", Role.deployer),
        ("DELETE", "/v1/images/{reference}", Role.deployer),
        ("PUT", "/v2/{name}/manifests/{reference}", Role.deployer),
        ("GET", "/v2/{name}/blobs/{digest}", Role.viewer),
        ("PATCH", "/v1/nodes/{name}", Role.admin),
        ("GET", "/v1/nodes/{name}", Role.viewer),
        ("GET", "/v1/join-token", Role.admin),
        ("GET", "/v1/tokens", Role.admin),
        ("POST", "/v1/tokens", Role.admin),
        ("POST", "/v1/agent/heartbeats", Role.node),
        ("GET", "/v1/agent/{node}/mesh", Role.node),
        ("POST", "/v1/something-new", Role.admin),  # unlisted writes are closed
        ("post", "/v1/stacks/{stack}/deploy", Role.deployer),
    ],
)
def test_the_policy_table(method: str, path: str, role: Role) -> None:
    assert required_role(method, path) == role


def test_prefixes_match_whole_segments() -> None:
    assert required_role("POST", "/v1/nodesx") == Role.admin  # unlisted, not "/v1/nodes"
    assert required_role("POST", "/v1/agentless") == Role.admin
    assert required_role("GET", "/v1/agentless") == Role.viewer


def test_a_node_identity_grants_only_the_agent_routes_and_tokens_never_reach_them() -> None:
    assert grants(Role.node, Role.node)
    for role in TOKEN_ROLES:
        assert not grants(role, Role.node)
        assert not grants(Role.node, role)


def test_every_route_of_the_api_gets_a_role_and_reads_are_open_to_viewers() -> None:
    assert ROUTES, "no routes found"
    for method, path in ROUTES:
        role = required_role(method, path)
        if path.startswith("/v1/agent/"):
            assert role == Role.node, (method, path)
        elif method in ("GET", "HEAD") and not path.startswith(("/v1/join-token", "/v1/tokens")):
            assert role == Role.viewer, (method, path)
        elif path.startswith("/v1/ui/"):  # the web UI's sign-in: a code for the caller's own role, changing nothing
            assert role == Role.viewer, (method, path)
        else:
            assert role in (Role.deployer, Role.admin), (method, path)


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: " ".join(route))
def test_what_a_role_may_do_contains_what_a_weaker_role_may_do(route: tuple[str, str]) -> None:
    needed = required_role(*route)
    allowed = [grants(role, needed) for role in TOKEN_ROLES]  # viewer, deployer, admin
    assert allowed == sorted(allowed), f"{route}: {allowed}"


@given(
    method=st.sampled_from(sorted(ANY | {"OPTIONS", "TRACE"})),
    path=st.lists(st.sampled_from(["v1", "v2", "agent", "nodes", "tokens", "secrets", "{name}", "x"]), max_size=4).map(
        lambda parts: "/" + "/".join(parts)
    ),
)
def test_role_sets_are_nested_for_any_request(method: str, path: str) -> None:
    needed = required_role(method, path)
    admin, deployer, viewer = (grants(role, needed) for role in (Role.admin, Role.deployer, Role.viewer))
    assert (viewer <= deployer) and (deployer <= admin)
    if method not in ("GET", "HEAD"):
        assert not viewer


def test_require_names_the_role_needed() -> None:
    require(Role.admin, "PATCH", "/v1/nodes/{name}")
    with pytest.raises(Forbidden, match="needs the admin role; this token has deployer") as refused:
        require(Role.deployer, "PATCH", "/v1/nodes/{name}")
    assert refused.value.status == 403
    with pytest.raises(Forbidden, match="for agents"):
        require(Role.admin, "POST", "/v1/agent/heartbeats")
