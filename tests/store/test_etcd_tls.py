"""TLS to etcd, against a real etcd-server started as `corral up --managers N` starts it: client certificates
required (`--client-cert-auth`). A client without the certificate, or with one of another CA, or that does not
trust etcd's CA, is refused and writes nothing; the store URL's TLS options are checked before any request."""

import time
from pathlib import Path

import pytest

from corral.model.errors import InvalidSpec, StoreUnavailable
from corral.model.etcd_tls import EtcdTlsFiles
from corral.pki.etcd_certs import ensure_etcd_certificates
from corral.store import open_store
from corral.store.etcd import EtcdSettings
from corral.store.etcd.local import EtcdCluster as LocalEtcd
from tests.etcd_server import EtcdCluster


def _plain(etcd: EtcdCluster, prefix: str) -> str:
    return etcd.store_url(prefix).split("?")[0]


async def test_a_client_without_the_client_certificate_is_refused(etcd: EtcdCluster, tmp_path: Path) -> None:
    assert etcd.tls is not None and etcd.url.startswith("etcd://") and "cert=" in etcd.url
    other = ensure_etcd_certificates(EtcdTlsFiles(tmp_path / "other"), time.time())  # another etcd CA and its client
    base = _plain(etcd, "tls-refused")
    refused = {
        "plain HTTP": (base, "drops plain requests"),
        "no client certificate": (f"{base}?cacert={etcd.tls.ca}", "without a certificate"),
        "a client certificate of another CA": (
            f"{base}?cacert={etcd.tls.ca}&cert={other.client_cert}&key={other.client_key}", "client certificate"
        ),
        "etcd's CA not trusted": (f"{base}?cacert={other.ca}&cert={etcd.tls.client_cert}&key={etcd.tls.client_key}", "certificate verify failed"),
    }
    for case, (url, says) in refused.items():
        with pytest.raises(StoreUnavailable) as refusal:
            await open_store(url)
        assert says in str(refusal.value), (case, str(refusal.value))

    store = await open_store(etcd.store_url("tls-refused"))  # the certificate `corral up` gives the managers
    try:
        assert await store.get("anything") is None  # nothing was written by the refused clients
        assert (await store.range(""))[0] == []
        revision = await store.put("k", {"v": 1})
        assert (await store.get("k")).mod_revision == revision  # type: ignore[union-attr]
    finally:
        await store.close()


def test_the_store_url_tls_options(tmp_path: Path) -> None:
    files = ensure_etcd_certificates(EtcdTlsFiles(tmp_path / "tls"), time.time())
    settings = EtcdSettings.parse(f"etcd://127.0.0.1:2379,127.0.0.1:2380/p?{files.store_options()}&max-txn-ops=64")
    assert settings.endpoints == ["https://127.0.0.1:2379", "https://127.0.0.1:2380"]
    assert (settings.cacert, settings.cert, settings.key, settings.max_ops) == (str(files.ca), str(files.client_cert), str(files.client_key), 64)
    assert EtcdSettings.parse("etcd://127.0.0.1:2379").endpoints == ["http://127.0.0.1:2379"]  # a user's own etcd, plain
    settings.client()  # the files load

    bad = {
        f"etcd://h:1?cert={files.client_cert}": "cert and key go together",
        f"etcd://h:1?cacert={files.ca}&cert={files.client_cert}&key={tmp_path}/missing.pem": "key",
        f"etcd://h:1?cacert={files.client_key}": "cacert",
        f"etcd://h:1?cacert={files.ca}&cert={files.client_cert}&key={files.member_key}": "cert",
        "etcd://h:1?certificate=x": "unknown option 'certificate'",
    }
    for url, names in bad.items():
        with pytest.raises(InvalidSpec) as refusal:
            EtcdSettings.parse(url).client()
        assert names in refusal.value.reason, (url, refusal.value.reason)
    assert oct(files.client_key.stat().st_mode & 0o777) == "0o600" and oct(files.ca_key.stat().st_mode & 0o777) == "0o600"
    before = files.ca.read_bytes()
    assert ensure_etcd_certificates(files, time.time()).ca.read_bytes() == before  # kept: a restarted cluster trusts the same


def test_a_local_cluster_made_without_tls_is_not_started_with_it(tmp_path: Path) -> None:
    files = ensure_etcd_certificates(EtcdTlsFiles(tmp_path / "tls"), time.time())
    plain = LocalEtcd.at(tmp_path / "plain", 3)
    assert plain.url.startswith("etcd://127.0.0.1:") and "cacert" not in plain.url
    with pytest.raises(ValueError, match="made with http peer URLs, and is now asked for https"):
        LocalEtcd.at(tmp_path / "plain", 3, tls=files)
    made = LocalEtcd.at(tmp_path / "tls-made", 3, tls=files)
    again = LocalEtcd.at(tmp_path / "tls-made", 3, tls=files)  # the same members and ports, as `corral up` again
    assert again.url == made.url and f"cacert={files.ca}" in again.url
