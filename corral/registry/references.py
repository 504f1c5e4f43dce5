"""Validating what the registry's clients name: repositories, tags, digests, upload ids.

Pure functions. Every name that reaches the file system passes through here
first, and the grammars below admit no '/'-free '..' or absolute path, so a
request cannot walk out of the storage root.
"""

import hashlib
import re
from dataclasses import dataclass

from corral.registry.errors import RegistryError

# The grammars of the OCI Distribution Spec v1.1.
NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
MAX_NAME = 255
# Algorithms we can verify, and the length of their hex encoding.
ALGORITHMS = {"sha256": 64, "sha512": 128}


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> "hashlib._Hash":
        return hashlib.new(self.algorithm)


def parse_digest(value: str) -> Digest:
    """'sha256:<64 hex>' -> Digest; anything else is DIGEST_INVALID (400)."""
    algorithm, sep, encoded = value.partition(":")
    if not sep or algorithm not in ALGORITHMS:
        raise RegistryError("DIGEST_INVALID", f"invalid digest {value!r}: expected sha256:<64 hex> or sha512:<128 hex>", {"digest": value})
    if len(encoded) != ALGORITHMS[algorithm] or not re.fullmatch(r"[0-9a-f]+", encoded):
        raise RegistryError(
            "DIGEST_INVALID", f"invalid digest {value!r}: {algorithm} needs {ALGORITHMS[algorithm]} lowercase hex digits", {"digest": value}
        )
    return Digest(algorithm, encoded)


def digest_of(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}: lowercase components like 'team/app' expected", {"name": name})
    return name


def check_tag(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {tag!r}: at most 128 of [A-Za-z0-9_.-], not starting with '.' or '-'", {"tag": tag})
    return tag


def is_digest(reference: str) -> bool:
    return ":" in reference


def check_upload_id(upload_id: str) -> str:
    if not UPLOAD_ID.fullmatch(upload_id):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id!r} unknown", {"upload": upload_id})
    return upload_id
