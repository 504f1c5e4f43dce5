"""Variable interpolation in compose files, as the Compose Specification defines it.

    $VAR  ${VAR}          the value; unset -> "" and a warning naming VAR
    ${VAR:-default}       default when VAR is unset or empty   (${VAR-default}: only when unset)
    ${VAR:?message}       refuse when VAR is unset or empty    (${VAR?message}: only when unset)
    ${VAR:+alternative}   alternative when VAR is set and non-empty, else ""  (${VAR+alt}: when set)
    $$                    a literal $

Defaults, messages and alternatives are interpolated themselves
(`${A:-${B:-x}}`), and only when used. A `$` that starts no variable (`$1`,
`$ `, a trailing `$`) is kept as it is, as compose keeps it; `${...}` that is
not one of the forms above (`${A/x/y}`, `${}`, an unclosed `${`) is refused.

Interpolation works on the values of the parsed YAML, never on its keys nor
on the raw text: a value that expands to YAML syntax stays a string and
cannot add structure to the file. A few values are numbers or booleans in
the model (`deploy.replicas: ${REPLICAS}`); once interpolated, those are
turned back into numbers, as compose does (CASTS). Pure: the variables come
in as a mapping; nothing here reads the environment.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corral.compose.paths import child, item
from corral.compose.problems import Problems
from corral.compose.yaml_loader import Override

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class TemplateError(ValueError):
    """A `${...}` that is not a compose interpolation, or a required variable that is missing."""


@dataclass
class Interpolation:
    """What interpolating a file found besides its values: the unset variables it used, in order."""

    missing: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        seen = dict.fromkeys(self.missing)
        return [f'the variable {name} is not set; an empty string is used in its place' for name in seen]


def interpolate(text: str, variables: Mapping[str, str], found: Interpolation | None = None) -> str:
    """`text` with its variables replaced; TemplateError when a form is wrong or a required variable is missing."""
    found = found if found is not None else Interpolation()
    out: list[str] = []
    index = 0
    while True:
        dollar = text.find("$", index)
        if dollar < 0:
            out.append(text[index:])
            return "".join(out)
        out.append(text[index:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$")
            index = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            out.append(_braced(text[dollar + 2 : end], variables, found))
            index = end + 1
        elif (name := _NAME.match(text, dollar + 1)) is not None:
            out.append(_value(name.group(), variables, found))
            index = name.end()
        else:  # `$1`, `$-`, a trailing `$`: not a variable, kept
            out.append("$")
            index = dollar + 1


def _closing_brace(text: str, start: int) -> int:
    """The index of the `}` closing the `${` whose body starts at `start`, nested `${...}` skipped."""
    depth = 1
    index = start
    while index < len(text):
        if text.startswith("$$", index):
            index += 2
            continue
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise TemplateError(f"${{ without its closing }} in {_quote(text[start - 2 :])}")


def _braced(body: str, variables: Mapping[str, str], found: Interpolation) -> str:
    name = _NAME.match(body)
    if name is None:
        raise TemplateError(f"${{{_shorten(body)}}} does not start with a variable name; write $$ for a literal $")
    var, rest = name.group(), body[name.end() :]
    if not rest:
        return _value(var, variables, found)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise TemplateError(
            f"${{{_shorten(body)}}} is not a compose interpolation: after {var} comes :-, -, :?, ?, :+ or + (write $$ for a literal $)"
        )
    argument = rest[len(operator) :]
    value = variables.get(var)
    present = value is not None and (value != "" or not operator.startswith(":"))
    if operator.endswith("-"):
        return value if present and value is not None else interpolate(argument, variables, found)
    if operator.endswith("+"):
        return interpolate(argument, variables, found) if present else ""
    if present and value is not None:
        return value
    message = interpolate(argument, variables, found)
    state = "empty" if value == "" else "not set"
    raise TemplateError(f"required variable {var} is {state}" + (f": {message}" if message else ""))


def _value(name: str, variables: Mapping[str, str], found: Interpolation) -> str:
    value = variables.get(name)
    if value is None:
        found.missing.append(name)
        return ""
    return value


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str) -> str:
    return repr(_shorten(text))


# --- whole files ---

# Paths whose values the model holds as numbers or booleans ("*" is any key or list index), as compose casts them.
CASTS: dict[tuple[str, ...], Callable[[str], object]] = {}


def _to_bool(text: str) -> object:
    lowered = text.lower()
    return {"true": True, "yes": True, "y": True, "on": True, "false": False, "no": False, "n": False, "off": False}.get(lowered, text)


def _to_int(text: str) -> object:
    try:
        return int(text)
    except ValueError:
        return text


def _to_float(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text


for _path, _cast in {
    "deploy.replicas": _to_int,
    "deploy.update_config.parallelism": _to_int,
    "deploy.update_config.max_failure_ratio": _to_float,
    "deploy.rollback_config.parallelism": _to_int,
    "deploy.rollback_config.max_failure_ratio": _to_float,
    "deploy.restart_policy.max_attempts": _to_int,
    "deploy.placement.max_replicas_per_node": _to_int,
    "deploy.resources.limits.cpus": _to_float,
    "deploy.resources.reservations.cpus": _to_float,
    "deploy.resources.limits.pids": _to_int,
    "healthcheck.retries": _to_int,
    "healthcheck.disable": _to_bool,
    "ports.*.target": _to_int,
    "ports.*.published": _to_int,
    "secrets.*.mode": _to_int,
    "configs.*.mode": _to_int,
    "cpus": _to_float,
    "cpu_shares": _to_int,
    "init": _to_bool,
    "oom_kill_disable": _to_bool,
    "pids_limit": _to_int,
    "privileged": _to_bool,
    "read_only": _to_bool,
    "scale": _to_int,
    "stdin_open": _to_bool,
    "tty": _to_bool,
    "ulimits.*": _to_int,
    "ulimits.*.soft": _to_int,
    "ulimits.*.hard": _to_int,
    "volumes.*.read_only": _to_bool,
}.items():
    CASTS[("services", "*", *_path.split("."))] = _cast
for _section in ("networks", "volumes", "secrets", "configs"):
    CASTS[(_section, "*", "external")] = _to_bool


def _cast_for(steps: list[str]) -> Callable[[str], object] | None:
    for pattern, cast in CASTS.items():
        if len(pattern) == len(steps) and all(p in ("*", s) for p, s in zip(pattern, steps)):
            return cast
    return None


def interpolate_document(document: object, variables: Mapping[str, str], problems: Problems, found: Interpolation) -> object:
    """A copy of `document` with every string value interpolated; each wrong form is one problem (with its path)."""
    return _walk(document, [], "", variables, problems, found)


def _walk(value: object, steps: list[str], path: str, variables: Mapping[str, str], problems: Problems, found: Interpolation) -> object:
    if isinstance(value, str):
        if "$" not in value:
            return value
        try:
            result = interpolate(value, variables, found)
        except TemplateError as error:
            problems.add(path, f"{error}")
            return value
        cast = _cast_for(steps)
        return cast(result) if cast is not None else result
    if isinstance(value, dict):
        return {key: _walk(entry, [*steps, str(key)], child(path, str(key)), variables, problems, found) for key, entry in value.items()}
    if isinstance(value, list):
        return [_walk(entry, [*steps, "*"], item(path, index), variables, problems, found) for index, entry in enumerate(value)]
    if isinstance(value, Override):
        return Override(_walk(value.value, steps, path, variables, problems, found))
    return value
