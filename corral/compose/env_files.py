"""Environment files (`.env`, `--env-file`, a service's `env_file:`), read as Docker Compose reads them.

    # a comment
    export NAME=value          `export ` is allowed and dropped
    PLAIN=  some text  # note  unquoted: trimmed, ` #` starts a comment, interpolated
    DOUBLE="a\\nb ${OTHER}"     escapes \\n \\t \\r \\\\ \\" \\$, interpolated, may span lines
    SINGLE='${kept}'           literal, may span lines
    INHERITED                  no `=`: the value of INHERITED in `variables`, or left out

Variables used in a value come from the lines above it in the same file,
then from `variables` (the deploying process's environment and `.env`). A
file in `format: raw` takes every value literally. Pure: text in, mapping out.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from corral.compose.interpolate import Interpolation, TemplateError, interpolate

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$$"}


class EnvFileError(ValueError):
    """A line that is not a variable assignment, with its line number."""


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str | None  # None: no `=`, inherit from the environment


def parse_env_file(text: str, variables: Mapping[str, str], raw: bool = False, found: Interpolation | None = None) -> dict[str, str]:
    """The variables `text` sets, interpolated (unless `raw`); EnvFileError names the line at fault."""
    found = found if found is not None else Interpolation()
    result: dict[str, str] = {}
    for line, entry, quote in _entries(text, raw):
        if entry.value is None:
            inherited = variables.get(entry.key)
            if inherited is not None:
                result[entry.key] = inherited
            continue
        if raw or quote == "'":
            result[entry.key] = entry.value
            continue
        try:
            result[entry.key] = interpolate(entry.value, _Layered(result, variables), found)
        except TemplateError as error:
            raise EnvFileError(f"line {line}: {error}") from None
    return result


class _Layered(Mapping[str, str]):
    """The file's own variables first, then the outer ones."""

    def __init__(self, inner: Mapping[str, str], outer: Mapping[str, str]) -> None:
        self.inner, self.outer = inner, outer

    def __getitem__(self, key: str) -> str:
        return self.inner[key] if key in self.inner else self.outer[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter({**self.outer, **self.inner})

    def __len__(self) -> int:
        return len({**self.outer, **self.inner})


def _entries(text: str, raw: bool) -> list[tuple[int, EnvEntry, str]]:
    """(line number, entry, the quote its value had or "") for each assignment of `text`."""
    entries = []
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        number = index + 1
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export ") and not raw:
            stripped = stripped[len("export ") :].lstrip()
        key, equals, rest = stripped.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise EnvFileError(f"line {number}: {key[:40]!r} is not a variable name (expected NAME=VALUE)")
        if not equals:
            entries.append((number, EnvEntry(key, None), ""))
            continue
        if raw:
            entries.append((number, EnvEntry(key, rest), ""))
            continue
        rest = rest.lstrip()
        quote = rest[:1] if rest[:1] in ("'", '"') else ""
        if not quote:
            value = re.split(r"\s#", rest, maxsplit=1)[0].strip()
            entries.append((number, EnvEntry(key, value), ""))
            continue
        body = rest[1:]
        while _closing_quote(body, quote) < 0:
            if index >= len(lines):
                raise EnvFileError(f"line {number}: the {quote} quote of {key} is never closed")
            body += "\n" + lines[index]
            index += 1
        end = _closing_quote(body, quote)
        value = body[:end]
        entries.append((number, EnvEntry(key, _unescape(value) if quote == '"' else value), quote))
    return entries


def _closing_quote(body: str, quote: str) -> int:
    index = 0
    while index < len(body):
        if quote == '"' and body[index] == "\\":
            index += 2
            continue
        if body[index] == quote:
            return index
        index += 1
    return -1


def _unescape(value: str) -> str:
    """A double-quoted value's escapes undone; `\\$` stays a literal `$` through interpolation (as `$$`)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value, flags=re.DOTALL)
