"""The hijacked exec start of engines/docker_attach.py: the request it writes and the answers it takes."""

import json

import pytest

from corral.agent.engines.base import EngineError
from corral.agent.engines.docker_attach import start_request, status_of


@pytest.mark.parametrize("tty", [True, False])
def test_the_start_request_asks_for_the_connection(tty: bool) -> None:
    head, _, body = start_request("abc123", tty).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /exec/abc123/start HTTP/1.1"
    assert {"Connection: Upgrade", "Upgrade: tcp", f"Content-Length: {len(body)}"} <= set(lines[1:])
    assert json.loads(body) == {"Detach": False, "Tty": tty}


def test_status_of_a_response_head() -> None:
    assert status_of(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n") == 101
    assert status_of(b"HTTP/1.0 404 Not Found\r\n\r\n") == 404
    for wrong in (b"", b"garbage\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n"):
        with pytest.raises(EngineError, match="answered the exec start"):
            status_of(wrong)
