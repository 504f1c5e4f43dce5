"""A package's re-exports, each imported on first use (PEP 562), so importing one small module of the package does not
import all of it.

`corral.model.errors` or `corral.pki.tls` run their package's `__init__` first; when that `__init__` re-exports every
pydantic model or the whole cryptography-backed CA, the CLI pays 100-400 ms for a constant or an SSL context. The
package keeps its names for type checkers under `if TYPE_CHECKING:` and gives `__getattr__ = exports(...)`.
"""

import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def exports(package: str, modules: Mapping[str, Iterable[str]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: each name of `modules[module]` is taken from `package.module` when asked."""
    where = {name: f"{package}.{module}" for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # the next lookup is an ordinary attribute
        return value

    return __getattr__
