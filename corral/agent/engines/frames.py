"""Docker's multiplexed stream format, decoded as it arrives: pure, no I/O.

A non-TTY container's logs and an exec's output come as frames: an 8-byte
header (stream: 1 stdout, 2 stderr; three zero bytes; the payload's length,
4 bytes big-endian) then the payload. Chunks from the socket cut frames
anywhere; `FrameDecoder` keeps the unfinished rest. `LineSplitter` turns
payloads into whole lines per stream (a long line may span frames), and
`split_timestamp` separates the RFC 3339 time Docker puts before a log line
when asked for timestamps.
"""

import struct
from dataclasses import dataclass
from typing import Literal

Stream = Literal["stdout", "stderr"]
_STREAMS: dict[int, Stream] = {0: "stdout", 1: "stdout", 2: "stderr"}
HEADER = 8


@dataclass(frozen=True)
class Frame:
    stream: Stream
    data: bytes


@dataclass(frozen=True)
class LogLine:
    stream: Stream
    time: str  # RFC 3339 with nanoseconds, as the engine stamped it ("" when it did not)
    text: str  # without its newline


class FrameDecoder:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Frame]:
        """The frames completed by `chunk`, in order."""
        buffer = self._buffer
        buffer += chunk
        frames: list[Frame] = []
        start = 0
        while len(buffer) - start >= HEADER:
            kind, size = buffer[start], struct.unpack_from(">I", buffer, start + 4)[0]
            end = start + HEADER + size
            if len(buffer) < end:
                break
            frames.append(Frame(_STREAMS.get(kind, "stdout"), bytes(buffer[start + HEADER:end])))
            start = end
        del buffer[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held back."""
        return len(self._buffer)


class LineSplitter:
    """Whole lines per stream; what follows the last newline waits for the next frame of its stream."""

    def __init__(self, timestamps: bool = True) -> None:
        self._rest: dict[Stream, bytes] = {"stdout": b"", "stderr": b""}
        self._timestamps = timestamps

    def feed(self, frame: Frame) -> list[LogLine]:
        data = self._rest[frame.stream] + frame.data
        *lines, rest = data.split(b"\n")
        self._rest[frame.stream] = rest
        return [self._line(frame.stream, line) for line in lines]

    def flush(self) -> list[LogLine]:
        """The unfinished lines (the stream ended without a newline)."""
        done = [self._line(stream, rest) for stream, rest in self._rest.items() if rest]
        self._rest = {"stdout": b"", "stderr": b""}
        return done

    def _line(self, stream: Stream, raw: bytes) -> LogLine:
        text = raw.decode(errors="replace").removesuffix("\r")
        if not self._timestamps:
            return LogLine(stream, "", text)
        stamp, text = split_timestamp(text)
        return LogLine(stream, stamp, text)


def split_timestamp(text: str) -> tuple[str, str]:
    """'2026-12-02T13:46:46.123456789Z hello' -> ('2026-12-02T13:46:46.123456789Z', 'hello')."""
    stamp, sep, rest = text.partition(" ")
    if sep and len(stamp) >= 20 and stamp[4] == "-" and stamp[10] == "T":
        return stamp, rest
    return "", text
