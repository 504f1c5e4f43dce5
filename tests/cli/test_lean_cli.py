"""What a CLI process loads (issue 21: `corral --help` and `corral service ls` under 150 ms; `corral agent` lean).

Each probe runs the real entry point (`corral.cli.main.run`, the `corral` script) in a fresh interpreter and lists
which heavy modules are in sys.modules afterwards. `corral service ls` runs the whole path (options parsed, client
built, the call made) against a loopback port nothing listens on, so no manager is needed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from corral.cli import main
from corral.cli.lazy import build

PROBE = """
import json, sys
wanted = json.loads(sys.argv[2])
sys.argv = ["corral", *json.loads(sys.argv[1])]
from corral.cli.main import run
try:
    run()
except SystemExit:
    pass
print("\\n" + json.dumps(sorted(name for name in wanted if sys.modules.get(name))))
"""

# The manager and its web stack, the agent, the compose parser, the Docker SDK, the CA's cryptography, and the
# libraries whose import alone cost tens of milliseconds (pydantic: typer 0.29's option coercion; rich.markdown:
# typer's rich help).
NEVER_FOR_A_CALL = [
    "fastapi", "uvicorn", "starlette", "corral.manager", "corral.agent", "corral.store", "corral.compose.parse", "yaml",
    "docker", "cryptography", "pydantic", "rich.markdown", "trio",
]


def loaded(args: list[str], modules: list[str], tmp_path: Path) -> tuple[list[str], str]:
    env = {
        **os.environ, "CORRAL_CONFIG": str(tmp_path / "credentials.json"), "CORRAL_DATA_DIR": str(tmp_path / "data"),
        "CORRAL_TOKEN": "not-a-token",
    }
    for name in ("CORRAL_MANAGER", "CORRAL_CA"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(modules)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.rstrip().splitlines()[-1]), done.stdout + done.stderr


def test_help_lists_every_command_and_imports_none_of_them(tmp_path: Path) -> None:
    found, output = loaded(["--help"], [*NEVER_FOR_A_CALL, "httpx", "asyncio", "rich.console", "corral.cli.services"], tmp_path)
    assert found == [], f"`corral --help` imports {found}"
    for command in main.COMMANDS:
        assert f"  {command.name}  " in output, f"{command.name} missing from `corral --help`"


# What a one-off listing does without (~150 ms of imports together): the async client and its stack, the event loop,
# rich's console and tables. It asks with corral/client/plain.py (http.client and ssl) and prints plain text.
NEVER_FOR_A_LISTING = ["httpx", "httpcore", "anyio", "h11", "certifi", "asyncio", "rich", "websockets", "corral.cli.stacks"]


def test_service_ls_imports_the_plain_client_and_nothing_of_the_servers(tmp_path: Path) -> None:
    found, output = loaded(
        ["service", "ls", "--manager", "https://127.0.0.1:1"], [*NEVER_FOR_A_CALL, *NEVER_FOR_A_LISTING, "corral.client.plain"], tmp_path,
    )
    assert "cannot reach the manager at https://127.0.0.1:1" in output  # the call was made: the whole path ran
    assert found == ["corral.client.plain"], f"`corral service ls` imports {found}"


def test_listings_that_page_use_the_plain_client_too(tmp_path: Path) -> None:
    for command in (["node", "ls"], ["volume", "ls"], ["service", "ls", "-o", "json"]):
        found, output = loaded([*command, "--manager", "https://127.0.0.1:1"], [*NEVER_FOR_A_LISTING, "corral.client.plain"], tmp_path)
        assert "cannot reach the manager at https://127.0.0.1:1" in output, output
        assert found == ["corral.client.plain"], f"`corral {' '.join(command)}` imports {found}"


def test_a_command_that_needs_the_async_client_still_gets_it(tmp_path: Path) -> None:
    """The lazy `corral.client` and `corral.cli.output` still give httpx and rich to the commands that use them."""
    found, output = loaded(["service", "ps", "web", "--manager", "https://127.0.0.1:1"], ["httpx", "asyncio", "corral.client.plain"], tmp_path)
    assert "cannot reach the manager at https://127.0.0.1:1" in output, output
    assert found == ["asyncio", "httpx"], f"`corral service ps` imports {found}"


def test_agent_command_imports_the_agent_not_the_manager(tmp_path: Path) -> None:
    found, output = loaded(["agent", "--help"], ["fastapi", "corral.manager.server", "corral.manager.api", "corral.store", "corral.agent.daemon"], tmp_path)
    assert "--token-file" in output
    assert found == ["corral.agent.daemon"], f"`corral agent` imports {found}"


def test_each_listed_help_line_is_the_commands_own() -> None:
    """The one-line help in main.COMMANDS is what the loaded command says of itself (first line), so the two cannot drift."""
    for command in main.COMMANDS:
        built = build(command, None)
        own = (built.help or "").strip().splitlines()[0]
        assert command.help == own, f"{command.name}: main.py says {command.help!r}, the command says {own!r}"


def test_lazy_commands_run_in_process() -> None:
    """CliRunner (in-process, many invocations): a lazy group resolves, and its wired-in commands appear once."""
    runner = CliRunner()
    for _ in range(2):
        shown = runner.invoke(main.app, ["service", "--help"])
        assert shown.exit_code == 0, shown.output
        assert [line.split()[0] for line in shown.output.splitlines() if line.startswith("  endpoints")] == ["endpoints"]
    unknown = runner.invoke(main.app, ["servce", "ls"])
    assert unknown.exit_code == 2 and "No such command 'servce'" in unknown.output
