"""Send requests at their intended times and record what happened to each, raw.

One aiohttp session with an unlimited connector, so no request waits client-side for a
connection: a request's ``sent`` time is when the generator got to it, and ``sent - due`` is the
schedule lag. All times are ``time.monotonic()`` seconds from the level's start (the clock
asyncio's timers use).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from voxbench.load.schedule import Level

UNSET = -1.0


@dataclass(slots=True)
class RequestRecord:
    """What one request did. Times in seconds from the level start; -1 when it never happened."""

    due: float
    sent: float = UNSET
    first_byte: float = UNSET
    first_audio: float = UNSET
    done: float = UNSET
    status: int = 0
    error: str | None = None  # kind: http_503, timeout, reset, connect, bad_audio, other
    detail: str = ""
    bytes: int = 0
    audio_seconds: float = 0.0
    # (arrival time, audio seconds received so far), streamed responses only
    arrivals: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """The endpoint and what to send it."""

    url: str
    bodies: tuple[dict[str, Any], ...]  # request JSON bodies, used in turn
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    pcm_sample_rate: int = 24000
    track_chunks: bool = True


def _error_kind(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | ConnectionResetError
        | aiohttp.ClientOSError,
    ):
        return "reset"
    return "other"


def _decoder(content_type: str, first: bytes, pcm_rate: int) -> Any:
    from voxbench.engines.http import WavStreamDecoder, pcm16_format

    if first[:4] == b"RIFF" or content_type.startswith(("audio/wav", "audio/x-wav")):
        return WavStreamDecoder()
    if content_type.startswith(("audio/pcm", "audio/l16")):
        return WavStreamDecoder(raw=pcm16_format(pcm_rate))
    return None  # not audio: count bytes only


async def send_one(
    session: Any, target: Target, rec: RequestRecord, body: dict[str, Any], start: float
) -> None:
    """Send one request now and fill ``rec``; never raises."""
    now = time.monotonic
    rec.sent = now() - start
    decoder = None
    samples = 0
    try:
        async with session.post(target.url, json=body, headers=target.headers) as resp:
            rec.status = resp.status
            ctype = resp.headers.get("Content-Type", "")
            async for data in resp.content.iter_any():
                t = now() - start
                if rec.first_byte < 0:
                    rec.first_byte = t
                    decoder = _decoder(ctype, data, target.pcm_sample_rate)
                rec.bytes += len(data)
                if decoder is not None and resp.status < 400:
                    got = len(decoder.feed(data))
                    if got:
                        samples += got
                        if rec.first_audio < 0:
                            rec.first_audio = t
                        if target.track_chunks:
                            rec.arrivals.append((t, samples / decoder.sample_rate))
            rec.done = now() - start
            if decoder is not None and decoder.sample_rate:
                rec.audio_seconds = samples / decoder.sample_rate
            if resp.status >= 400:
                rec.error = f"http_{resp.status}"
            elif decoder is not None and samples == 0:
                rec.error, rec.detail = "bad_audio", "no audio samples in the body"
    except Exception as exc:  # every failure is a record, never a crash of the generator
        rec.done = now() - start
        from voxbench.errors import EngineFailed

        if isinstance(exc, EngineFailed):
            rec.error = "bad_audio"
        else:
            rec.error = _error_kind(exc)
        rec.detail = f"{type(exc).__name__}: {exc}"[:200]


def _session(target: Target, connections: int) -> Any:
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=0, force_close=False, ttl_dns_cache=300
    )
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)


async def run_open(
    target: Target, offsets: list[float], lead_s: float = 0.05
) -> list[RequestRecord]:
    """Open loop: each request starts at its offset, whatever the ones before it are doing."""
    loop = asyncio.get_running_loop()
    records = [RequestRecord(due=o) for o in offsets]
    done = asyncio.Event()
    pending = len(records)
    tasks: set[asyncio.Task[None]] = set()

    async with _session(target, len(records)) as session:
        start = time.monotonic() + lead_s

        async def one(i: int) -> None:
            nonlocal pending
            await send_one(
                session, target, records[i], target.bodies[i % len(target.bodies)], start
            )
            pending -= 1
            if pending == 0:
                done.set()

        def fire(i: int) -> None:
            task = loop.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        for i, off in enumerate(offsets):
            loop.call_at(start + off, fire, i)  # loop.time() is time.monotonic()
        if records:
            await done.wait()
    return records


async def run_closed(
    target: Target, concurrency: int, *, duration_s: float | None, requests: int | None
) -> list[RequestRecord]:
    """Closed loop: ``concurrency`` clients, each sending its next request when the last ends.

    Latency then counts from the actual send: a closed loop cannot see the queueing an open
    loop would (coordinated omission); it is here for comparison with other tools.
    """
    records: list[RequestRecord] = []
    async with _session(target, concurrency) as session:
        start = time.monotonic()

        async def client() -> None:
            while True:
                now = time.monotonic() - start
                if requests is not None and len(records) >= requests:
                    return
                if requests is None and duration_s is not None and now >= duration_s:
                    return
                rec = RequestRecord(due=now)
                records.append(rec)
                await send_one(
                    session, target, rec, target.bodies[len(records) % len(target.bodies)], start
                )

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return records


def run_level(
    target: Target,
    level: Level,
    offsets: list[float] | None,
    *,
    duration_s: float | None,
    requests: int | None,
) -> tuple[list[RequestRecord], float]:
    """Run one level in a fresh event loop (uvloop when installed); returns records and wall s."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    t0 = time.monotonic()
    if level.kind == "rate":
        assert offsets is not None
        records = runner(run_open(target, offsets))
    else:
        records = runner(
            run_closed(target, int(level.value), duration_s=duration_s, requests=requests)
        )
    return records, time.monotonic() - t0
