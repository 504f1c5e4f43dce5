"""Interpolation as the Compose Specification defines it: every form, nesting, $$, and whole files."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.compose.interpolate import Interpolation, TemplateError, interpolate, interpolate_document
from corral.compose.problems import Problems

ENV = {"SET": "value", "EMPTY": "", "FALLBACK": "fallback"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a${SET}b", "avalueb"),
        ("$SET.$SET", "value.value"),
        ("$SET_x", ""),  # the name runs on: SET_x is unset
        ("${SET}_x", "value_x"),
        # :- and -
        ("${SET:-d}", "value"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${SET-d}", "value"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        # :+ and +
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        # :? and ? when satisfied
        ("${SET:?needed}", "value"),
        ("${SET?needed}", "value"),
        ("${EMPTY?needed}", ""),
        # nesting
        ("${UNSET:-${FALLBACK}}", "fallback"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-$FALLBACK}", "fallback"),
        ("${UNSET:-a ${FALLBACK} b}", "a fallback b"),
        ("${SET:+${FALLBACK}-x}", "fallback-x"),
        ("${UNSET:-${ALSO:-${FALLBACK}}}", "fallback"),
        # defaults with odd characters
        ("${UNSET:-a:b-c?d+e}", "a:b-c?d+e"),
        ("${UNSET:-}", ""),
        ("${UNSET:-{x}", "{x"),
        # $$ and a $ that starts no variable
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("$$$SET", "$value"),
        ("echo $$(hostname)", "echo $(hostname)"),
        ("${UNSET:-$$}", "$"),
        ("cost $5", "cost $5"),
        ("a $ b", "a $ b"),
        ("end$", "end$"),
        ("no dollar", "no dollar"),
    ],
)
def test_every_form(template: str, expected: str) -> None:
    assert interpolate(template, ENV) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${UNSET:?please set it}", "required variable UNSET is not set: please set it"),
        ("${EMPTY:?please set it}", "required variable EMPTY is empty: please set it"),
        ("${UNSET?needed}", "required variable UNSET is not set: needed"),
        ("${UNSET:?}", "required variable UNSET is not set"),
        ("${UNSET:?set ${FALLBACK} too}", "required variable UNSET is not set: set fallback too"),
    ],
)
def test_required_variables_refuse_with_their_message(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        interpolate(template, ENV)
    assert str(caught.value) == message


@pytest.mark.parametrize("template", ["${}", "${1X}", "${SET/a/b}", "${SET:3}", "${SET", "x ${UNSET:-${A}", "${ SET}"])
def test_forms_compose_does_not_define_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        interpolate(template, ENV)


def test_unset_variables_are_recorded_once_each_for_the_warning() -> None:
    found = Interpolation()
    assert interpolate("$A ${B} $A ${C:-x} ${SET}", ENV, found) == "   x value"
    assert found.warnings() == [
        "the variable A is not set; an empty string is used in its place",
        "the variable B is not set; an empty string is used in its place",
    ]


def test_a_default_is_evaluated_only_when_used() -> None:
    assert interpolate("${SET:-${UNSET:?never}}", ENV) == "value"
    found = Interpolation()
    interpolate("${SET:-$MISSING}", ENV, found)
    assert found.missing == []


_plain = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=30)


@given(_plain)
def test_text_without_a_dollar_is_unchanged(text: str) -> None:
    assert interpolate(text, ENV) == text


@given(st.text(max_size=40))
def test_escaping_every_dollar_gives_the_text_back(text: str) -> None:
    assert interpolate(text.replace("$", "$$"), {}) == text


@given(st.text(max_size=40), st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,5}", fullmatch=True), st.text(max_size=10)))
def test_values_are_never_interpolated_again(value: str, env: dict[str, str]) -> None:
    """A variable's value is used as it is: `$`s in it are not read as variables."""
    assert interpolate("${V}", {**env, "V": value}) == value
    assert interpolate("${NOPE:-${V}}", {**env, "V": value}) == value


@given(st.text(max_size=60))
def test_any_text_interpolates_or_raises_template_error(text: str) -> None:
    try:
        interpolate(text, ENV)
    except TemplateError:
        pass


def test_documents_interpolate_values_not_keys_and_cast_numbers() -> None:
    document = {
        "services": {
            "web": {
                "image": "nginx:${TAG:-latest}",
                "environment": {"$KEY": "${SET}", "LIST": ["${SET}"]},
                "deploy": {"replicas": "${REPLICAS}", "labels": {"n": "${REPLICAS}"}},
                "ports": [{"target": "${PORT}", "published": "80${PORT}"}],
                "read_only": "${YES}",
                "healthcheck": {"retries": 3},
            }
        },
        "volumes": {"data": {"external": "${YES}"}},
    }
    problems = Problems()
    env = {**ENV, "REPLICAS": "3", "PORT": "80", "YES": "true"}
    result = interpolate_document(document, env, problems, Interpolation())
    assert not problems
    web = result["services"]["web"]  # type: ignore[index]
    assert web["image"] == "nginx:latest"
    assert web["environment"] == {"$KEY": "value", "LIST": ["value"]}
    assert web["deploy"] == {"replicas": 3, "labels": {"n": "3"}}  # a label stays text
    assert web["ports"] == [{"target": 80, "published": 8080}]
    assert web["read_only"] is True
    assert result["volumes"]["data"]["external"] is True  # type: ignore[index]
    assert document["services"]["web"]["image"] == "nginx:${TAG:-latest}"  # type: ignore[index]  # a copy


def test_a_value_that_expands_to_yaml_stays_one_string() -> None:
    evil = "x\nservices:\n  evil: {image: root, privileged: true}\n- [a"
    result = interpolate_document({"services": {"web": {"command": ["echo", "${EVIL}"]}}}, {"EVIL": evil}, Problems(), Interpolation())
    assert result == {"services": {"web": {"command": ["echo", evil]}}}


def test_every_bad_form_of_a_document_is_a_problem_with_its_path() -> None:
    document = {"services": {"web": {"image": "${IMAGE:?set IMAGE to the image to run}", "command": ["a", "${X/y/z}"]}}}
    problems = Problems()
    interpolate_document(document, {}, problems, Interpolation())
    assert [(p.path, p.reason) for p in problems.found] == [
        ("services.web.image", "required variable IMAGE is not set: set IMAGE to the image to run"),
        ("services.web.command[1]", "${X/y/z} is not a compose interpolation: after X comes :-, -, :?, ?, :+ or + (write $$ for a literal $)"),
    ]


# --- against bash: for the forms compose shares with the shell, both must agree ---

_LITERAL = st.text(alphabet="abc xyz-_.:/=@", max_size=4)
_VAR = st.sampled_from(["A", "B", "C"])


def _template(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    form = st.sampled_from(["${{{v}}}", "${{{v}:-{t}}}", "${{{v}-{t}}}", "${{{v}:+{t}}}", "${{{v}+{t}}}", "${v}"])
    return st.builds(lambda f, v, t: f.format(v=v, t=t), form, _VAR, inner)


_TEMPLATES = st.recursive(_LITERAL, lambda inner: st.lists(st.one_of(_LITERAL, _template(inner)), max_size=3).map("".join), max_leaves=6)


@given(_TEMPLATES, st.dictionaries(_VAR, st.sampled_from(["", "v", "x y"])))
def test_the_shared_forms_agree_with_bash(template: str, env: dict[str, str]) -> None:
    import subprocess

    shell = subprocess.run(["bash", "-c", f'printf %s "{template}"'], env=env, capture_output=True, text=True, check=True)
    assert interpolate(template, env) == shell.stdout
