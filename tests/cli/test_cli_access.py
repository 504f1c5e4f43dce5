"""The CLI's credentials, end to end with a real manager: the data dir found on this machine, `corral token`,
`corral login` pinning the CA (and refusing a changed one), a viewer's refusals, revocation."""

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.processes import stop_process
from tests.tls import verify
from test_manager_stops import CORRAL, _free_port
from test_secrets_stay_out_of_sight import _wait_for


@contextmanager
def manager(data: Path, port: int) -> Iterator[str]:
    url = f"https://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*CORRAL, "manager", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--no-registry"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: httpx.get(url + "/v1/agent/ca", verify=verify(data)).status_code == 200, 30), "no manager"
        yield url
    finally:
        stop_process(proc, 10)


def corral(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`corral ARGS` as a user whose home is `home`: no credentials but what `env` and the profile there give."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    clean.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **env)
    return subprocess.run([*CORRAL, *args], capture_output=True, text=True, timeout=60, env=clean, stdin=subprocess.DEVNULL)


def said(done: subprocess.CompletedProcess) -> str:
    return " ".join((done.stdout + done.stderr).split())


def test_tokens_logins_and_a_pinned_ca(tmp_path: Path) -> None:
    port, home, data = _free_port(), tmp_path / "home", tmp_path / "data"
    home.mkdir()
    with manager(data, port) as url:
        # no token anywhere: 401, and what to do
        bare = corral(home, "service", "ls", "--manager", url, CORRAL_CA=str(data / "ca.pem"))
        assert bare.returncode == 1 and "missing token" in said(bare) and "corral login" in said(bare)

        # on the manager's machine: its data dir's admin token and CA, found by themselves
        local = {"CORRAL_DATA_DIR": str(data)}
        assert corral(home, "service", "ls", "--manager", url, **local).returncode == 0
        assert "admin (admin)" in corral(home, "whoami", "--manager", url, **local).stdout

        made = corral(home, "token", "create", "--role", "viewer", "--name", "ci", "--expires", "30d", "--manager", url, **local)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert token.startswith("corral_") and len(made.stdout.splitlines()) == 1 and "shown this once" in made.stderr
        listed = corral(home, "token", "ls", "--manager", url, **local)
        assert "ci" in listed.stdout and "viewer" in listed.stdout and token not in listed.stdout
        bad = corral(home, "token", "create", "--role", "root", "--name", "x", "--manager", url, **local)
        assert bad.returncode == 1 and "role" in said(bad)

        # another machine: `corral login` shows the CA's fingerprint, asks, and pins it
        asked = corral(home, "login", url, "--token", token)
        assert asked.returncode == 1 and "fingerprint" in said(asked) and "not confirmed" in said(asked)
        assert not (home / ".config" / "corral" / "credentials.json").exists()
        logged = corral(home, "login", url, "--token", token, "--yes")
        assert logged.returncode == 0 and "as ci (viewer)" in logged.stdout, said(logged)
        profile = home / ".config" / "corral" / "credentials.json"
        assert stat.S_IMODE(profile.stat().st_mode) == 0o600
        assert corral(home, "whoami").stdout.startswith("ci (viewer)")  # the URL, token and CA from the profile
        assert corral(home, "service", "ls").returncode == 0
        refused = corral(home, "node", "drain", "n1")
        assert refused.returncode == 1 and "needs the admin role; this token has viewer" in said(refused), said(refused)

        # a login is explicit: it wins over the data dir found on this machine; CORRAL_TOKEN wins over both
        admin = {"CORRAL_TOKEN": (data / "admin-token").read_text().strip()}
        assert corral(home, "whoami", "--manager", url, **local).stdout.startswith("ci (viewer)")
        revoked = corral(home, "token", "revoke", "ci", "--manager", url, **admin)
        assert revoked.returncode == 0 and "revoked ci" in revoked.stdout
        gone = corral(home, "whoami")
        assert gone.returncode == 1 and "was revoked" in said(gone)
        relogged = corral(home, "login", url, "--token", (data / "admin-token").read_text().strip())
        assert relogged.returncode == 0 and "as admin (admin)" in relogged.stdout  # same CA: no question asked

    # a new cluster at the same address: the pinned CA refuses it, login too, until the user logs out
    with manager(tmp_path / "other", port) as url:
        changed = corral(home, "service", "ls")
        assert changed.returncode == 1 and "pinned at `corral login`" in said(changed), said(changed)
        again = corral(home, "login", url, "--token", (tmp_path / "other" / "admin-token").read_text().strip(), "--yes")
        assert again.returncode == 1 and "CHANGED" in said(again)
        assert corral(home, "logout", url).returncode == 0
        fresh = corral(home, "login", url, "--token-file", str(tmp_path / "other" / "admin-token"), "--ca", str(tmp_path / "other" / "ca.pem"))
        assert fresh.returncode == 0 and corral(home, "service", "ls").returncode == 0
