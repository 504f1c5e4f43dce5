"""`corral secret|config create|ls|inspect|rm` and `corral deploy` sending a compose file's values, against a
real manager process."""

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.processes import stop_process
from tests.tls import admin_headers, admin_token, ca_file, verify

from corral.cli.main import app

from test_manager_stops import CORRAL, _free_port
from test_secrets_stay_out_of_sight import _wait_for

VALUE = b"pa55-\x00\xff-cli-only-91ce"


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data, port = tmp_path_factory.mktemp("data"), _free_port()
    url = f"https://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: httpx.get(url + "/v1/info", verify=verify(data), headers=admin_headers(data)).status_code == 200, 30), "the manager did not start"
        os.environ["CORRAL_CA"] = str(ca_file(data))  # the CLI (in this process) trusts the cluster CA
        os.environ["CORRAL_TOKEN"] = admin_token(data)  # and calls as its admin
        yield url
    finally:
        os.environ.pop("CORRAL_CA", None)
        os.environ.pop("CORRAL_TOKEN", None)
        stop_process(proc, 10)


def _run(manager: str, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--manager", manager], input=stdin, env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize("kind", ["secret", "config"])
def test_create_from_a_file_and_from_stdin_then_list_inspect_remove(manager: str, kind: str, tmp_path: Path) -> None:
    value_file = tmp_path / "value"
    value_file.write_bytes(VALUE)
    assert _run(manager, kind, "create", f"{kind}-a", "-f", str(value_file)) == (0, f"{kind}-a\n")
    assert _run(manager, kind, "create", f"{kind}-b", "-f", "-", stdin=VALUE)[0] == 0
    code, table = _run(manager, kind, "ls")
    assert code == 0 and f"{kind}-a" in table and f"{kind}-b" in table and f"{len(VALUE)}B" in table
    code, shown = _run(manager, kind, "inspect", f"{kind}-b")
    assert code == 0 and json.loads(shown)["size"] == len(VALUE)
    if kind == "secret":
        assert "data" not in json.loads(shown)
    else:
        assert base64.b64decode(json.loads(shown)["data"]) == VALUE
    code, again = _run(manager, kind, "create", f"{kind}-a", "-f", str(value_file))
    assert code == 1 and "already exists" in again
    assert _run(manager, kind, "rm", f"{kind}-a", f"{kind}-b") == (0, f"{kind}-a\n{kind}-b\n")
    code, gone = _run(manager, kind, "rm", f"{kind}-a")
    assert code == 1 and "no " + kind in gone


def test_create_from_a_missing_file_names_it(manager: str, tmp_path: Path) -> None:
    code, output = _run(manager, "secret", "create", "x", "-f", str(tmp_path / "nope"))
    assert code == 1 and "cannot read" in output and "nope" in output


def test_deploy_sends_file_and_environment_values(manager: str, tmp_path: Path) -> None:
    (tmp_path / "db.txt").write_bytes(VALUE)
    compose = tmp_path / "compose.yml"
    compose.write_text(
        "services:\n  web:\n    image: corral-demo:latest\n    deploy: {replicas: 0}\n    secrets: [db, token]\n"
        "secrets:\n  db: {file: ./db.txt}\n  token: {environment: APP_TOKEN}\n"
    )
    code, output = _run(manager, "deploy", "-c", str(compose), "-n", "cli", "--detach", env={"APP_TOKEN": "t0k3n"})
    assert code == 0, output
    assert "Created secret cli_db" in output and "Created secret cli_token" in output and "warning" not in output
    assert {row["name"] for row in httpx.get(manager + "/v1/secrets", verify=verify(Path(os.environ["CORRAL_CA"]).parent), headers=admin_headers(Path(os.environ["CORRAL_CA"]).parent)).json()} >= {"cli_db", "cli_token"}
    code, output = _run(manager, "deploy", "-c", str(compose), "-n", "cli", "--detach", env={"APP_TOKEN": "changed"})
    assert code == 1 and "new name" in output
    code, output = _run(manager, "deploy", "-c", str(compose), "-n", "cli2", "--detach", env={"APP_TOKEN": ""})
    assert code == 0, output
    unset = CliRunner().invoke(app, ["deploy", "-c", str(compose), "-n", "cli3", "--manager", manager], env={"APP_TOKEN": None})
    assert unset.exit_code == 1 and "secrets.token.environment" in unset.output and "APP_TOKEN is not set" in unset.output
    code, output = _run(manager, "secret", "rm", "cli_db")
    assert code == 1 and "used by cli_web" in output
