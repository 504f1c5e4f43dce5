"""Whatever YAML says, parse_compose answers with specs or an InvalidSpec, never another exception."""

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.compose import parse_compose
from corral.model.errors import InvalidSpec

KNOWN_WORDS = [
    # keys corral reads, at every level
    "image", "command", "entrypoint", "environment", "labels", "ports", "stop_grace_period", "deploy",
    "mode", "replicas", "resources", "limits", "reservations", "cpus", "memory", "placement",
    "constraints", "max_replicas_per_node", "restart_policy", "condition", "delay", "max_attempts",
    "window", "target", "published", "protocol", "host_ip",
    # keys it ignores or skips
    "volumes", "x-extra", "preferences",
]  # fmt: skip
KNOWN_VALUES = [
    "nginx", "10s", "1m30s", "-1s", "512m", "1g", "0.5", "8080", "8080:80", "127.0.0.1:80:80", "80/udp",
    "80/sctp", "8000-8001:8000-8001", "global", "replicated", "tcp", "udp", "host", "ingress", "on-failure",
    "node.role == manager", "zone = east", "A=1", "B", "=", "echo 'unbalanced", "",
]  # fmt: skip

keys = st.sampled_from(KNOWN_WORDS) | st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-2, max_value=70000)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(KNOWN_VALUES)
)
yaml_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(keys | st.integers(), children, max_size=5),
    max_leaves=30,
)
# A service that gets past `image`, with any of the known sections holding anything.
services = st.fixed_dictionaries(
    {"image": st.just("nginx")},
    optional={key: yaml_values for key in KNOWN_WORDS[1:8]},
)
deploys = st.fixed_dictionaries(
    {}, optional={key: yaml_values for key in ["mode", "replicas", "resources", "placement", "restart_policy", "labels"]}
)


def parses_or_rejects(document: object) -> None:
    text = yaml.safe_dump(document, sort_keys=False)
    try:
        result = parse_compose(text, "app")
    except InvalidSpec:
        return
    assert all(spec.name.startswith("app_") for spec in result.services)


@settings(max_examples=300)
@given(yaml_values)
def test_anything_under_services_web(body: object) -> None:
    parses_or_rejects({"services": {"web": body}})


@settings(max_examples=300)
@given(services)
def test_anything_in_known_service_keys(service: dict[str, object]) -> None:
    parses_or_rejects({"services": {"web": service}})


@settings(max_examples=300)
@given(deploys)
def test_anything_in_known_deploy_keys(deploy: dict[str, object]) -> None:
    parses_or_rejects({"services": {"web": {"image": "nginx", "deploy": deploy}}})


@given(yaml_values)
def test_anything_as_the_whole_document(document: object) -> None:
    parses_or_rejects(document)


@given(st.text())
def test_any_text(text: str) -> None:
    try:
        parse_compose(text, "app")
    except InvalidSpec:
        pass
