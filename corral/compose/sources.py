"""Reading the values of compose secrets and configs, on the deploying machine (the CLI's side).

`file:` paths are relative to the compose file's directory and
`environment:` names a variable of the deploying shell: only the CLI can
read them, so it does, and sends the values with the deploy request
(base64, `DeployRequest.secrets`/`configs`). Inline `content:` and external
values need nothing here. This is the one module of corral.compose that
reads files; parsing stays pure.
"""

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral.compose.paths import child
from corral.compose.secrets import Definition
from corral.model.errors import InvalidSpec

MAX_VALUE_BYTES = 500 * 1024  # the manager refuses larger values; say so before sending them


@dataclass(frozen=True)
class SourceValues:
    """The values read, keyed by the name each is stored under in the cluster."""

    secrets: dict[str, bytes] = field(default_factory=dict)
    configs: dict[str, bytes] = field(default_factory=dict)

    def encoded(self) -> tuple[dict[str, str], dict[str, str]]:
        """(secrets, configs) as the deploy request carries them: base64 text."""
        return _base64(self.secrets), _base64(self.configs)


def read_values(definitions: Iterable[Definition], compose_dir: Path, environ: Mapping[str, str]) -> SourceValues:
    """Read every `file:` and `environment:` value; InvalidSpec naming the entry when one cannot be read."""
    values = SourceValues()
    for definition in definitions:
        value = _read(definition, compose_dir, environ)
        if value is None:
            continue
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidSpec(definition.path, f"the value has {len(value)} bytes; at most {MAX_VALUE_BYTES} are allowed")
        (values.secrets if definition.kind == "secret" else values.configs)[definition.name] = value
    return values


def _read(definition: Definition, compose_dir: Path, environ: Mapping[str, str]) -> bytes | None:
    if definition.file is not None:
        path = compose_dir / definition.file
        try:
            return path.read_bytes()
        except OSError as error:
            raise InvalidSpec(child(definition.path, "file"), f"cannot read {path}: {error.strerror or error}") from None
    if definition.environment is not None:
        if definition.environment not in environ:
            raise InvalidSpec(
                child(definition.path, "environment"), f"the variable {definition.environment} is not set in this shell"
            )
        return environ[definition.environment].encode()
    return None


def _base64(values: dict[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(value).decode() for name, value in values.items()}
