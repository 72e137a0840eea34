"""``voxbench serve`` on 127.0.0.1 (a real uvicorn, espeak behind it) answers generated raw
HTTP requests (methods, paths, headers, framing, bodies) with 2xx or a 4xx in OpenAI's error
shape, never a 5xx and never silence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given

from support.fuzzing import ACCEPTED, REJECTED, check_answer, http_requests, send_raw, speech_bodies
from voxbench.engines.registry import EngineSpec
from voxbench.load.serve import SPEECH_PATH, Limits, ServerThread

pytestmark = pytest.mark.usefixtures("no_default_keys")
LIMITS = Limits(header_timeout_s=2.0, body_timeout_s=2.0)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(EngineSpec("espeak"), limits=LIMITS, concurrency=2) as running:
        yield running


def _address(server: ServerThread) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@given(request=http_requests(SPEECH_PATH, speech_bodies))
def test_generated_requests_never_get_a_5xx(server: ServerThread, request: bytes) -> None:
    status, answer = send_raw(*_address(server), request)
    assert status != 0, f"no answer to {request[:200]!r}"
    assert check_answer(status, answer) in (ACCEPTED, REJECTED)


def test_known_answers(server: ServerThread) -> None:
    good = b'{"input": "Hello.", "response_format": "pcm"}'
    head = f"POST {SPEECH_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
    status, answer = send_raw(
        *_address(server), f"{head}Content-Length: {len(good)}\r\n\r\n".encode() + good
    )
    assert status == 200 and check_answer(status, answer) == ACCEPTED
    bad = b'{"input": 5}'
    status, answer = send_raw(
        *_address(server), f"{head}Content-Length: {len(bad)}\r\n\r\n".encode() + bad
    )
    assert status == 400 and check_answer(status, answer) == REJECTED
    assert b"input must be a non-empty string" in answer
