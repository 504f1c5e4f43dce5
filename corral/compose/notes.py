"""What parsing has to say besides errors: ignored options and other warnings, one line each."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.compose.paths import child

_UNKNOWN_HERE = "corral does not support this option here"


@dataclass
class Notes:
    """Collects warnings while a compose file is walked."""

    messages: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.messages.append(message)

    def ignored(self, path: str, why: str) -> None:
        self.messages.append(f"{path} is ignored: {why}")

    def ignore_unknown(self, section: Mapping[str, object], supported: frozenset[str], path: str) -> None:
        """A warning for every key of `section` that is neither supported nor an `x-` extension."""
        for key in section:
            if key not in supported and not key.startswith("x-"):
                self.ignored(child(path, key), _UNKNOWN_HERE)

    def warnings(self) -> list[str]:
        return list(self.messages)
