"""`corral agent` refuses bad fleet options with a message naming the option, before contacting anyone."""

import pytest
from typer.testing import CliRunner

from corral.cli.main import app

BASE = ["agent", "--manager", "http://127.0.0.1:9", "--address", "127.0.0.1", "--token", "t"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "podman", "--name", "n1"], "--engine: unknown engine 'podman'"),
        (["--count", "3", "--name-prefix", "h-"], "--count: only hollow nodes share a process"),
        (["--engine", "hollow", "--count", "3"], "--name: missing"),
        (["--engine", "hollow", "--name", "n1", "--name-prefix", "h-"], "--name and --name-prefix"),
        (["--engine", "hollow", "--name-prefix", "h-", "--hollow-delay", "slow"], "--hollow-delay: invalid hollow delay"),
    ],
)
def test_bad_options_are_refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, BASE + args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
