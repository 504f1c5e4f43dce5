"""What parsing has to say besides errors: ignored options and other warnings."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.compose.paths import child


@dataclass
class Notes:
    """Collects warnings while a compose file is walked."""

    unsupported: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.messages.append(message)

    def ignore_unknown(self, section: Mapping[str, object], supported: frozenset[str], path: str) -> None:
        """Remember every key of `section` that is neither supported nor an `x-` extension."""
        for key in section:
            if key not in supported and not key.startswith("x-"):
                self.unsupported.append(child(path, key))

    def warnings(self) -> list[str]:
        """The warnings, unsupported options folded into one message."""
        if not self.unsupported:
            return list(self.messages)
        ignored = ", ".join(sorted(self.unsupported))
        return [*self.messages, f"Ignoring unsupported options: {ignored}"]
