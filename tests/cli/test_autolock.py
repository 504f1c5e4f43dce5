"""`corral manager --autolock`: the secrets' key-encryption key comes from a passphrase that is never stored, so an
autolocked manager's data dir alone opens nothing, and the manager refuses to start without the passphrase."""

import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.processes import stop_process
from tests.tls import admin_headers, verify

from test_manager_stops import CORRAL, _free_port
from test_secrets_stay_out_of_sight import _wait_for

VALUE = b"autolocked-value-5e1f"


def _start(data: Path, port: int, *args: str, key: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_UNLOCK_KEY"}
    if key is not None:
        env["CORRAL_UNLOCK_KEY"] = key
    return subprocess.Popen(
        [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    stop_process(proc, 10)


def _refused(data: Path, port: int, *args: str, key: str | None) -> str:
    """What a manager that must not start says; it exits by itself."""
    proc = _start(data, port, *args, key=key)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    assert proc.returncode != 0, output
    return output


def _serving(url: str, data: Path) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url + "/v1/info", headers=admin_headers(data), verify=verify(data), timeout=2).status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    return check


def _files_hold(data: Path, needle: bytes) -> list[Path]:
    return [path for path in data.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_an_autolocked_manager_needs_its_passphrase_and_the_data_dir_alone_opens_nothing(tmp_path: Path) -> None:
    data, port = tmp_path / "data", _free_port()
    url = f"https://127.0.0.1:{port}"
    serving = _serving(url, data)

    assert "CORRAL_UNLOCK_KEY" in _refused(data, port, "--autolock", key=None)  # no terminal, no key: says how to give it
    assert "at least 8" in _refused(data, port, "--autolock", key="short")
    proc = _start(data, port, "--autolock", key="correct horse battery")
    try:
        assert _wait_for(serving, 30), "the autolocked manager did not start"
        created = httpx.post(
            url + "/v1/secrets", json={"name": "db-password", "data": base64.b64encode(VALUE).decode()},
            headers=admin_headers(data), verify=verify(data),
        )
        assert created.status_code == 201, created.text
    finally:
        _stop(proc)
    assert not (data / "kek").exists()  # nothing in the data dir wraps the data key
    assert _files_hold(data, VALUE) == []

    assert "autolocked" in _refused(data, port, key=None)
    assert "autolock passphrase" in _refused(data, port, "--autolock", key="wrong horse battery")
    key_file = tmp_path / "unlock-key"
    key_file.write_text("correct horse battery\n")
    proc = _start(data, port, "--unlock-key-file", str(key_file), key=None)
    try:
        assert _wait_for(serving, 30), "the manager did not start with the right passphrase from --unlock-key-file"
    finally:
        _stop(proc)


def test_autolock_turns_on_for_a_cluster_that_had_a_key_file(tmp_path: Path) -> None:
    data, port = tmp_path / "data", _free_port()
    url = f"https://127.0.0.1:{port}"
    serving = _serving(url, data)

    for args, key in (((), None), (("--autolock",), "correct horse battery")):
        proc = _start(data, port, *args, key=key)
        try:
            assert _wait_for(serving, 30), f"the manager did not start with {args}"
        finally:
            _stop(proc)
        assert (data / "kek").exists() == (not args)
    assert "autolocked" in _refused(data, port, key=None)
