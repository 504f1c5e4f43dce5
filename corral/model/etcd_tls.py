"""Where the TLS files of a local etcd cluster live (`corral up --managers N`, the tests' etcd): one directory.

Shared by `corral.pki.etcd_certs` (which writes them) and `corral.store.etcd.local` (which starts etcd with
them): the two may not import each other, so the layout is here, below both. The etcd CA is its own, not the
cluster CA (as kubeadm keeps an etcd CA apart): etcd starts before any manager has made the cluster CA, and a
node certificate of the cluster CA must never open etcd.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class EtcdTlsFiles:
    """The etcd CA, the members' certificate (server and peer; SANs 127.0.0.1 and localhost), the managers' client certificate."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca-key.pem"

    @property
    def member_cert(self) -> Path:
        return self.root / "member.pem"

    @property
    def member_key(self) -> Path:
        return self.root / "member-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.root / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.root / "client-key.pem"

    def all(self) -> tuple[Path, ...]:
        return (self.ca, self.ca_key, self.member_cert, self.member_key, self.client_cert, self.client_key)

    def store_options(self) -> str:
        """The store URL's options that make a client of these files: `cacert=...&cert=...&key=...`."""
        return "&".join(
            f"{name}={quote(str(path), safe='/')}"
            for name, path in (("cacert", self.ca), ("cert", self.client_cert), ("key", self.client_key))
        )
