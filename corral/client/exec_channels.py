"""The wire protocol of an interactive command run (`corral exec -i/-t`), the same on both hops (CLI <-> manager <-> agent).

A WebSocket carries it. The caller's first message is text, the session to start:
`{"command": [...], "tty": bool, "stdin": bool, "rows": N, "cols": N}` (rows/cols: the terminal's size, for a tty).
Every later message is binary: one channel byte, then the payload (as Kubernetes' `v5.channel.k8s.io`):

- 0 stdin (caller -> container), 1 stdout, 2 stderr (container -> caller; with a tty everything is stdout);
- 3 status (-> caller, last): JSON `{"exit_code": N}`, or `{"error": "..."}` when the command could not run;
- 4 resize (caller ->): JSON `{"rows": N, "cols": N}`;
- 255 close (caller ->): one more byte, the channel closed (0: stdin is at its end, e.g. `echo hi | corral exec -i`).

Pure functions: the hops relay messages they do not need to understand whole.
"""

import json
from dataclasses import dataclass
from typing import Any

STDIN = 0
STDOUT = 1
STDERR = 2
STATUS = 3
RESIZE = 4
CLOSE = 255
CHANNELS = frozenset({STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE})

MAX_COMMAND_ARGS = 1024
MAX_START_BYTES = 64 * 1024
MAX_SIZE = 10_000  # rows or columns of a terminal: more is a mistake


@dataclass(frozen=True)
class Session:
    command: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    rows: int | None = None
    cols: int | None = None

    def start_message(self) -> str:
        return json.dumps({"command": list(self.command), "tty": self.tty, "stdin": self.stdin, "rows": self.rows, "cols": self.cols})


def _size(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SIZE:
        raise ValueError(f"{name}: {value!r} is not a whole number from 1 to {MAX_SIZE}")
    return value


def parse_start(text: str | bytes) -> Session:
    """The session a start message asks for; ValueError naming what is wrong."""
    if len(text) > MAX_START_BYTES:
        raise ValueError(f"the start message is larger than {MAX_START_BYTES} bytes")
    try:
        raw = json.loads(text)
    except ValueError:
        raise ValueError("the start message is not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("the start message is not a JSON object")
    unknown = set(raw) - {"command", "tty", "stdin", "rows", "cols"}
    if unknown:
        raise ValueError(f"the start message has unknown fields: {', '.join(sorted(unknown))}")
    command = raw.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(each, str) for each in command):
        raise ValueError("command: a non-empty list of strings is needed (the program and its arguments)")
    if len(command) > MAX_COMMAND_ARGS:
        raise ValueError(f"command: more than {MAX_COMMAND_ARGS} arguments")
    for flag in ("tty", "stdin"):
        if not isinstance(raw.get(flag, False), bool):
            raise ValueError(f"{flag}: {raw[flag]!r} is not true or false")
    return Session(
        command=tuple(command), tty=raw.get("tty", False), stdin=raw.get("stdin", False),
        rows=_size(raw.get("rows"), "rows"), cols=_size(raw.get("cols"), "cols"),
    )


def message(channel: int, payload: bytes = b"") -> bytes:
    return bytes((channel,)) + payload


def resize(rows: int, cols: int) -> bytes:
    return message(RESIZE, json.dumps({"rows": rows, "cols": cols}).encode())


def status(exit_code: int | None = None, error: str | None = None) -> bytes:
    body: dict[str, Any] = {"error": error} if error is not None else {"exit_code": exit_code}
    return message(STATUS, json.dumps(body).encode())


def close_stdin() -> bytes:
    return message(CLOSE, bytes((STDIN,)))


def split(data: bytes) -> tuple[int, bytes]:
    """The channel and payload of a binary message; ValueError for an empty message or an unknown channel."""
    if not data:
        raise ValueError("an empty message (a channel byte is needed)")
    if data[0] not in CHANNELS:
        raise ValueError(f"unknown channel {data[0]}")
    return data[0], data[1:]


def parse_resize(payload: bytes) -> tuple[int, int]:
    """(rows, cols) of a resize payload; ValueError naming what is wrong."""
    try:
        raw = json.loads(payload)
    except ValueError:
        raise ValueError("resize: not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("resize: not a JSON object")
    rows, cols = _size(raw.get("rows"), "rows"), _size(raw.get("cols"), "cols")
    if rows is None or cols is None:
        raise ValueError("resize: rows and cols are both needed")
    return rows, cols


def parse_status(payload: bytes) -> tuple[int | None, str | None]:
    """(exit code, error) of a status payload: one of them is set."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return None, f"a status that is not JSON: {payload[:200]!r}"
    if isinstance(raw, dict) and isinstance(raw.get("error"), str):
        return None, raw["error"]
    if isinstance(raw, dict) and isinstance(raw.get("exit_code"), int):
        return int(raw["exit_code"]), None
    return None, f"a status with neither exit_code nor error: {raw!r}"
