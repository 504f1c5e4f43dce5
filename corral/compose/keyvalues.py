"""KEY=VALUE sections (environment, labels, deploy.labels), in list or mapping form.

List form: `["A=1", "B"]`; mapping form: `{A: 1, B: null}`. Mapping values
become text as a container would see them (null is "", booleans true/false).
"""

from corral.compose.notes import Notes
from corral.compose.paths import child, item
from corral.compose.values import read_mapping, read_scalar_text, show
from corral.model.errors import InvalidSpec

# key, its value (None for a bare `KEY` in list form), path of the entry
Entry = tuple[str, str | None, str]


def parse_environment(value: object, path: str, notes: Notes) -> dict[str, str]:
    """Environment variables; a bare `B` (Compose would read the shell) is set to "" with a warning."""
    environment: dict[str, str] = {}
    for key, text, _ in _entries(value, path):
        if text is None:
            notes.warn(f'{child(path, key)} has no value; set to ""')
        environment[key] = text or ""
    return environment


def parse_labels(value: object, path: str) -> dict[str, str]:
    """Labels; a bare `a` in list form is the label `a` with an empty value."""
    return {key: text or "" for key, text, _ in _entries(value, path)}


def _entries(value: object, path: str) -> list[Entry]:
    if isinstance(value, list):
        return [_list_entry(entry, item(path, index)) for index, entry in enumerate(value)]
    if value is None or isinstance(value, dict):
        return [_mapping_entry(key, raw, path) for key, raw in read_mapping(value, path).items()]
    raise InvalidSpec(path, "must be a list of KEY=VALUE strings or a mapping")


def _list_entry(entry: object, path: str) -> Entry:
    if not isinstance(entry, str):
        raise InvalidSpec(path, "must be a KEY=VALUE string")
    key, equals, text = entry.partition("=")
    if not key.strip():
        raise InvalidSpec(path, f"the name is empty in {show(entry)}")
    return key, text if equals else None, path


def _mapping_entry(key: str, raw: object, path: str) -> Entry:
    if not key.strip():
        raise InvalidSpec(path, "a key is empty")
    entry_path = child(path, key)
    return key, read_scalar_text(raw, entry_path), entry_path


def as_mapping(value: object) -> dict[object, object]:
    """A KEY=VALUE section in mapping form (`["A=1", "B"]` -> `{A: "1", B: None}`); ValueError when it is neither form."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(entry, str) for entry in value):
        pairs = (str(entry).partition("=") for entry in value)
        return {key: text if equals else None for key, equals, text in pairs}
    raise ValueError("not a KEY=VALUE list or mapping")
