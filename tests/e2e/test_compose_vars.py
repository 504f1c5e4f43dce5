"""A compose file whose values come from `.env`, an env file and the deploying environment, on real containers.

Every interpolation form and `$$` is used; the container's environment and
command (docker inspect) and what its shell printed show what arrived.
"""

import time
from pathlib import Path

from tests.e2e.cluster import Cluster, wait_until

COMPOSE = """\
services:
  web:
    image: corral-demo:${TAG}
    command: ["sh", "-c", "echo started as $$(hostname) with $${#PLAIN} chars; exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
    env_file:
      - app.env
      - path: optional.env
        required: false
    environment:
      PLAIN: $SHELL_ONLY
      BRACED: ${FROM_DOTENV}
      OVERRIDDEN: ${OVERRIDDEN}
      DEFAULT_UNSET: ${NOPE:-fallback}
      DEFAULT_EMPTY_COLON: ${EMPTY_IN_DOTENV:-colon-default}
      DEFAULT_EMPTY_DASH: ${EMPTY_IN_DOTENV-dash-default}
      ALT_SET: ${SHELL_ONLY:+alt-set}
      ALT_UNSET: ${NOPE:+alt}
      ALT_EMPTY_PLUS: ${EMPTY_IN_DOTENV+set-though-empty}
      ALT_EMPTY_COLON_PLUS: ${EMPTY_IN_DOTENV:+never}
      REQUIRED: ${SHELL_ONLY:?SHELL_ONLY must be set}
      REQUIRED_Q: ${EMPTY_IN_DOTENV?must exist}
      NESTED: ${NOPE:-${ALSO_NOPE:-${FROM_DOTENV}}}
      DOLLARS: "price $$5 and $${NOT_A_VAR}"
      MISSING: ${NOT_SET_ANYWHERE}
      INHERITED:
    deploy: {replicas: 1}
"""

EXPECTED_ENV = {
    "PLAIN": "from-shell",
    "BRACED": "dotenv-value",
    "OVERRIDDEN": "shell-wins",
    "DEFAULT_UNSET": "fallback",
    "DEFAULT_EMPTY_COLON": "colon-default",
    "DEFAULT_EMPTY_DASH": "",
    "ALT_SET": "alt-set",
    "ALT_UNSET": "",
    "ALT_EMPTY_PLUS": "set-though-empty",
    "ALT_EMPTY_COLON_PLUS": "",
    "REQUIRED": "from-shell",
    "REQUIRED_Q": "",
    "NESTED": "dotenv-value",
    "DOLLARS": "price $5 and ${NOT_A_VAR}",
    "MISSING": "",
    "INHERITED": "inherited-from-shell",
    "APP_MODE": "env-file dotenv-value",  # from app.env, interpolated with the same variables
    "APP_QUOTED": "literal ${FROM_DOTENV}",
}


def test_values_from_dotenv_env_files_and_environment_reach_the_container(cluster: Cluster, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text(COMPOSE)
    (project / ".env").write_text("TAG=latest\nFROM_DOTENV=dotenv-value\nOVERRIDDEN=dotenv-loses\nEMPTY_IN_DOTENV=\n")
    (project / "app.env").write_text("# the service's own file\nAPP_MODE=env-file ${FROM_DOTENV}\nAPP_QUOTED='literal ${FROM_DOTENV}'\n")
    shell = {"SHELL_ONLY": "from-shell", "OVERRIDDEN": "shell-wins", "INHERITED": "inherited-from-shell"}
    compose = str(project / "compose.yaml")

    done = cluster.cli("deploy", "-c", compose, "--name", "vars", "--detach", env=shell)
    assert "the variable NOT_SET_ANYWHERE is not set; an empty string is used in its place" in done.stderr
    [task] = cluster.wait_running("vars_web", 1)
    [container] = cluster.containers(service="vars_web")
    env = dict(line.split("=", 1) for line in container.attrs["Config"]["Env"])
    assert {key: env.get(key) for key in EXPECTED_ENV} == EXPECTED_ENV
    assert container.attrs["Config"]["Cmd"] == ["sh", "-c", "echo started as $(hostname) with ${#PLAIN} chars; exec httpd -f -p 8080 -h /www"]
    assert container.attrs["Config"]["Image"] == "corral-demo:latest"
    hostname = container.attrs["Config"]["Hostname"]
    wait_until(lambda: f"started as {hostname} with 10 chars" in container.logs().decode(), 20, what="the shell's own expansion")

    # `:?` refuses the deploy with its message, and nothing changes
    refused = cluster.cli("deploy", "-c", compose, "--name", "vars", "--detach", check=False, env={**shell, "SHELL_ONLY": ""})
    assert refused.returncode == 1
    assert "services.web.environment.REQUIRED: required variable SHELL_ONLY is empty: SHELL_ONLY must be set" in refused.stderr
    assert "services.web.environment.PLAIN" not in refused.stderr  # an empty value is no error where no `:?` asks
    time.sleep(1)
    assert [t["id"] for t in cluster.running_tasks("vars_web")] == [task["id"]]

    # the dry run of a changed variable names the one field that changes
    dry = cluster.cli("deploy", "-c", compose, "--name", "vars", "--dry-run", env={**shell, "OVERRIDDEN": "changed"})
    assert "~ would update service vars_web" in dry.stdout
    assert '    environment.OVERRIDDEN: "shell-wins" -> "changed"' in dry.stdout
    assert dry.stdout.count(" -> ") == 1
