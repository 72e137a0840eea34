"""``voxbench serve`` defends itself: 127.0.0.1 by default, body and text limits, slow clients cut
off, malformed requests answered 4xx in OpenAI's error shape. A real uvicorn on 127.0.0.1 with
espeak behind it, driven by raw sockets and httpx."""

from __future__ import annotations

import inspect
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from voxbench.engines.registry import EngineSpec
from voxbench.load import serve as serve_module
from voxbench.load.serve import SPEECH_PATH, Limits, ServerThread
from voxbench.load.serve_checks import DEFAULT_MAX_JSON_BYTES, DEFAULT_MAX_TEXT_CHARS

pytestmark = pytest.mark.usefixtures("no_default_keys")
LIMITS = Limits(max_json_bytes=2000, max_text_chars=50, header_timeout_s=1.0, body_timeout_s=1.0)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(EngineSpec("espeak"), limits=LIMITS) as running:
        yield running


def _address(server: ServerThread) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _post(server: ServerThread, body: bytes, ctype: str = "application/json") -> httpx.Response:
    return httpx.post(server.url, content=body, headers={"Content-Type": ctype}, timeout=30)


def _error(response: httpx.Response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"


def test_listens_on_loopback_unless_told() -> None:
    assert inspect.signature(serve_module.serve).parameters["host"].default == "127.0.0.1"
    from voxbench.cli.load import serve as cli_serve

    assert inspect.signature(cli_serve).parameters["host"].default == "127.0.0.1"
    assert (DEFAULT_MAX_JSON_BYTES, DEFAULT_MAX_TEXT_CHARS) == (2**20, 5000)


def test_limits_must_be_positive() -> None:
    from voxbench.errors import ConfigError

    with pytest.raises(ConfigError, match="max_text_chars must be a positive number"):
        Limits(max_text_chars=0)


def test_text_longer_than_the_limit_is_refused(server: ServerThread) -> None:
    ok = _post(server, json.dumps({"input": "a" * 50, "response_format": "pcm"}).encode())
    assert ok.status_code == 200 and len(ok.content) > 0
    _error(_post(server, json.dumps({"input": "a" * 51}).encode()), 400, "at most 50")


def test_body_over_the_limit_is_refused_before_it_is_read(server: ServerThread) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(
            f"POST {SPEECH_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 2000000000\r\n\r\n".encode()
        )  # the head of a 2 GB body, and none of it
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"takes at most 2000" in answer and b"connection: close" in answer.lower()
    chunked = httpx.post(server.url, content=iter([b"[" * 1500, b"1" * 1500]), timeout=10)
    _error(chunked, 413, "larger than the 2000 bytes")


@pytest.mark.parametrize(
    ("body", "ctype", "status", "needle"),
    [
        (b"{not json", "application/json", 400, "not JSON"),
        (b"[" * 1500, "application/json", 400, "not JSON"),
        (b"\xff\xfe", "application/json", 400, "not JSON"),
        (b'["input"]', "application/json", 400, "a JSON object"),
        (b'{"input": "hi", "colour": 1}', "application/json", 400, "unknown field 'colour'"),
        (b'{"input": ""}', "application/json", 400, "non-empty string"),
        (b'{"input": 5}', "application/json", 400, "non-empty string"),
        (b'{"input": "a\\ud800"}', "application/json", 400, "unpaired surrogate"),
        (b'{"input": "a\\u0000"}', "application/json", 400, "NUL"),
        (b'{"input": "hi", "stream": "yes"}', "application/json", 400, "stream must be"),
        (
            b'{"input": "hi", "response_format": ["wav"]}',
            "application/json",
            400,
            "response_format",
        ),
        (b'{"input": "hi", "speed": "fast"}', "application/json", 400, "speed"),
        (b'{"input": "hi"}', "text/plain", 415, "not JSON"),
    ],
)
def test_malformed_requests_get_a_4xx_json_error(
    server: ServerThread, body: bytes, ctype: str, status: int, needle: str
) -> None:
    _error(_post(server, body, ctype), status, needle)


def test_unknown_paths_and_methods_answer_in_the_same_shape(server: ServerThread) -> None:
    _error(httpx.get(server.base_url + "/nope"), 404, "Not Found")
    wrong = httpx.get(server.url)
    _error(wrong, 405, "Method Not Allowed")
    assert wrong.headers["allow"] == "POST"


def _closed_after(sock: socket.socket, send: bytes, every_s: float, limit_s: float) -> float:
    """Send ``send`` one byte every ``every_s``; seconds until the server closed the socket."""
    start = time.monotonic()
    for byte in send:
        try:
            sock.sendall(bytes([byte]))
            sock.settimeout(every_s)
            if sock.recv(1) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        if time.monotonic() - start > limit_s:
            break
    raise AssertionError(f"still open after {time.monotonic() - start:.1f} s")


def test_slowloris_head_is_cut_off(server: ServerThread) -> None:
    head = f"POST {SPEECH_PATH} HTTP/1.1\r\nHost: x\r\n" + "X-Slow: " + "a" * 100
    with socket.create_connection(_address(server)) as sock:
        took = _closed_after(sock, head.encode(), every_s=0.1, limit_s=5)
    assert 1.0 <= took < 2.0  # header_timeout_s 1 s, checked every 0.25 s


def test_silent_connection_is_cut_off(server: ServerThread) -> None:
    with socket.create_connection(_address(server)) as sock:
        sock.settimeout(5)
        start = time.monotonic()
        assert sock.recv(1) == b""
        assert 1.0 <= time.monotonic() - start < 2.0


def test_slow_body_is_cut_off(server: ServerThread) -> None:
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(
            f"POST {SPEECH_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n".encode()
        )
        took = _closed_after(sock, b'{"input": "' + b"a" * 400, every_s=0.1, limit_s=5)
    assert 1.0 <= took < 2.0


def test_a_busy_keep_alive_connection_is_not_cut(server: ServerThread) -> None:
    """The deadlines are per request: many quick requests on one connection go on for longer
    than the header timeout."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        start = time.monotonic()
        statuses = []
        while time.monotonic() - start < 2.5:
            statuses.append(client.get("/health").status_code)
            time.sleep(0.05)
        assert set(statuses) == {200} and len(statuses) > 10
        assert client.get("/health").status_code == 200
