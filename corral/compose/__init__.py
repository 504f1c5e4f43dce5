"""Compose files in, corral service specs out.

    result = parse_compose(text, stack="shop")
    result.services   # list[ServiceSpec], named "shop_<service>"
    result.warnings   # what was ignored, for the user to read
    result.secrets, result.configs   # top-level definitions; services refer to them
    values = read_values(result.definitions(), compose_dir, os.environ)   # the CLI only

Every problem with the input is an InvalidSpec naming the dotted path of the
bad field (`services.web.deploy.replicas`, `services.web.ports[1]`).
Parsing is pure: no file or network I/O. Only `read_values` (sources.py)
reads files and the environment, on the deploying machine.
"""

from typing import TYPE_CHECKING

from corral.lazy_exports import exports

if TYPE_CHECKING:
    from corral.compose.parse import ComposeResult, parse_compose
    from corral.compose.secrets import Definition
    from corral.compose.sources import SourceValues, read_values

# imported when first used: `corral service logs` needs durations.py, not the parser (YAML, every model)
__getattr__ = exports(__name__, {"parse": ["ComposeResult", "parse_compose"], "secrets": ["Definition"], "sources": ["SourceValues", "read_values"]})

__all__ = ["ComposeResult", "Definition", "SourceValues", "parse_compose", "read_values"]
