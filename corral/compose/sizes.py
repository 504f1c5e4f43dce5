"""Compose byte sizes (`512m`, `1g`, `64M`, `1024k`, `1gb`, `100b`, a number of bytes) as bytes.

Units are powers of 1024 whatever their spelling (`k`, `kb`, `KiB`), as in
docker's RAMInBytes, which Compose uses for memory amounts.
"""

import re
from decimal import Decimal

from corral.compose.values import show
from corral.model.errors import InvalidSpec

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:([kmgtp])i?)?b?", re.IGNORECASE)
_MULTIPLIERS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_MAX_BYTES = 2**63 - 1  # what docker (an int64) can take
_EXPECTED = "expected e.g. 512m, 1g, 64M, 1024k or a whole number of bytes"


def parse_bytes(value: object, path: str) -> int:
    """Bytes in `value`: a size string with an optional unit, or a whole number of bytes."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidSpec(path, f"must be a byte size: {_EXPECTED}")
    size = value if isinstance(value, int) else _parse_text(value, path)
    if size < 0:
        raise InvalidSpec(path, f"invalid size {show(value)}: must not be negative")
    if size > _MAX_BYTES:
        raise InvalidSpec(path, f"invalid size {show(value)}: must be at most {_MAX_BYTES} bytes")
    return size


def _parse_text(text: str, path: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise InvalidSpec(path, f"invalid size {show(text)}: {_EXPECTED}")
    number, unit = match.groups()
    return int(Decimal(number) * _MULTIPLIERS.get((unit or "").lower(), 1))
