"""A compose project as the deploying machine sees it: its files, `.env`, env files and environment, made one file.

    project = load_project([ComposeSource("compose.yaml", text)], Path("."), os.environ)
    project.text       # the YAML the manager receives: merged, interpolated, env files read
    project.warnings   # unset variables, environment entries left out

The order is the Compose Specification's: variables from `.env` beside the
first file (or the `--env-file`s instead, later ones winning) under the
process's environment (which wins); each file read and interpolated, then
the files merged; then each service's `env_file:` read (relative to the first
file's directory, later files winning, `environment:` over them all) and
folded into its `environment`. A bare `environment` entry (`- NAME`, `NAME:`)
takes NAME from the variables, or is left out with a warning. Every problem
of every file is reported together. This is the one compose module that
reads files (with sources.py); the manager never sees the user's environment.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral.compose.env_files import EnvFileError, parse_env_file
from corral.compose.interpolate import Interpolation, interpolate_document
from corral.compose.keyvalues import as_mapping
from corral.compose.merge import merge_documents
from corral.compose.paths import child, item
from corral.compose.problems import Problems
from corral.compose.values import show
from corral.compose.yaml_loader import dump, read_document
from corral.model.errors import InvalidSpec
from corral.model.limits import Limits


_NONE: dict[str, str] = {}


@dataclass(frozen=True)
class ComposeSource:
    name: str  # as messages name it: the path given, or "-" for standard input
    data: bytes


@dataclass
class Project:
    document: dict[str, object]
    directory: Path  # the first file's: relative paths (env_file, secrets' file:) start here
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return dump(self.document)


def load_project(
    sources: list[ComposeSource],
    directory: Path,
    environ: Mapping[str, str],
    env_files: list[Path] | None = None,
    limits: Limits = Limits(),
) -> Project:
    """The project of `sources` (in merge order); InvalidSpec naming every problem when it has any."""
    problems = Problems()
    found = Interpolation()
    variables = {**_dotenv(directory, env_files, environ, problems, found), **environ}
    documents = []
    for source in sources:
        prefix = f"{source.name}: " if len(sources) > 1 else ""
        document = problems.attempt(lambda: _read_source(source, limits), None)
        if document is None:
            continue
        local = Problems()
        documents.append(interpolate_document(document, variables, local, found))
        for problem in local.found:
            problems.add(problem.path, prefix + problem.reason)
    problems.raise_if_any()
    merged = merge_documents(documents)
    assert isinstance(merged, dict)
    warnings: list[str] = []
    services = merged.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                path = child("services", str(name))
                services[name] = _environment(service, path, directory, variables, problems, warnings, found)
    problems.raise_if_any()
    return Project(document=merged, directory=directory, warnings=[*found.warnings(), *warnings])


def decode(source: ComposeSource) -> str:
    """The text of `source`; InvalidSpec (with the line) when it is not UTF-8."""
    try:
        return source.data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = source.data.count(b"\n", 0, error.start) + 1
        raise InvalidSpec(
            "", f"{source.name} is not UTF-8 text: byte 0x{source.data[error.start]:02x} on line {line}; save the file as UTF-8"
        ) from None


def _read_source(source: ComposeSource, limits: Limits) -> dict[str, object]:
    if len(source.data) > limits.request_bytes:
        raise InvalidSpec("", f"{source.name} is {len(source.data)} bytes: a compose file may have at most {limits.request_bytes}")
    document = read_document(decode(source), limits)
    if not isinstance(document, dict):
        raise InvalidSpec("", f"{source.name} must be a mapping with a 'services' key")
    return document


def _dotenv(
    directory: Path, env_files: list[Path] | None, environ: Mapping[str, str], problems: Problems, found: Interpolation
) -> dict[str, str]:
    """The variables of `.env` beside the first file (when it exists), or of the `env_files` given instead."""
    paths = env_files if env_files is not None else [directory / ".env"]
    values: dict[str, str] = {}
    for path in paths:
        if env_files is None and not path.is_file():
            continue
        values.update(problems.attempt(lambda: _read_env_file(path, str(path), {**values, **environ}, False, found), _NONE))
    return values


def _read_env_file(path: Path, where: str, variables: Mapping[str, str], raw: bool, found: Interpolation) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidSpec(where, f"cannot read {path}: {error.strerror}") from None
    text = decode(ComposeSource(str(path), data))
    try:
        return parse_env_file(text, variables, raw, found)
    except EnvFileError as error:
        raise InvalidSpec(where, f"{path} {error}") from None


def _environment(
    service: dict[str, object],
    path: str,
    directory: Path,
    variables: Mapping[str, str],
    problems: Problems,
    warnings: list[str],
    found: Interpolation,
) -> dict[str, object]:
    """`service` with its env_file folded into `environment` and bare entries taken from `variables`."""
    from_files: dict[str, str] = {}
    for where, file, required, raw in _env_file_entries(service.get("env_file"), child(path, "env_file"), problems):
        file_path = directory / file
        if not file_path.exists() and not required:
            continue
        from_files.update(problems.attempt(lambda: _read_env_file(file_path, where, variables, raw, found), _NONE))
    try:
        own = as_mapping(service.get("environment"))
    except ValueError:
        return service  # not KEY=VALUE: the parser says so
    if not from_files and all(value is not None for value in own.values()):
        return service
    environment: dict[object, object] = {}
    layered: dict[object, object] = {key: value for key, value in from_files.items()}
    layered.update(own)
    for key, value in layered.items():
        if value is None:
            inherited = variables.get(str(key))
            if inherited is None:
                warnings.append(f"{child(path, 'environment')}.{key} is not set on this machine: the container does not get it")
                continue
            value = inherited
        environment[key] = value
    result = {k: v for k, v in service.items() if k != "env_file"}
    result["environment"] = environment
    return result


def _env_file_entries(value: object, path: str, problems: Problems) -> list[tuple[str, str, bool, bool]]:
    """(path in the file, file, required, raw) for each entry of an `env_file:` (string, list, long form)."""
    if value is None:
        return []
    entries = value if isinstance(value, list) else [value]
    result = []
    for index, entry in enumerate(entries):
        where = item(path, index) if isinstance(value, list) else path
        if isinstance(entry, str) and entry:
            result.append((where, entry, True, False))
        elif isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"]:
            required = entry.get("required", True)
            form = entry.get("format")
            if not isinstance(required, bool):
                problems.add(child(where, "required"), "must be true or false")
            elif form not in (None, "raw"):
                problems.add(child(where, "format"), f"unknown format {show(form)}: leave it out, or write raw")
            else:
                result.append((where, str(entry["path"]), required, form == "raw"))
        else:
            problems.add(where, "must be a file name, or a mapping with `path` (and `required`, `format`)")
    return result
