"""Listings that can be long: follow the API's pages and print each as it comes (a table, or one JSON array).

A table's columns take their widths from the first page (and widen for a later page that needs more),
so the first rows of 100,000 tasks show after one page, not after all of them. The JSON is the same
text `--output json` always printed (`json.dumps(rows, indent=2)`), written a page at a time.
Light imports only at module level (CLI start-up): the client and the output module come in `stream`, which
asks with the standard-library client (corral/client/plain.py): no httpx, no asyncio for a listing.
"""

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from corral.client import ManagerClient, PlainClient

Columns = Sequence[tuple[str, Callable[[dict[str, Any]], Any]]]
GAP = "  "  # between two columns, as the tables of corral/cli/output.py


class StreamPrinter:
    """Prints rows page by page: `add` each page, `end` once."""

    def __init__(self, output: str, columns: Columns, out: TextIO | None = None) -> None:
        self.output = output
        self.columns = columns
        self.out = out if out is not None else sys.stdout
        self.widths: list[int] | None = None
        self.rows = 0

    def add(self, page: Sequence[dict[str, Any]]) -> None:
        if self.output == "json":
            for row in page:
                text = json.dumps(row, indent=2).replace("\n", "\n  ")
                self.out.write(("[\n  " if self.rows == 0 else ",\n  ") + text)
                self.rows += 1
        else:
            cells = [[str(get(row)) for _, get in self.columns] for row in page]
            if self.widths is None:
                self.widths = [len(title) for title, _ in self.columns]
                self._widen(cells)
                self._line([title for title, _ in self.columns])
            else:
                self._widen(cells)
            for line in cells:
                self._line(line)
            self.rows += len(page)
        self.out.flush()

    def end(self) -> None:
        if self.output == "json":
            self.out.write("[]\n" if self.rows == 0 else "\n]\n")
        elif self.widths is None:  # no page at all: the header alone
            self.add([])
        self.out.flush()

    def _widen(self, cells: list[list[str]]) -> None:
        assert self.widths is not None
        for line in cells:
            self.widths = [max(width, len(cell)) for width, cell in zip(self.widths, line)]

    def _line(self, cells: list[str]) -> None:
        assert self.widths is not None
        self.out.write(GAP.join(cell.ljust(width) for cell, width in zip(cells, self.widths)).rstrip() + "\n")


def stream(manager: str | None, path: str, output: str, columns: Columns, **params: Any) -> None:
    """Print the listing at `path` (with `params` as filters) page by page."""
    from corral.cli.output import call_plain  # lazy: CLI start-up

    printer = StreamPrinter(output, columns)

    def run(client: "PlainClient") -> None:
        for page in client.pages(path, **params):
            printer.add(page)
        printer.end()

    call_plain(manager, run)


async def collect(client: "ManagerClient", path: str, **params: Any) -> list[Any]:
    """Every item of a paged listing, for commands that must see all rows before they print."""
    items: list[Any] = []
    async for page in client.pages(path, **params):
        items += page
    return items
