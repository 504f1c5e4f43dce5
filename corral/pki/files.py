"""Key and certificate files: written atomically, private ones with mode 0600 from their first byte."""

import os
from pathlib import Path

# The file names in a data dir (here, not in authority.py, so reading them needs no cryptography).
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` atomically (a temporary file renamed over it), created with `mode`.

    The temporary file is opened with the final mode, so a private key is never readable
    by others, not even for an instant; the rename means a crash leaves the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)  # the umask may have cleared bits; a stale temp file kept its own mode
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def write_private(path: Path, data: bytes) -> None:
    write_file(path, data, PRIVATE_MODE)


def write_public(path: Path, data: bytes) -> None:
    write_file(path, data, PUBLIC_MODE)
