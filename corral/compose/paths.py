"""Dotted paths naming a field of a compose file, as InvalidSpec and warnings report them.

`services.web.deploy.replicas` for a key, `services.web.ports[1]` for a list item.
"""


def child(path: str, key: str) -> str:
    """The path of `key` inside the mapping at `path`."""
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    """The path of item `index` of the list at `path`."""
    return f"{path}[{index}]"
