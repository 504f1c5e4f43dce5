"""A YAML loader that reads compose files as Docker Compose does (YAML 1.2 core).

PyYAML's SafeLoader follows YAML 1.1, where `22:22` is the base-60 number
1342 and `on`/`off`/`yes`/`no` are booleans: a port or an environment value
would silently change. This loader drops those two rules; it is otherwise
SafeLoader (no arbitrary objects).
"""

import re

import yaml


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def load(text: str) -> object:
    return yaml.load(text, Loader=ComposeLoader)  # noqa: S506 - ComposeLoader is a SafeLoader
