"""Every problem of a compose file, gathered so that one answer names them all.

A reader that finds something wrong raises InvalidSpec; the walk over a file
catches it with `attempt`, notes it, and goes on with the next key, so a file
with three errors is refused once, with three lines. `raise_if_any` ends the
walk with an InvalidSpecs holding them all (nothing was changed).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from corral.model.errors import InvalidSpec, InvalidSpecs

T = TypeVar("T")


@dataclass
class Problems:
    """The problems found so far, in the order the file has them."""

    found: list[InvalidSpec] = field(default_factory=list)

    def add(self, path: str, reason: str) -> None:
        self.found.append(InvalidSpec(path, reason))

    def note(self, error: InvalidSpec) -> None:
        self.found.extend(error.problems if isinstance(error, InvalidSpecs) else [error])

    def attempt(self, read: Callable[[], T], fallback: T) -> T:
        """What `read` returns, or `fallback` once its InvalidSpec is noted."""
        try:
            return read()
        except InvalidSpec as error:
            self.note(error)
            return fallback

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_if_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise InvalidSpecs(self.found)
