"""TLS to etcd: the client context made from the store URL's `cacert`, `cert` and `key` options.

As etcdctl's --cacert/--cert/--key (kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile): the CA that
signed the members' certificates (trusted alone, not the system's store), and the client certificate etcd asks
for under `--client-cert-auth`. Every file is read when the store is opened; one that cannot be read or does not
hold what it should is an InvalidSpec naming the option and the file, before any request is sent.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from corral.model.errors import InvalidSpec


def client_context(cacert: str, cert: str, key: str) -> ssl.SSLContext:
    """A TLS 1.2+ client context trusting `cacert` (the system's CAs when empty), presenting `cert`/`key` if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cacert:
        _readable("cacert", cacert)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_verify_locations(cafile=cacert)
        except ssl.SSLError as err:
            raise InvalidSpec("store", f"cacert {cacert}: not a PEM CA certificate ({err.reason or err})") from None
    if cert:
        _readable("cert", cert)
        _readable("key", key)
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as err:
            raise InvalidSpec("store", f"cert {cert} and key {key}: not a PEM certificate and its private key ({err.reason or err})") from None
    return context


def _readable(option: str, path: str) -> None:
    try:
        Path(path).read_bytes()
    except OSError as err:
        raise InvalidSpec("store", f"{option} {path}: cannot be read ({err.strerror or err})") from None
