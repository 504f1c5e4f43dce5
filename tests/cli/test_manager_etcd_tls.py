"""`corral manager --etcd-cacert/--etcd-cert/--etcd-key`: folded into the etcd store URL; refused, before anything
starts, when there is no etcd store, when a file cannot be read, or when a certificate comes without its key."""

import time
from pathlib import Path

from typer.testing import CliRunner

from corral.cli.daemons import _store
from corral.cli.main import app
from corral.model.etcd_tls import EtcdTlsFiles
from corral.pki.etcd_certs import ensure_etcd_certificates
from corral.store.etcd import EtcdSettings


def test_the_flags_become_the_store_urls_tls_options(tmp_path: Path) -> None:
    files = ensure_etcd_certificates(EtcdTlsFiles(tmp_path / "tls"), time.time())
    url = _store("etcd://127.0.0.1:2379/p?max-txn-ops=64", files.ca, files.client_cert, files.client_key)
    settings = EtcdSettings.parse(url)
    assert settings.endpoints == ["https://127.0.0.1:2379"] and settings.prefix == "/p/" and settings.max_ops == 64
    assert (settings.cacert, settings.cert, settings.key) == (str(files.ca), str(files.client_cert), str(files.client_key))
    assert _store("etcd://127.0.0.1:2379") == "etcd://127.0.0.1:2379"  # no flags: plain, as before


def test_bad_etcd_tls_flags_are_refused_before_anything_starts(tmp_path: Path) -> None:
    files = ensure_etcd_certificates(EtcdTlsFiles(tmp_path / "tls"), time.time())
    cases = {
        ("--etcd-cacert", str(files.ca)): "--etcd-cacert: TLS to etcd needs an etcd store",
        ("--store", "etcd://127.0.0.1:2379", "--etcd-cert", str(files.client_cert)): "cert and key go together",
        ("--store", "etcd://127.0.0.1:2379", "--etcd-cacert", str(tmp_path / "nope.pem")): "cacert",
    }
    for at, (args, says) in enumerate(cases.items()):
        data_dir = tmp_path / f"d{at}"
        result = CliRunner().invoke(app, ["manager", "--data-dir", str(data_dir), *args])
        shown = " ".join(result.output.split())
        assert result.exit_code != 0 and says in shown, (args, shown)
        assert not data_dir.exists()  # refused before anything started
