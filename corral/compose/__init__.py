"""Compose files in, corral service specs out.

    result = parse_compose(text, stack="shop")
    result.services   # list[ServiceSpec], named "shop_<service>"
    result.warnings   # what was ignored, for the user to read

Every problem with the input is an InvalidSpec naming the dotted path of the
bad field (`services.web.deploy.replicas`, `services.web.ports[1]`).
Pure functions only: no file or network I/O.
"""

from corral.compose.parse import ComposeResult, parse_compose

__all__ = ["ComposeResult", "parse_compose"]
