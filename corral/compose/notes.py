"""What parsing has to say besides errors: ignored options and other warnings, one line each."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.compose.keys import NESTED
from corral.compose.paths import child
from corral.model.errors import InvalidSpec

_UNKNOWN_HERE = "corral does not support this option here"


@dataclass
class Notes:
    """Collects warnings while a compose file is walked."""

    messages: list[str] = field(default_factory=list)
    refused: list[InvalidSpec] = field(default_factory=list)  # keys of keys.NESTED that refuse, for the parser to report

    def warn(self, message: str) -> None:
        self.messages.append(message)

    def ignored(self, path: str, why: str) -> None:
        self.messages.append(f"{path} is ignored: {why}")

    def ignore_unknown(self, section: Mapping[str, object], supported: frozenset[str], path: str) -> None:
        """A warning for every key of `section` that is neither supported nor an `x-` extension
        (an error for those keys.NESTED refuses), with keys.NESTED's reason when it has one."""
        shape = re.sub(r"\[\d+\]", "[]", re.sub(r"^services\.[^.]+\.?", "", path))
        for key in section:
            if key in supported or key.startswith("x-"):
                continue
            rule = NESTED.get(f"{shape}.{key}" if shape else key)
            if rule is None:
                self.ignored(child(path, key), _UNKNOWN_HERE)
            elif rule.verdict == "ignored":
                self.ignored(child(path, key), rule.why)
            elif rule.verdict == "refused" and section[key] not in (None, [], {}, ""):  # empty asks for nothing
                self.refused.append(InvalidSpec(child(path, key), f"not supported: {rule.why}"))

    def warnings(self) -> list[str]:
        return list(self.messages)
