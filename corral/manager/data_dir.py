"""The manager's data dir is private: the dir 0700, every file in it 0600.

It holds what a stranger must not read: the join token, the store (every
spec, with its environment) and its SQLite -wal/-shm files, any log kept
there. `prepare` makes it so at every start, also for a dir made before
(by an older version, or by hand with the usual umask). The store file is
made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
mode of the database file.
"""

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def prepare(data_dir: Path, store_file: Path | None = None) -> None:
    """Make (or tighten) the data dir and its files; `store_file`: a SQLite store to create 0600 when missing."""
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    data_dir.chmod(DIR_MODE)
    for entry in data_dir.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) & ~FILE_MODE:
            entry.chmod(FILE_MODE)
    if store_file is not None and store_file.parent == data_dir and not store_file.exists():
        os.close(os.open(store_file, os.O_WRONLY | os.O_CREAT, FILE_MODE))  # an empty file is an empty SQLite db
