"""Readers of raw YAML values.

YAML hands back plain `object`s; each reader here checks one shape (a mapping,
a string, a count, one of a few words...) and returns it typed, or raises
InvalidSpec naming the path and what was expected.
"""

import datetime
import reprlib
import shlex
from collections.abc import Callable, Mapping
from typing import TypeVar

from corral.compose.paths import child, item
from corral.model.errors import InvalidSpec

T = TypeVar("T")
Word = TypeVar("Word", bound=str)


def show(value: object, limit: int = 60) -> str:
    """`value` as quoted in an error message, shortened when long.

    Never the repr of the whole value: a list nested by YAML aliases can stand
    for billions of items, and its repr would take minutes and gigabytes.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a very large number"
    try:
        text = _EXCERPT.repr(value)
    except ValueError:  # a very large integer inside a list
        return "a value too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel, _EXCERPT.maxlist, _EXCERPT.maxdict, _EXCERPT.maxstring, _EXCERPT.maxother = 2, 4, 4, 60, 60


def optional(
    section: Mapping[str, object],
    key: str,
    path: str,
    read: Callable[[object, str], T],
    default: T,
) -> T:
    """`read` the value of `key`, or `default` when it is absent or null."""
    value = section.get(key)
    return default if value is None else read(value, child(path, key))


def read_mapping(value: object, path: str) -> dict[str, object]:
    """A mapping with string keys; null counts as the empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSpec(path, "must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise InvalidSpec(path, f"key {show(key)} must be a string")
    return value


def read_list(value: object, path: str) -> list[object]:
    """A list; null counts as the empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSpec(path, "must be a list")
    return value


def read_string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidSpec(path, "must be a string")
    return value


def read_non_empty_string(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSpec(path, "must be a non-empty string")
    return value


def read_string_list(value: object, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSpec(path, "must be a list of strings")
    return [read_string(entry, item(path, index)) for index, entry in enumerate(value)]


def read_command(value: object, path: str) -> list[str]:
    """A command line: a string split as a shell would, or a list of strings."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as error:
            raise InvalidSpec(path, f"cannot split {show(value)}: {error}") from None
    if isinstance(value, list):
        return read_string_list(value, path)
    raise InvalidSpec(path, "must be a string or a list of strings")


def read_count(value: object, path: str, minimum: int = 0) -> int:
    """A whole number >= minimum (0 or 1); booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "non-negative" if minimum == 0 else "positive"
        raise InvalidSpec(path, f"must be a {expected} integer")
    return value


def read_positive_count(value: object, path: str) -> int:
    return read_count(value, path, minimum=1)


def read_scalar_text(value: object, path: str) -> str:
    """A scalar as the text a container sees: null is "", booleans are true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float, datetime.date)):
        try:
            return str(value)
        except ValueError:  # an integer with more digits than Python will print
            raise InvalidSpec(path, "number is too large") from None
    raise InvalidSpec(path, "must be a string, number, boolean or null")


def read_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidSpec(path, "must be true or false")
    return value


def read_choice(value: object, path: str, choices: tuple[Word, ...], what: str) -> Word:
    """One of a few words, e.g. read_choice(v, p, ("tcp", "udp"), "protocol")."""
    expected = ", ".join(choices[:-1]) + " or " + choices[-1]
    if not isinstance(value, str):
        raise InvalidSpec(path, f"must be {expected}")
    for choice in choices:
        if value == choice:
            return choice
    raise InvalidSpec(path, f"unknown {what} {show(value)}: expected {expected}")


def read_ratio(value: object, path: str) -> float:
    """A number from 0 to 1 (a fraction, e.g. max_failure_ratio)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidSpec(path, "must be a number from 0 to 1")
    return float(value)
