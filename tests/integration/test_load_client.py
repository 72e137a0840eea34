"""voxbench's own HTTP/1.1 load client against a scripted raw server on 127.0.0.1.

Every response framing a speech server may use (Content-Length, chunked with extensions and
trailers, 1xx, close-delimited, HTTP/1.0, 204) is delivered whole, byte by byte and in random
pieces; each must give the same record. Broken answers must be errors of the right kind.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading

import pytest

from voxbench.load.client import Target, run_level
from voxbench.load.metrics import summarize_level
from voxbench.load.schedule import Level
from voxbench.results.validity import MIN_SAMPLES

random.seed(7)


def wav(samples, rate=16000, size_unknown=False):
    data = b"\x00\x01" * samples
    n = 0xFFFFFFFF if size_unknown else len(data)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF if size_unknown else 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", n)
        + data
    )


BODY = wav(1600)  # 0.1 s


def chunked(body, pieces=3, ext=False, trailer=False):
    size = -(-len(body) // pieces)
    out = b""
    for k in range(0, len(body), size):
        p = body[k : k + size]
        out += b"%x%s\r\n%s\r\n" % (len(p), b";foo=bar" if ext else b"", p)
    return out + b"0\r\n" + (b"X-Trailer: 1\r\n" if trailer else b"") + b"\r\n"


SCENARIOS = {
    "cl": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        + BODY,
        True,
    ),
    "chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(BODY, 5),
        True,
    ),
    "chunked_ext_trailer": (
        b"HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\ntransfer-encoding: Chunked\r\n\r\n"
        + chunked(BODY, 4, True, True),
        True,
    ),
    "continue": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n"
        % len(BODY)
        + BODY,
        True,
    ),
    "close_delimited": (b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n\r\n" + BODY, False),
    "conn_close": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        % len(BODY)
        + BODY,
        False,
    ),
    "http10": (
        b"HTTP/1.0 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        + BODY,
        False,
    ),
    "204": (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    "503": (b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", True),
    "text": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", True),
    "pcm": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/pcm\r\nContent-Length: 4800\r\n\r\n"
        + b"\x00" * 4800,
        True,
    ),
    "bad_status": (b"HTTP/2 200 OK\r\n\r\n", False),
    "truncated_cl": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n"
        % (len(BODY) + 10)
        + BODY,
        False,
    ),
    "bad_chunk": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        False,
    ),
    "not_wav": (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: 12\r\n\r\nnot a wav!!!",
        True,
    ),
}


class ScriptedServer:
    def __init__(self, response, split, keep_open, delay=0.0):
        self.response, self.split, self.keep_open, self.delay = response, split, keep_open, delay
        self.connections = 0
        self.requests = []

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                body = await reader.readexactly(n)
                self.requests.append(head + body)
                data = self.response
                pos = 0
                while pos < len(data):
                    step = self.split(len(data) - pos)
                    writer.write(data[pos : pos + step])
                    await writer.drain()
                    pos += step
                    if self.delay:
                        await asyncio.sleep(self.delay)
                if not self.keep_open:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self):
        ready = threading.Event()

        def run():
            async def main():
                self.loop = asyncio.get_running_loop()
                self.stop = asyncio.Event()
                srv = await asyncio.start_server(self.handle, "127.0.0.1", 0)
                self.port = srv.sockets[0].getsockname()[1]
                ready.set()
                async with srv:
                    await self.stop.wait()

            asyncio.run(main())

        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()
        ready.wait(5)
        return self

    def __exit__(self, *a):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.t.join(5)


SPLITS = {
    "whole": lambda left: left,
    "bytewise": lambda left: 1,
    "random": lambda left: random.randint(1, max(1, min(left, 50))),
}
# scenario → (status, error kind, audio seconds)
EXPECTED = {
    "cl": (200, None, 0.1),
    "chunked": (200, None, 0.1),
    "chunked_ext_trailer": (200, None, 0.1),
    "continue": (200, None, 0.1),
    "close_delimited": (200, None, 0.1),
    "conn_close": (200, None, 0.1),
    "http10": (200, None, 0.1),
    "204": (204, None, 0.0),
    "503": (503, "http_503", 0.0),
    "text": (200, None, 0.0),
    "pcm": (200, None, 0.1),
    "bad_status": (0, "other", 0.0),
    "truncated_cl": (200, "reset", 0.0),
    "bad_chunk": (200, "reset", 0.0),
    "not_wav": (200, "bad_audio", 0.0),
}


def _run(server, requests=3, timeout=5.0):
    target = Target(
        url=f"http://127.0.0.1:{server.port}/v1/audio/speech?x=1",
        bodies=({"input": "hé"},),
        headers={"Authorization": "Bearer k"},
        timeout_s=timeout,
        pcm_sample_rate=24000,
    )
    records, _ = run_level(
        target, Level("concurrency", 1), None, duration_s=None, requests=requests
    )
    return records


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_framing(name, split):
    response, keep_open = SCENARIOS[name]
    with ScriptedServer(response, SPLITS[split], keep_open=keep_open) as srv:
        records = _run(srv)
    status, kind, audio = EXPECTED[name]
    for r in records:
        assert (r.status, r.error) == (status, kind), r.detail
        assert r.audio_seconds == pytest.approx(audio, abs=1e-6)
    request = srv.requests[0]
    assert request.startswith(b"POST /v1/audio/speech?x=1 HTTP/1.1\r\n")
    assert b"Authorization: Bearer k" in request and b"h\\u00e9" in request


def test_reconnects_after_a_silent_close_and_reuses_connections():
    response = SCENARIOS["cl"][0]
    with ScriptedServer(response, SPLITS["whole"], keep_open=False) as srv:
        # open loop, 20 ms apart: the close has arrived before the next request is due
        target = Target(url=f"http://127.0.0.1:{srv.port}/", bodies=({"input": "x"},), timeout_s=5)
        offsets = [i * 0.02 for i in range(5)]
        records, _ = run_level(target, Level("rate", 50), offsets, duration_s=None, requests=None)
        assert [r.error for r in records] == [None] * 5
        assert srv.connections == 5
    with ScriptedServer(response, SPLITS["whole"], keep_open=True) as srv:
        assert all(r.error is None for r in _run(srv, requests=20))
        assert srv.connections == 1


def test_timeout_and_refused():
    response = SCENARIOS["cl"][0]
    with ScriptedServer(response, lambda left: 100, keep_open=True, delay=0.1) as srv:
        records = _run(srv, requests=1, timeout=0.5)
    assert records[0].error == "timeout"
    assert records[0].done - records[0].sent == pytest.approx(0.5, abs=0.15)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    target = Target(url=f"http://127.0.0.1:{port}/", bodies=({"input": "x"},), timeout_s=2)
    records, _ = run_level(target, Level("rate", 10), [0.0], duration_s=None, requests=None)
    assert records[0].error == "connect"


PCM_22K = b"\x00\x01" * 2205  # 0.1 s at 22,050 Hz, 0.091875 s if read as 24 kHz


@pytest.mark.parametrize(
    "announce,option,rate,source",
    [
        (b"X-Sample-Rate: 22050\r\n", None, 22050, "header"),
        (b"X-Sample-Rate: 22050\r\n", 16000, 22050, "header"),  # the server knows its bytes
        (b"", 22050, 22050, "option"),
        (b"", None, 24000, "default"),
    ],
)
def test_pcm_rate_from_the_header_the_option_or_the_default(announce, option, rate, source):
    """A 22.05 kHz engine behind the endpoint: today's 24 kHz assumption is 8.8% off."""
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/pcm\r\n%sContent-Length: %d\r\n\r\n"
        % (announce, len(PCM_22K))
        + PCM_22K
    )
    with ScriptedServer(response, SPLITS["whole"], keep_open=True) as srv:
        target = Target(
            url=f"http://127.0.0.1:{srv.port}/", bodies=({"input": "x"},), pcm_sample_rate=option
        )
        records, _ = run_level(
            target, Level("concurrency", 1), None, duration_s=None, requests=MIN_SAMPLES
        )
    assert all(r.error is None for r in records), records[0].detail
    assert {(r.sample_rate, r.rate_source) for r in records} == {(rate, source)}
    assert records[0].audio_seconds == pytest.approx(2205 / rate, abs=1e-9)
    level = summarize_level(
        Level("concurrency", 1), records, warmup_s=0, wall_s=1, buffer_ms=0, max_lag_ms=5
    )
    assert (level.pcm_sample_rate, level.pcm_sample_rate_source) == (rate, source)
    assert level.model_dump()["pcm_sample_rate_source"] == source


def test_wav_answers_record_no_pcm_rate():
    with ScriptedServer(SCENARIOS["cl"][0], SPLITS["whole"], keep_open=True) as srv:
        records = _run(srv, requests=2)
    assert {r.rate_source for r in records} == {"wav"} and records[0].sample_rate == 16000
    level = summarize_level(
        Level("concurrency", 1), records, warmup_s=0, wall_s=1, buffer_ms=0, max_lag_ms=5
    )
    assert "pcm_sample_rate" not in level.model_dump()
