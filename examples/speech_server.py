"""Example: an OpenAI-compatible speech endpoint (starlette + uvicorn) in front of espeak-ng.

It answers ``POST /v1/audio/speech`` with WAV audio, whole or streamed (``"stream": true``: a WAV
header of unknown length, then the audio as espeak produces it), and a ``Server-Timing`` header.

    python examples/speech_server.py --port 8880 &
    voxbench run --engine http://127.0.0.1:8880/v1/audio/speech --workload short
"""

from __future__ import annotations

import argparse
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from voxbench.engines.espeak import EspeakEngine

engine = EspeakEngine()
lock = threading.Lock()


def wav_header(sample_rate: int, data_bytes: int = 0xFFFFFFFF) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    riff = 0xFFFFFFFF if data_bytes == 0xFFFFFFFF else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_bytes))  # fmt: skip


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def chunks(text: str) -> Iterator[bytes]:
    """Runs in starlette's thread pool: one espeak synthesis at a time."""
    with lock:
        started = False
        for chunk in engine.stream(text):
            if not started:
                yield wav_header(chunk.sample_rate)
                started = True
            yield pcm16(chunk.audio)


async def speech(request: Request) -> Response:
    body = await request.json()
    text = str(body.get("input", ""))
    if body.get("stream"):
        return StreamingResponse(chunks(text), media_type="audio/wav")
    t0 = time.perf_counter()
    with lock:
        out = engine.synthesize(text)
    ms = (time.perf_counter() - t0) * 1000
    data = pcm16(out.audio)
    return Response(wav_header(out.sample_rate, len(data)) + data, media_type="audio/wav",
                    headers={"Server-Timing": f"synth;dur={ms:.2f}"})  # fmt: skip


app = Starlette(routes=[Route("/v1/audio/speech", speech, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8880)
    args = parser.parse_args()
    engine.load()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
