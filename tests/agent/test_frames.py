"""Docker's multiplexed frames decoded from chunks cut anywhere, and turned into timestamped lines per stream."""

import struct

from corral.agent.engines.frames import Frame, FrameDecoder, LineSplitter, LogLine, split_timestamp


def frame(kind: int, data: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + struct.pack(">I", len(data)) + data


def test_frames_cut_at_every_byte_come_out_whole_and_in_order() -> None:
    wire = frame(1, b"one\n") + frame(2, b"two\n") + frame(1, b"") + frame(1, b"x" * 70000)
    for size in (1, 3, 8, 9, 4096, len(wire)):
        decoder = FrameDecoder()
        frames = [f for start in range(0, len(wire), size) for f in decoder.feed(wire[start:start + size])]
        assert frames == [Frame("stdout", b"one\n"), Frame("stderr", b"two\n"), Frame("stdout", b""), Frame("stdout", b"x" * 70000)]
        assert decoder.pending == 0


def test_an_unfinished_frame_is_held_back() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame(2, b"hello")[:-2]) == []
    assert decoder.pending == 11
    assert decoder.feed(b"lo") == [Frame("stderr", b"hello")]


def test_lines_are_split_per_stream_and_keep_their_timestamp() -> None:
    splitter = LineSplitter()
    stamp = "2026-12-02T13:46:46.123456789Z"
    assert splitter.feed(Frame("stdout", f"{stamp} a line\n{stamp} half".encode())) == [LogLine("stdout", stamp, "a line")]
    assert splitter.feed(Frame("stderr", f"{stamp} oops\n".encode())) == [LogLine("stderr", stamp, "oops")]
    assert splitter.feed(Frame("stdout", b" done\r\n")) == [LogLine("stdout", stamp, "half done")]
    assert splitter.feed(Frame("stdout", f"{stamp} no newline".encode())) == []
    assert splitter.flush() == [LogLine("stdout", stamp, "no newline")]
    assert splitter.flush() == []


def test_bytes_that_are_not_utf8_do_not_break_the_stream() -> None:
    [line] = LineSplitter(timestamps=False).feed(Frame("stdout", b"\xff\xfe bad\n"))
    assert line.text.endswith(" bad") and line.time == ""


def test_a_line_without_a_timestamp_is_kept_whole() -> None:
    assert split_timestamp("hello world") == ("", "hello world")
    assert split_timestamp("2026-12-02T13:46:46Z x") == ("2026-12-02T13:46:46Z", "x")
