"""`corral deploy --dry-run` and `corral config` on compose files as people write them, against a real manager process.

tests/compose/corpus/ holds compose files written the way public sample
projects write them (web framework and database, reverse proxy, monitoring,
queue and workers). Each opens with what corral must answer:

    # expect: accepted
    # expect: refused PATH: TEXT      (one line per error; the answer must have exactly these)
    # env: NAME=VALUE                 (the deploying environment)
"""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app

from test_cli_secrets import manager  # noqa: F401  (the fixture: a real manager process with TLS)

CORPUS = Path(__file__).parent.parent / "compose" / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))


def _run(manager: str, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--manager", manager], env=env, input=stdin)
    return result.exit_code, result.output


def _config(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["config", *args], env=env, input=stdin)
    return result.exit_code, result.output


def _headers(path: Path) -> tuple[list[str], dict[str, str]]:
    expect, env = [], {}
    for line in path.read_text().splitlines():
        if line.startswith("# expect: "):
            expect.append(line.removeprefix("# expect: "))
        elif line.startswith("# env: "):
            key, _, value = line.removeprefix("# env: ").partition("=")
            env[key] = value
    return expect, env


def _errors(output: str) -> list[str]:
    """The error lines of the CLI's output (the first one after `error: `), warnings left out."""
    lines = [line for line in output.splitlines() if line and not line.startswith("warning: ")]
    start = next((i for i, line in enumerate(lines) if line.startswith("error: ")), None)
    return [] if start is None else [lines[start].removeprefix("error: "), *lines[start + 1 :]]


def test_the_corpus_is_large_enough() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_corpus_file_is_accepted_or_refused_as_expected(manager: str, path: Path) -> None:  # noqa: F811
    expect, env = _headers(path)
    assert expect, f"{path.name} says nothing about what to expect"
    stack = re.sub(r"[^a-z0-9]", "", path.stem)
    code, output = _run(manager, "deploy", "-c", str(path), "--name", stack, "--dry-run", env=env)
    if expect == ["accepted"]:
        assert code == 0, output
        assert "Dry run: nothing was changed." in output
        assert re.search(rf"\+ would create service {stack}_", output)
        # and for real: the manager stores the services (no agent runs them here; the images are not on this machine)
        code, output = _run(manager, "deploy", "-c", str(path), "--name", stack, "--detach", env=env)
        assert code == 0 and f"Created service {stack}_" in output, output
        assert _run(manager, "stack", "rm", stack)[0] == 0
        return
    assert code == 1, output
    errors = _errors(output)
    wanted = [line.removeprefix("refused ") for line in expect]
    for want in wanted:
        path_part, _, text = want.partition(": ")
        assert any(e.startswith(path_part + ": ") and text in e for e in errors), f"{want!r} not in {errors}"
    assert len(errors) == len(wanted), errors


def test_dry_run_of_an_edited_file_prints_each_changed_field(manager: str, tmp_path: Path) -> None:  # noqa: F811
    first = tmp_path / "compose.yaml"
    first.write_text("services:\n  web:\n    image: app:${TAG}\n    environment: {A: '1'}\n    deploy: {replicas: 2}\n")
    assert _run(manager, "deploy", "-c", str(first), "--name", "edited", "--detach", env={"TAG": "1"})[0] == 0
    override = tmp_path / "prod.yaml"
    override.write_text("services:\n  web:\n    environment: {B: two}\n    deploy: {replicas: 3}\n")
    code, output = _run(manager, "deploy", "-c", str(first), "-c", str(override), "--name", "edited", "--dry-run", env={"TAG": "2"})
    assert code == 0, output
    assert "~ would update service edited_web" in output
    assert '    image: "app:1" -> "app:2"' in output
    assert "    replicas: 2 -> 3" in output
    assert '    environment.B: - -> "two"' in output
    assert "environment.A" not in output  # unchanged fields are not listed
    code, again = _run(manager, "deploy", "-c", str(first), "--name", "edited", "--dry-run", env={"TAG": "1"})
    assert "unchanged service edited_web" in again and "->" not in again


def test_stdin_and_env_files(manager: str, tmp_path: Path) -> None:  # noqa: F811
    env_file = tmp_path / "prod.env"
    env_file.write_text("TAG=from-env-file\n")
    text = b"services:\n  web:\n    image: app:${TAG}\n"
    code, output = _config("-c", "-", "--env-file", str(env_file), "--name", "s", stdin=text)
    assert code == 0, output
    assert "image: app:from-env-file" in output and "restart_policy:" in output  # defaults are shown too


# --- bad input: each a clear message, never a traceback or a 500 ---


def _refused(manager: str, tmp_path: Path, data: bytes, *, name: str = "bad.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    code, output = _run(manager, "deploy", "-c", str(path), "--name", "bad", "--dry-run")
    assert code == 1, output
    assert "Traceback" not in output and "internal error" not in output
    return output


def test_a_10_mb_file(manager: str, tmp_path: Path) -> None:  # noqa: F811
    big = b"services:\n  web:\n    image: x\n" + b"# " + b"x" * (10 * 1024 * 1024) + b"\n"
    assert re.search(r"bad.yaml is 1048\d{4} bytes: a compose file may have at most 4194304", _refused(manager, tmp_path, big))


def test_deep_nesting(manager: str, tmp_path: Path) -> None:  # noqa: F811
    deep = b"services:\n  web:\n    image: x\n    x-deep: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    assert "invalid YAML: line 4: exceeded maximum nesting depth" in _refused(manager, tmp_path, deep)
    mappings = b"services:\n  web:\n    image: x\n    x-deep:\n" + b"".join(b"  " * (i + 3) + f"k{i}:\n".encode() for i in range(80))
    assert "nested deeper than 64 levels" in _refused(manager, tmp_path, mappings)


def test_anchors_and_merge_keys(manager: str, tmp_path: Path) -> None:  # noqa: F811
    laughs = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
        for i in range(9)
    ) + b"services: {web: {image: x, x-j: *j}}\n"
    assert "YAML nodes once its aliases are expanded" in _refused(manager, tmp_path, laughs)
    looped = b"services: &s\n  web:\n    image: x\n    x-self: *s\n"
    assert "error:" in _refused(manager, tmp_path, looped)
    merged = tmp_path / "merge.yaml"
    merged.write_text("x-base: &base\n  image: corral-demo:latest\n  environment: {A: '1'}\nservices:\n  web:\n    <<: *base\n    command: [sh]\n")
    code, output = _config("-c", str(merged), "--name", "m")
    assert code == 0 and "image: corral-demo:latest" in output and "A: '1'" in output, output


def test_unknown_top_level_keys(manager: str, tmp_path: Path) -> None:  # noqa: F811
    output = _refused(manager, tmp_path, b"servics:\n  web: {image: x}\nservices:\n  web: {image: x}\nfrobnicate: 1\n")
    errors = _errors(output)
    assert any(e.startswith("servics: not a Compose key corral knows; did you mean services?") for e in errors), errors
    assert any(e.startswith("frobnicate: not a Compose key corral knows") for e in errors), errors


def test_non_utf8_bytes(manager: str, tmp_path: Path) -> None:  # noqa: F811
    output = _refused(manager, tmp_path, b"services:\n  web:\n    image: caf\xe9\n")
    assert "bad.yaml is not UTF-8 text: byte 0xe9 on line 3; save the file as UTF-8" in output


def test_a_variable_that_expands_to_yaml_syntax_stays_a_value(manager: str, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  web:\n    image: corral-demo:latest\n    command: ['echo', '${EVIL}']\n")
    evil = "x\nservices:\n  evil: {image: root, privileged: true}\n"
    code, output = _config("-c", str(path), "--name", "y", env={"EVIL": evil})
    assert code == 0, output
    assert "evil" not in output.split("command:")[0]  # no service came out of the value
    assert "privileged: true" in output  # the value is there, quoted inside the command
    code, output = _run(manager, "deploy", "-c", str(path), "--name", "y", "--dry-run", env={"IMAGE_AS_YAML": "[a", "EVIL": "{a: b}"})
    assert code == 0 and "+ would create service y_web" in output, output


def test_three_errors_in_one_file_are_all_reported(manager: str, tmp_path: Path) -> None:  # noqa: F811
    output = _refused(
        manager,
        tmp_path,
        b"services:\n  web:\n    image: x\n    deploy: {replicas: many}\n    privileged: true\n  db:\n    image: ${DB_IMAGE:?name the database image}\n",
    )
    assert _errors(output) == ["services.db.image: required variable DB_IMAGE is not set: name the database image"]
    output = _refused(manager, tmp_path, b"services:\n  web:\n    image: x\n    deploy: {replicas: many}\n    privileged: true\n    runtime: runsc\n")
    errors = _errors(output)
    assert len(errors) == 3, errors
    assert [e.split(":")[0] for e in errors] == ["services.web.privileged", "services.web.runtime", "services.web.deploy.replicas"]
