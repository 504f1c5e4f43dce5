"""parse_bytes: Compose byte sizes to bytes (units are powers of 1024)."""

import pytest

from corral.compose.sizes import parse_bytes
from corral.model.errors import InvalidSpec

KIB, MIB, GIB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512m", 512 * MIB),
        ("1g", GIB),
        ("64M", 64 * MIB),
        ("1024k", 1024 * KIB),
        ("100b", 100),
        ("100", 100),
        (100, 100),
        (0, 0),
        ("1kb", KIB),
        ("2mb", 2 * MIB),
        ("1gb", GIB),
        ("1GB", GIB),
        ("1KiB", KIB),
        ("1t", 1024**4),
        ("1.5g", 3 * GIB // 2),
        ("512 m", 512 * MIB),
        (" 1g ", GIB),
    ],
)
def test_parse_bytes(value: object, size: int) -> None:
    assert parse_bytes(value, "p") == size


@pytest.mark.parametrize("value", ["", "m", "1x", "1 gigabyte", "-1m", "1.g", "1e9", "0x10", "１g"])
def test_invalid_size_text(value: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_bytes(value, "services.web.deploy.resources.limits.memory")
    assert caught.value.path == "services.web.deploy.resources.limits.memory"
    assert caught.value.reason.startswith(f"invalid size {value!r}: expected e.g. 512m")


@pytest.mark.parametrize("value", [1.5, True, None, [1], {"m": 1}])
def test_size_of_another_type(value: object) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_bytes(value, "p")
    assert caught.value.reason.startswith("must be a byte size")


def test_negative_and_huge_sizes() -> None:
    with pytest.raises(InvalidSpec, match="must not be negative"):
        parse_bytes(-1, "p")
    with pytest.raises(InvalidSpec, match="must be at most"):
        parse_bytes("9" * 40 + "p", "p")
    with pytest.raises(InvalidSpec, match="must be at most"):
        parse_bytes(10**5000, "p")
