"""Send requests at their intended times and record what happened to each, raw.

A small HTTP/1.1 client on asyncio protocols, with an unbounded keep-alive pool, so no request
waits client-side for a connection: a request's ``sent`` time is when the generator got to it,
and ``sent - due`` is the schedule lag. All times are ``time.monotonic()`` seconds from the
level's start (the clock asyncio's timers use).

Why not aiohttp (which this module used before): it spends about 200 µs of CPU on each request,
so one generator process could not keep its own schedule much above 2,000 requests/s; this client
spends a small fraction of that (``benchmarks/loadgen.py`` measures it). It does only what a
load test of a speech endpoint needs: POST a JSON body (or a prepared upload) over HTTP/1.1 (TLS for https URLs), read
the response as it arrives — Content-Length, chunked or until close — and time every piece of
the body. It follows no redirects (a 3xx is recorded as the answer), sends no cookies and asks for
no compression, so the bytes timed are the bytes the decoder reads.

The pieces: :mod:`.records` (targets, request records, failure kinds), :mod:`.http1` (a
connection's response parser and the exchange that fills a record), :mod:`.pool` (prepared
targets, the keep-alive pool and timeouts), and this module (the open and closed loops).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from voxbench.load.pool import PreparedTarget, Session
from voxbench.load.records import UNSET, Form, RequestRecord, Target
from voxbench.load.schedule import Level

__all__ = ["UNSET", "RequestRecord", "Target", "run_closed", "run_level", "run_open", "send_one"]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _exchange(
    session: Session,
    prep: PreparedTarget,
    rec: RequestRecord,
    request: bytes,
    start: float,
) -> None:
    """Send one encoded request now and fill ``rec``; returns when it is done; never raises."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    session.launch(prep, rec, request, start, partial(_resolve, future))
    await future


async def send_one(
    session: Session,
    target: Target,
    rec: RequestRecord,
    body: dict[str, Any] | Form,
    start: float,
) -> None:
    """Send one request now and fill ``rec``; never raises."""
    try:
        prep = session.prepare(target)
        request = prep.request(body)
    except Exception as exc:  # a URL or header this client cannot send: recorded, not raised
        rec.sent = rec.done = time.monotonic() - start
        rec.error, rec.detail = "other", f"{type(exc).__name__}: {exc}"[:200]
        return
    await _exchange(session, prep, rec, request, start)


async def run_open(
    target: Target, offsets: list[float], lead_s: float = 0.05
) -> list[RequestRecord]:
    """Open loop: each request starts at its offset, whatever the ones before it are doing."""
    loop = asyncio.get_running_loop()
    records = [RequestRecord(due=o) for o in offsets]
    done = asyncio.Event()
    pending = len(records)

    async with Session() as session:
        prep = session.prepare(target)
        requests = prep.requests
        start = time.monotonic() + lead_s

        def finished() -> None:
            nonlocal pending
            pending -= 1
            if pending == 0:
                done.set()

        def launch(i: int) -> None:
            # Sent right here, in the timer's callback, when a kept-alive connection is free.
            rec = records[i]
            rec.item = i % len(requests)
            session.launch(prep, rec, requests[rec.item], start, finished)

        # One timer at a time, each firing request i and any later ones already due, then
        # setting itself for the next: the same sends as one timer per request, without first
        # spending O(n) time (longer than lead_s at high rates) filling the timer heap.
        following = 0

        def fire() -> None:
            nonlocal following
            i = following
            launch(i)
            i += 1
            now = loop.time()
            while i < len(offsets) and start + offsets[i] <= now:
                launch(i)
                i += 1
            following = i
            if i < len(offsets):
                loop.call_at(start + offsets[i], fire)  # loop.time() is time.monotonic()

        if records:
            loop.call_at(start + offsets[0], fire)
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
    async with Session() as session:
        prep = session.prepare(target)
        wire = prep.requests
        start = time.monotonic()

        async def client() -> None:
            while True:
                now = time.monotonic() - start
                if requests is not None and len(records) >= requests:
                    return
                if requests is None and duration_s is not None and now >= duration_s:
                    return
                rec = RequestRecord(due=now, item=(len(records) + 1) % len(wire))
                records.append(rec)
                await _exchange(session, prep, rec, wire[rec.item], start)

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
    runner: Callable[..., Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    # A full collection walks every object the process holds (numpy and all imported modules:
    # 20-30 ms here), and while it runs no request is sent and no chunk is timed. Objects that
    # exist before the level are frozen out of collections for its duration; those it creates
    # are still collected as usual.
    gc.collect()
    gc.freeze()
    t0 = time.monotonic()
    try:
        if level.kind == "rate":
            assert offsets is not None
            records = runner(run_open(target, offsets))
        else:
            records = runner(
                run_closed(target, int(level.value), duration_s=duration_s, requests=requests)
            )
    finally:
        gc.unfreeze()
    return records, time.monotonic() - t0
