"""Env files as Docker Compose reads them, several compose files merged, and a whole project loaded."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from corral.compose import parse_compose
from corral.compose.env_files import EnvFileError, parse_env_file
from corral.compose.merge import merge_documents
from corral.compose.project import ComposeSource, load_project
from corral.model.errors import InvalidSpec

# --- env files ---


def test_env_file_forms() -> None:
    text = (
        "# a comment\n"
        "\n"
        "PLAIN=  some text  # a note\n"
        "export EXPORTED=1\n"
        'DOUBLE="a\\nb ${PLAIN} \\$x \\"q\\""\n'
        "SINGLE='${kept} # not a comment'\n"
        "HASH=a#b\n"
        "EMPTY=\n"
        "FROM_OUTSIDE\n"
        "NOT_OUTSIDE\n"
        "DEFAULTED=${NOPE:-d}\n"
        'MULTI="line one\n'
        'line two"\n'
        "CRLF=x\r\n"
    )
    assert parse_env_file(text, {"FROM_OUTSIDE": "outer"}) == {
        "PLAIN": "some text",
        "EXPORTED": "1",
        "DOUBLE": 'a\nb some text $x "q"',
        "SINGLE": "${kept} # not a comment",
        "HASH": "a#b",
        "EMPTY": "",
        "FROM_OUTSIDE": "outer",
        "DEFAULTED": "d",
        "MULTI": "line one\nline two",
        "CRLF": "x",
    }


def test_raw_format_takes_values_literally() -> None:
    assert parse_env_file("A='x' ${B} # c\n", {}, raw=True) == {"A": "'x' ${B} # c"}


def test_a_file_sees_its_own_earlier_lines_first() -> None:
    assert parse_env_file("A=inner\nB=${A}\n", {"A": "outer"}) == {"A": "inner", "B": "inner"}


@pytest.mark.parametrize(
    ("text", "line"),
    [("1BAD=x\n", "line 1"), ("OK=1\nno equals here\n", "line 2"), ('A="never closed\n', "line 1"), ("A=${B:?need B}\n", "line 1")],
)
def test_bad_lines_name_their_number(text: str, line: str) -> None:
    with pytest.raises(EnvFileError) as caught:
        parse_env_file(text, {})
    assert str(caught.value).startswith(line)


_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True)
_values = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@given(st.dictionaries(_names, _values, max_size=5))
def test_single_quoted_values_come_back_as_written(values: dict[str, str]) -> None:
    values = {k: v for k, v in values.items() if "'" not in v}
    text = "".join(f"{key}='{value}'\n" for key, value in values.items())
    assert parse_env_file(text, {}) == values


# --- merge ---


def test_merge_follows_the_compose_rules() -> None:
    base = {
        "services": {
            "web": {
                "image": "app:1",
                "command": ["a", "b"],
                "environment": ["A=1", "B=2"],
                "ports": ["8080:80", "9090:90"],
                "dns": ["1.1.1.1"],
                "healthcheck": {"test": ["CMD", "a"], "retries": 3},
                "secrets": ["s1"],
            },
            "db": {"image": "postgres"},
        }
    }
    override = {
        "services": {
            "web": {
                "image": "app:2",
                "command": ["c"],
                "environment": {"B": "3", "C": None},
                "ports": ["8080:80", "7070:70"],
                "dns": ["8.8.8.8"],
                "healthcheck": {"test": ["CMD", "b"]},
                "secrets": ["s1", "s2"],
            },
            "cache": {"image": "redis"},
        }
    }
    merged = merge_documents([base, override])
    assert merged == {
        "services": {
            "web": {
                "image": "app:2",
                "command": ["c"],
                "environment": {"A": "1", "B": "3", "C": None},
                "ports": ["8080:80", "9090:90", "7070:70"],
                "dns": ["1.1.1.1", "8.8.8.8"],
                "healthcheck": {"test": ["CMD", "b"], "retries": 3},
                "secrets": ["s1", "s2"],
            },
            "db": {"image": "postgres"},
            "cache": {"image": "redis"},
        }
    }


def test_volumes_merge_by_target() -> None:
    merged = merge_documents([{"services": {"a": {"volumes": ["foo:/work", "x:/x"]}}}, {"services": {"a": {"volumes": ["bar:/work"]}}}])
    assert merged == {"services": {"a": {"volumes": ["bar:/work", "x:/x"]}}}


# --- a project: files, .env, env files, the environment ---


def _source(text: str, name: str = "compose.yaml") -> ComposeSource:
    return ComposeSource(name, text.encode())


def test_env_beside_the_file_and_the_environment_which_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=from-dotenv\nPORT=80\nGREETING='hello $$ world'\n")
    text = "services:\n  web:\n    image: nginx:${TAG}\n    ports: ['${PORT}:80']\n    environment: {G: '${GREETING}', P: $$HOME}\n"
    project = load_project([_source(text)], tmp_path, {"PORT": "8080"})
    web = project.document["services"]["web"]  # type: ignore[index]
    assert web["image"] == "nginx:from-dotenv"
    assert web["ports"] == ["8080:80"]
    assert web["environment"] == {"G": "hello $$ world", "P": "$HOME"}
    assert project.warnings == []


def test_env_files_given_replace_dot_env_and_later_ones_win(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=dotenv\n")
    (tmp_path / "a.env").write_text("TAG=a\nOTHER=a\n")
    (tmp_path / "b.env").write_text("TAG=b\n")
    text = "services:\n  web:\n    image: nginx:${TAG}-${OTHER}\n"
    project = load_project([_source(text)], tmp_path, {}, [tmp_path / "a.env", tmp_path / "b.env"])
    assert project.document["services"]["web"]["image"] == "nginx:b-a"  # type: ignore[index]


def test_a_missing_env_file_given_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as caught:
        load_project([_source("services: {web: {image: x}}")], tmp_path, {}, [tmp_path / "nope.env"])
    assert "cannot read" in str(caught.value) and "nope.env" in str(caught.value)


def test_service_env_file_in_every_form(tmp_path: Path) -> None:
    (tmp_path / "common.env").write_text("A=common\nB=common\nC=common\n")
    (tmp_path / "web.env").write_text("B=web\nREF=${FROM_SHELL}\n")
    text = """\
services:
  one: {image: x, env_file: common.env}
  two:
    image: x
    env_file: [common.env, web.env]
    environment: [C=own, FROM_SHELL, NOT_ANYWHERE]
  three:
    image: x
    env_file:
      - path: common.env
      - path: missing.env
        required: false
"""
    project = load_project([_source(text)], tmp_path, {"FROM_SHELL": "shell"})
    services = project.document["services"]
    assert services["one"] == {"image": "x", "environment": {"A": "common", "B": "common", "C": "common"}}  # type: ignore[index]
    assert services["two"]["environment"] == {"A": "common", "B": "web", "C": "own", "REF": "shell", "FROM_SHELL": "shell"}  # type: ignore[index]
    assert services["three"]["environment"] == {"A": "common", "B": "common", "C": "common"}  # type: ignore[index]
    assert project.warnings == ["services.two.environment.NOT_ANYWHERE is not set on this machine: the container does not get it"]
    parsed = parse_compose(project.text, "s")  # what the manager receives parses, env_file gone
    assert {s.name: s.environment["A"] for s in parsed.services} == {"s_one": "common", "s_two": "common", "s_three": "common"}


def test_a_required_env_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    text = "services:\n  web: {image: x, env_file: [{path: gone.env}]}\n"
    with pytest.raises(InvalidSpec) as caught:
        load_project([_source(text)], tmp_path, {})
    assert caught.value.path == "services.web.env_file[0]"


def test_several_files_merge_after_each_is_interpolated(tmp_path: Path) -> None:
    base = "services:\n  web:\n    image: app:${TAG:-1}\n    environment: [A=1]\n"
    override = "services:\n  web:\n    environment: {B: '${B_VALUE}'}\n    deploy: {replicas: '${N}'}\n"
    project = load_project([_source(base), _source(override, "prod.yaml")], tmp_path, {"B_VALUE": "2", "N": "3"})
    web = parse_compose(project.text, "s").services[0]
    assert (web.image, web.environment, web.replicas) == ("app:1", {"A": "1", "B": "2"}, 3)


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    base = "services:\n  web:\n    image: ${IMAGE:?set IMAGE}\n    command: echo ${X/y}\n"
    override = "services:\n  db:\n    image: ${DB:?set DB}\n"
    with pytest.raises(InvalidSpec) as caught:
        load_project([_source(base, "a.yaml"), _source(override, "b.yaml")], tmp_path, {})
    lines = str(caught.value).splitlines()
    assert lines == [
        "services.web.image: a.yaml: required variable IMAGE is not set: set IMAGE",
        "services.web.command: a.yaml: ${X/y} is not a compose interpolation: after X comes :-, -, :?, ?, :+ or + (write $$ for a literal $)",
        "services.db.image: b.yaml: required variable DB is not set: set DB",
    ]


def test_unset_variables_warn_by_name(tmp_path: Path) -> None:
    project = load_project([_source("services:\n  web: {image: 'x:${TAG}', environment: {TZ: '${TIMEZONE}'}}\n")], tmp_path, {})
    assert project.warnings == [
        "the variable TAG is not set; an empty string is used in its place",
        "the variable TIMEZONE is not set; an empty string is used in its place",
    ]


def test_non_utf8_bytes_are_named_with_their_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as caught:
        load_project([ComposeSource("bad.yaml", b"services:\n  web:\n    image: caf\xe9\n")], tmp_path, {})
    assert str(caught.value) == "bad.yaml is not UTF-8 text: byte 0xe9 on line 3; save the file as UTF-8"


def test_the_text_sent_is_the_document(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: x\n    command: ['echo', '${V}']\n    ports: ['22:22']\n"
    project = load_project([_source(text)], tmp_path, {"V": "a: [b"})
    assert yaml.safe_load(project.text) == project.document
    assert parse_compose(project.text, "s").services[0].command == ["echo", "a: [b"]


def test_reset_and_override_tags(tmp_path: Path) -> None:
    base = "services:\n  app:\n    image: myapp\n    ports: ['8080:80']\n    environment: {FOO: BAR, KEEP: '1'}\n    command: [a]\n"
    override = (
        "services:\n  app:\n    ports: !override ['8443:443']\n    environment:\n      FOO: !reset null\n    command: !reset []\n"
        "    labels: !override {team: '${TEAM}'}\n"
    )
    project = load_project([_source(base), _source(override, "o.yaml")], tmp_path, {"TEAM": "blue"})
    assert project.document == {
        "services": {"app": {"image": "myapp", "ports": ["8443:443"], "environment": {"KEEP": "1"}, "labels": {"team": "blue"}}}
    }


def test_reset_in_a_single_file_leaves_the_key_out(tmp_path: Path) -> None:
    project = load_project([_source("services:\n  app:\n    image: x\n    ports: !reset ['1:1']\n")], tmp_path, {})
    assert project.document == {"services": {"app": {"image": "x"}}}


_scalars = st.one_of(st.text(max_size=12), st.integers(-(2**40), 2**40), st.booleans(), st.none())
_documents = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3), max_leaves=12
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), _documents, max_size=4))
def test_the_text_sent_reads_back_as_the_same_document(document: dict[str, object]) -> None:
    """Strings stay strings ('0o17', '1e3', 'on'), whatever YAML 1.1 or 1.2 would make of them unquoted."""
    from corral.compose.yaml_loader import dump, load

    assert load(dump(document)) == document


@given(st.dictionaries(st.text(min_size=1, max_size=8), _documents, max_size=4))
def test_merging_with_nothing_or_with_itself_keeps_a_document(document: dict[str, object]) -> None:
    assert merge_documents([document]) == document
    assert merge_documents([document, {}]) == document
    assert merge_documents([{}, document]) == document
    doubled = merge_documents([document, document])
    assert isinstance(doubled, dict) and doubled.keys() == document.keys()  # mappings merge, never nest or drop
