import textwrap
from pathlib import Path

import pytest

from corral.compose import parse_compose, read_values
from corral.model import FileReference
from corral.model.errors import InvalidSpec

from compose_helpers import compose_error


def _parse(text: str):  # type: ignore[no-untyped-def]
    return parse_compose(textwrap.dedent(text), "app")


FULL = """
    services:
      web:
        image: img
        secrets:
          - db_password
          - source: api_key
            target: key.txt
            uid: "100"
            gid: 101
            mode: 0400
          - source: shared
            target: /etc/shared
        configs:
          - nginx
          - source: site
            target: /etc/site.conf
            mode: "0440"
    secrets:
      db_password:
        file: ./db_password.txt
      api_key:
        environment: API_KEY
      shared:
        external: true
        name: prod_shared
    configs:
      nginx:
        content: |
          listen 80;
      site:
        file: site.conf
        name: site-v2
"""


def test_top_level_definitions_and_their_stored_names() -> None:
    result = _parse(FULL)
    secrets, configs = result.secrets, result.configs
    assert secrets["db_password"].name == "app_db_password" and secrets["db_password"].file == "./db_password.txt"
    assert secrets["api_key"].environment == "API_KEY"
    assert secrets["shared"].external and secrets["shared"].name == "prod_shared"
    assert configs["nginx"].content == "listen 80;\n" and configs["nginx"].name == "app_nginx"
    assert configs["site"].name == "site-v2"


def test_service_references_in_short_and_long_form() -> None:
    web = _parse(FULL).services[0]
    assert web.secrets == [
        FileReference(source="app_db_password", target="/run/secrets/db_password"),
        FileReference(source="app_api_key", target="/run/secrets/key.txt", uid="100", gid="101", mode=0o400),
        FileReference(source="prod_shared", target="/etc/shared"),
    ]
    assert web.configs == [
        FileReference(source="app_nginx", target="/nginx"),
        FileReference(source="site-v2", target="/etc/site.conf", mode=0o440),
    ]


def test_they_are_no_longer_reported_as_ignored() -> None:
    assert not any("secrets" in w or "configs" in w for w in _parse(FULL).warnings)


def test_a_spec_without_secrets_is_unchanged() -> None:
    web = _parse("services: {web: {image: img}}").services[0]
    assert web.secrets == [] and web.configs == []


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        ("services: {web: {image: i, secrets: [nope]}}", "services.web.secrets[0]", "unknown secret 'nope'"),
        ("services: {web: {image: i, configs: [{source: nope}]}}\nconfigs: {a: {content: x}}", "services.web.configs[0].source", "unknown config 'nope'"),
        ("services: {web: {image: i}}\nsecrets: {s: {file: f, environment: E}}", "secrets.s", "both file: and environment:"),
        ("services: {web: {image: i}}\nsecrets: {s: {}}", "secrets.s", "has no value"),
        ("services: {web: {image: i}}\nsecrets: {s: {content: x}}", "secrets.s.content", "cannot be inline"),
        ("services: {web: {image: i}}\nsecrets: {s: {external: true, file: f}}", "secrets.s", "drop file:"),
        ("services: {web: {image: i}}\nsecrets: {s: {external: yes}}", "secrets.s.external", "true or false"),
        ("services: {web: {image: i}}\nconfigs: {c: {file: ''}}", "configs.c.file", "non-empty"),
        ("services: {web: {image: i}}\nsecrets: {s: {file: f, name: '../x'}}", "secrets.s", "invalid secret name"),
        ("services: {web: {image: i, secrets: [{source: s, mode: 0o1777}]}}\nsecrets: {s: {file: f}}", "services.web.secrets[0].mode", "0777"),
        ("services: {web: {image: i, secrets: [{source: s, uid: root}]}}\nsecrets: {s: {file: f}}", "services.web.secrets[0].uid", "numeric"),
        ("services: {web: {image: i, secrets: [{source: s, tgt: x}]}}\nsecrets: {s: {file: f}}", "services.web.secrets[0].tgt", "unknown key"),
        ("services: {web: {image: i, secrets: [{source: s, target: ../../etc/passwd}]}}\nsecrets: {s: {file: f}}", "services.web.secrets[0].target", "invalid target"),
        ("services: {web: {image: i, secrets: [s, {source: t, target: s}]}}\nsecrets: {s: {file: f}, t: {file: g}}", "services.web.secrets[1]", "already used by services.web.secrets[0]"),
        ("services: {web: {image: i, secrets: s}}\nsecrets: {s: {file: f}}", "services.web.secrets", "must be a list"),
        ("services: {web: {image: i}}\nsecrets: [a]", "secrets", "must be a mapping"),
    ],
)
def test_each_bad_entry_is_named_by_its_path(text: str, path: str, reason: str) -> None:
    error = compose_error(text)
    assert error.path == path
    assert reason in error.reason


def test_the_cli_reads_files_beside_the_compose_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "db_password.txt").write_bytes(b"pw\x00\xff")
    (tmp_path / "site.conf").write_text("server {}")
    result = _parse(FULL)
    values = read_values(result.definitions(), tmp_path, {"API_KEY": "k3y"})
    assert values.secrets == {"app_db_password": b"pw\x00\xff", "app_api_key": b"k3y"}
    assert values.configs == {"site-v2": b"server {}"}  # inline content and external values need no reading
    secrets, configs = values.encoded()
    assert secrets["app_api_key"] == "azN5"


def test_an_unreadable_file_or_unset_variable_names_the_entry(tmp_path: Path) -> None:
    result = _parse(FULL)
    with pytest.raises(InvalidSpec) as missing_file:
        read_values(result.definitions(), tmp_path, {"API_KEY": "k"})
    assert missing_file.value.path == "secrets.db_password.file"
    (tmp_path / "db_password.txt").write_text("x")
    (tmp_path / "site.conf").write_text("x")
    with pytest.raises(InvalidSpec) as unset:
        read_values(result.definitions(), tmp_path, {})
    assert unset.value.path == "secrets.api_key.environment"
    assert "API_KEY is not set" in unset.value.reason
