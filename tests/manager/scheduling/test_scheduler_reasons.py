"""How amounts are written in the reasons of unplaced tasks."""

import pytest

from corral.manager.scheduling.reasons import format_cpus, format_memory


@pytest.mark.parametrize(
    ("cpus", "text"), [(2, "2 CPUs"), (1, "1 CPU"), (0.5, "0.5 CPUs"), (1.25, "1.25 CPUs"), (16.0, "16 CPUs")]
)
def test_format_cpus(cpus: float, text: str) -> None:
    assert format_cpus(cpus) == text


@pytest.mark.parametrize(
    ("memory", "text"),
    [
        (512, "512B"),
        (1024, "1KiB"),
        (512 << 20, "512MiB"),
        (1536 << 20, "1.5GiB"),
        (4 << 30, "4GiB"),
        (100_000_000, "95.37MiB"),
        (3 << 40, "3TiB"),
    ],
)
def test_format_memory(memory: int, text: str) -> None:
    assert format_memory(memory) == text
