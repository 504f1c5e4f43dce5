"""A real etcd (Debian's etcd-server) for tests: one member, or a cluster, on loopback ports with a temp data dir.

Members are started the way `corral up --managers N` starts them (corral/store/etcd/local.py); each is stopped by
the PID it was started with (SIGKILL, then waited for), and the temp dir removed, even when a test failed.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path

from corral.model.etcd_tls import EtcdTlsFiles
from corral.pki.etcd_certs import ensure_etcd_certificates

from corral.store.etcd.local import EtcdCluster as LocalEtcd
from corral.store.etcd.local import EtcdMember

__all__ = ["EtcdCluster", "EtcdMember", "start_etcd"]


class EtcdCluster(LocalEtcd):
    """A local etcd cluster in a temp dir that `stop` also removes."""

    def stop(self, sig: int = signal.SIGKILL) -> None:
        super().stop(sig)
        shutil.rmtree(self.root, ignore_errors=True)


def start_etcd(size: int = 1, extra: list[str] | None = None, tls: bool = True) -> EtcdCluster:
    """Start `size` members on free loopback ports; the caller stops them (`stop`), in a finally.

    TLS by default, as `corral up --managers N` runs them (client and peer certificates required; `cluster.url`
    carries the client certificate's options); `tls=False`: plain HTTP, as an operator's own etcd may be."""
    root = Path(tempfile.mkdtemp(prefix="corral-etcd-"))
    files = ensure_etcd_certificates(EtcdTlsFiles(root / "tls"), time.time()) if tls else None
    planned = LocalEtcd.at(root, size, extra, files)
    cluster = EtcdCluster(planned.members, planned.root, planned.extra, tls=planned.tls)
    cluster.start_all()
    return cluster
