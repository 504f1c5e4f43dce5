"""The exec session protocol (`corral exec -i/-t`): start messages, channel messages, and what is refused."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.client import exec_channels as channels


def test_a_start_message_round_trips() -> None:
    session = channels.Session(command=("sh", "-c", "echo ü"), tty=True, stdin=True, rows=33, cols=101)
    assert channels.parse_start(session.start_message()) == session
    assert channels.parse_start('{"command": ["cat"]}') == channels.Session(command=("cat",))


@pytest.mark.parametrize(("text", "says"), [
    ("not json", "not JSON"),
    ("[1]", "not a JSON object"),
    ('{"command": []}', "command"),
    ('{"command": "sh"}', "command"),
    ('{"command": ["sh", 1]}', "command"),
    ('{"command": ["sh"], "tty": "yes"}', "tty"),
    ('{"command": ["sh"], "stdin": 1}', "stdin"),
    ('{"command": ["sh"], "rows": 0}', "rows"),
    ('{"command": ["sh"], "cols": 1e9}', "cols"),
    ('{"command": ["sh"], "rows": true}', "rows"),
    ('{"command": ["sh"], "shell": true}', "unknown fields: shell"),
    (json.dumps({"command": ["x"] * 1025}), "more than 1024"),
    (json.dumps({"command": ["x" * 70_000]}), "larger than"),
])
def test_a_wrong_start_message_is_refused_naming_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        channels.parse_start(text)


@given(channel=st.sampled_from(sorted(channels.CHANNELS)), payload=st.binary(max_size=300))
def test_a_message_splits_into_its_channel_and_payload(channel: int, payload: bytes) -> None:
    assert channels.split(channels.message(channel, payload)) == (channel, payload)


def test_empty_and_unknown_channel_messages_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        channels.split(b"")
    with pytest.raises(ValueError, match="unknown channel 9"):
        channels.split(b"\x09data")


def test_resize_status_and_close_messages() -> None:
    channel, payload = channels.split(channels.resize(40, 120))
    assert channel == channels.RESIZE and channels.parse_resize(payload) == (40, 120)
    for wrong, says in ((b"{}", "both needed"), (b'{"rows": 4, "cols": -1}', "cols"), (b"x", "not JSON"), (b"[]", "object")):
        with pytest.raises(ValueError, match=says):
            channels.parse_resize(wrong)
    channel, payload = channels.split(channels.status(exit_code=3))
    assert channel == channels.STATUS and channels.parse_status(payload) == (3, None)
    assert channels.parse_status(channels.split(channels.status(error="no such task"))[1]) == (None, "no such task")
    assert channels.parse_status(b"{}")[1] is not None and channels.parse_status(b"zz")[1] is not None
    assert channels.split(channels.close_stdin()) == (channels.CLOSE, bytes((channels.STDIN,)))
