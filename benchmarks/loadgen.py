"""The load generator's own capacity, beside locust and wrk, against one trivial loopback endpoint.

What is measured, all in one run:
- voxbench: the highest constant request rate one ``voxbench.load.client.run_level`` process
  sustains — schedule lag p99 < 5 ms, achieved rate >= 99 % of offered, no errors — over a ladder
  of rates, each step in a fresh process;
- locust (PyPI): the same ladder with ``FastHttpUser`` and ``constant_throughput(R / U)`` in one
  process; locust has no schedule lag, so a step is sustained when it achieves >= 99 % of the
  target with no failure. Its closed-loop maximum (50 users, no wait) is shown for context;
- wrk (Debian): closed loop, one thread, 50 connections — the ceiling the endpoint itself allows.
  wrk2 (open loop, ``-R``) is not packaged in Debian, so wrk gives context only;
- 1,000 streams: voxbench holding 1,000 concurrent streaming responses (a chunked WAV, ten 100 ms
  chunks one every 100 ms) and the measured gaps between chunk arrivals, |gap - 100 ms|. Twice:
  open loop (1,000 streams/s of 1 s each, as ``voxbench load --rate`` would hold them; this run
  is judged against the goal) and closed loop (1,000 clients in lock-step, so every chunk of every
  stream falls due in the same few milliseconds; shown beside it, with the server's own lateness,
  because a one-core server cannot write 1,000 chunks at one instant).

The endpoint is nginx (one worker) started here with a temporary config, ``return 200 "ok"``; the
streaming endpoint is a small asyncio server in a spawned process, which also reports how late
its own chunk writes were. On a machine with two or more CPUs the endpoints are pinned to one CPU
and each load generator to another, so every tool gets the same single core and none competes
with the server for it. The ladders of voxbench and locust run interleaved, rung by rung.

Usage: python benchmarks/loadgen.py [--quick] [--json PATH] [--skip-locust] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

LAG_LIMIT_MS = 5.0  # the schedule lag p99 a sustained rate must stay under (as `voxbench load`)
ACHIEVED_FRACTION = 0.99  # a sustained step delivers at least this share of the offered rate
GOAL_RATE = 2000.0  # req/s voxbench must sustain
GOAL_LOCUST_RATIO = 3.0  # voxbench's sustained rate over locust's
STREAMS = 1000  # concurrent streaming connections to hold
CHUNKS = 10  # chunks per streamed response
CHUNK_S = 0.1  # audio seconds per chunk, and the seconds between chunks
STREAM_RATE = 16000  # Hz, mono, 16-bit
GAP_LIMIT_MS = 5.0  # p99 of |gap - 100 ms| for "correct chunk timing": the same bound as lag
BODY: dict[str, str] = {"input": "x"}
# req/s; one voxbench level of 5 s at 50,000 req/s is 250,000 records, still well within memory
LADDER = (
    *(500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000),
    *(10000, 12000, 16000, 20000, 24000, 28000, 32000, 40000, 50000),
)
QUICK_LADDER = (500, 1000, 2000)
CHILD_LIFETIME_S = 900.0  # a helper process outliving this bound is stopped by its own timer


# --- processes -----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this (child) process when its parent dies.

    Ctrl-C and normal exits stop children in ``finally`` blocks; this covers a parent killed
    outright, so no nginx or stream server is left running on the machine.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pin(cpus: set[int] | None) -> None:
    """Restrict this process (and the threads and children it starts later) to ``cpus``."""
    if cpus:
        os.sched_setaffinity(0, cpus)


def _raise_nofile() -> None:
    """Lift the open-files soft limit to the hard limit: 1,000 streams need 1,000+ sockets."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _preexec(cpus: set[int] | None) -> Callable[[], None]:
    """What a child runs before exec: die with this process, sit on ``cpus``, many files."""

    def run() -> None:
        _die_with_parent()
        _pin(cpus)
        _raise_nofile()

    return run


def _stop(proc: subprocess.Popen[Any], sig: int = signal.SIGQUIT, wait_s: float = 5.0) -> None:
    """Ask a child to stop (nginx: SIGQUIT is a graceful stop), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=wait_s)


def _free_port() -> int:
    """A port free on 127.0.0.1 now (nginx binds it a moment later; a clash fails loudly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any] | None, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the endpoint exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


def _find(tool: str) -> str | None:
    """The tool's path; nginx lives in /usr/sbin, which a non-root PATH often lacks."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin:/sbin")


# --- the endpoints -------------------------------------------------------------------------------

NGINX_CONF = """\
# Written by benchmarks/loadgen.py; the smallest endpoint that answers every POST at once.
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    default_type text/plain;
    # Never close a kept-alive connection during a run: a client racing a server-side close
    # would count errors that say nothing about the client.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(tmp: Path, cpus: set[int] | None) -> Iterator[str]:
    """Run nginx (one worker, in the foreground, as our child) for the block; yield its URL."""
    exe = _find("nginx")
    if exe is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    port = _free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
    # -e: the error log before the config is read; the packaged default is not ours to write.
    cmd = [exe, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, preexec_fn=_preexec(cpus)
    )
    try:
        _wait_port(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(proc)


def wav_header() -> bytes:
    """A streaming WAV header: 16 kHz mono 16-bit, RIFF and data sizes unknown (0xFFFFFFFF)."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        0xFFFFFFFF,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        STREAM_RATE,
        STREAM_RATE * 2,
        2,
        16,
        b"data",
        0xFFFFFFFF,
    )


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class _StreamProtocol(asyncio.Protocol):
    """One connection to the streaming endpoint: each POST gets a chunked WAV, timed by timers.

    Callbacks rather than a coroutine per stream: 1,000 streams are 10,000 chunk writes a second,
    and the cheaper each write is, the less the server's own lateness shows in the gaps the
    client measures. ``GET /stats`` answers the lateness of every chunk write since the last ask.
    """

    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n"
        + _http_chunk(wav_header())
    )
    audio = _http_chunk(bytes(int(STREAM_RATE * CHUNK_S) * 2))  # 100 ms of silence
    late: ClassVar[list[float]] = []  # seconds each chunk write came after its due time

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.buf = b""
        self.busy = False  # a stream is being sent; a next request waits for it (no pipelining)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            if head.startswith(b"GET /stats"):
                self._stats()
            else:
                self._stream()

    def _stream(self) -> None:
        self.busy = True
        t0 = self.loop.time()
        self.transport.write(self.head)
        for k in range(1, CHUNKS + 1):  # an absolute schedule: one late write delays no other
            self.loop.call_at(t0 + k * CHUNK_S, self._chunk, k, t0 + k * CHUNK_S)

    def _chunk(self, k: int, due: float) -> None:
        if self.transport.is_closing():
            return
        # time.monotonic(), not loop.time(): uvloop's loop time is read once per loop iteration,
        # so it would call every write of a burst handled in one iteration punctual.
        self.late.append(time.monotonic() - due)
        self.transport.write(self.audio if k < CHUNKS else self.audio + b"0\r\n\r\n")
        if k == CHUNKS:
            self.busy = False
            self.data_received(b"")  # a request that came in meanwhile

    def _stats(self) -> None:
        late = sorted(self.late)
        self.late.clear()

        def q(p: float) -> float | None:
            return late[min(len(late) - 1, int(p * len(late)))] * 1000 if late else None

        body = json.dumps({"writes": len(late), "p50": q(0.5), "p99": q(0.99), "max": q(1.0)})
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
        )


async def _stream_server(port_out: Any) -> None:
    """Serve :class:`_StreamProtocol` on a free port, send the port to the parent, then wait."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_StreamProtocol, "127.0.0.1", 0, backlog=4096)
    port_out.send(server.sockets[0].getsockname()[1])
    async with server:
        await asyncio.sleep(CHILD_LIFETIME_S)  # bounded even if nobody stops it


def stream_server_main(port_out: Any, cpus: set[int] | None) -> None:
    """Entry point of the spawned stream-server process."""
    _die_with_parent()
    _pin(cpus)
    _raise_nofile()
    try:
        import uvloop

        uvloop.run(_stream_server(port_out))
    except ImportError:
        asyncio.run(_stream_server(port_out))


@contextlib.contextmanager
def stream_server(cpus: set[int] | None) -> Iterator[str]:
    """Run the streaming endpoint in a spawned process for the block; yield its URL."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=stream_server_main, args=(child, cpus), daemon=True)
    proc.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the stream server did not start within 30 s")
        port = parent.recv()
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


# --- voxbench (runs in a fresh worker process per step) ------------------------------------------


def in_flight(records: list[Any], window: tuple[float, float]) -> dict[str, float]:
    """Requests between send and end: the peak over the run, and the minimum and time-weighted
    mean over ``window`` (seconds from the level start)."""
    events = sorted(
        [(r.sent, 1) for r in records if r.sent >= 0 and r.done >= 0]
        + [(r.done, -1) for r in records if r.sent >= 0 and r.done >= 0]
    )
    lo, hi = window
    count = peak = 0
    area, last, low, closed = 0.0, lo, None, hi <= lo
    for t, step in events:
        if t > lo and not closed:  # ``count`` held from ``last`` to this event (or to hi)
            end = min(t, hi)
            if end > last:
                area += count * (end - last)
                low = count if low is None else min(low, count)
            last = end
            closed = t > hi
        count += step
        peak = max(peak, count)
    if not closed and hi > last:
        area += count * (hi - last)
        low = count if low is None else min(low, count)
    return {
        "peak": float(peak),
        "min": float(low or 0),
        "mean": area / (hi - lo) if hi > lo else 0.0,
    }


def worker_rate(url: str, rate: float, duration_s: float, warmup_s: float) -> dict[str, Any]:
    """One ladder step: ``run_level`` at a constant ``rate``, summarised as ``voxbench load`` does."""
    from voxbench.load.client import Target, run_level
    from voxbench.load.metrics import summarize_level
    from voxbench.load.schedule import Level, intended_offsets

    target = Target(url=url, bodies=(BODY,), timeout_s=10.0, track_chunks=False)
    level = Level("rate", rate)
    offsets = intended_offsets(
        rate, duration_s=duration_s, requests=None, arrivals="constant", seed=1
    )
    cpu0 = time.process_time()
    records, wall = run_level(target, level, offsets, duration_s=duration_s, requests=None)
    cpu = time.process_time() - cpu0
    s = summarize_level(
        level, records, warmup_s=warmup_s, wall_s=wall, buffer_ms=0.0, max_lag_ms=LAG_LIMIT_MS
    ).model_dump(mode="json")
    return {
        "rate": rate,
        "requests": s["requests"],
        "achieved_rate": s["achieved_rate"],
        "sent_rate": s["sent_rate"],
        "error_rate": s["error_rate"],
        "errors": s["errors"],
        "error_examples": s["error_examples"],
        "lag_ms": s["lag_ms"],
        "latency_ms": s["latency_ms"],
        "wall_s": wall,
        # CPU of the level alone (not the interpreter's start-up), per request sent
        "cpu_us_per_request": cpu / len(records) * 1e6 if records else None,
        "cpu_share": cpu / wall if wall > 0 else None,
    }


def worker_streams(url: str, streams: int, seconds: float, mode: str) -> dict[str, Any]:
    """``streams`` concurrent streams for about ``seconds``; chunk arrivals measured.

    ``open`` (voxbench's own way): streams start evenly, ``streams`` / (stream length) per second,
    which holds ``streams`` in flight (Little's law) once the first second has filled up.
    ``closed``: ``streams`` clients each start their next stream when the last ends: exactly
    ``streams`` connections, but started together, so all their chunks fall due within the same
    few milliseconds of every 100 ms and both server and client meet them as one burst.
    """
    import numpy as np

    from voxbench.load.client import Target, run_level
    from voxbench.load.schedule import Level, intended_offsets

    target = Target(
        url=url, bodies=(BODY,), timeout_s=30.0, track_chunks=True, pcm_sample_rate=STREAM_RATE
    )
    stream_s = CHUNKS * CHUNK_S
    if mode == "closed":
        total = streams * max(1, round(seconds / stream_s))
        records, wall = run_level(
            target, Level("concurrency", streams), None, duration_s=None, requests=total
        )
        sent = [r.sent for r in records if r.sent >= 0]
        # from when all clients have sent their first request to when the last one sends
        window = (sorted(sent)[streams - 1] if len(sent) >= streams else 0.0, max(sent, default=0))
    else:
        rate = streams / stream_s
        offsets = intended_offsets(
            rate, duration_s=seconds, requests=None, arrivals="constant", seed=1
        )
        records, wall = run_level(
            target, Level("rate", rate), offsets, duration_s=seconds, requests=None
        )
        window = (stream_s + 0.01, offsets[-1])  # the first streams have ended: the steady part
    ok = [r for r in records if r.error is None and r.done >= 0]
    complete = [r for r in ok if abs(r.audio_seconds - stream_s) < 1e-6]
    gaps = [b[0] - a[0] for r in ok for a, b in zip(r.arrivals, r.arrivals[1:], strict=False)]
    err = np.abs(np.asarray(gaps) - CHUNK_S) * 1000 if gaps else np.zeros(0)
    chunk_counts = [len(r.arrivals) for r in ok]
    failures: dict[str, int] = {}
    for r in records:
        if r.error:
            failures[r.error] = failures.get(r.error, 0) + 1
    return {
        "mode": mode,
        "streams": streams,
        "requests": len(records),
        "ok": len(ok),
        "complete": len(complete),
        "failed": len(records) - len(ok),
        "failures": failures,
        "in_flight": in_flight(records, window),
        "steady_window_s": list(window),
        "chunks_per_stream_min": min(chunk_counts) if chunk_counts else 0,
        "chunks_per_stream_max": max(chunk_counts) if chunk_counts else 0,
        "gaps": len(gaps),
        "gap_error_ms": {
            "p50": float(np.percentile(err, 50)) if err.size else None,
            "p99": float(np.percentile(err, 99)) if err.size else None,
            "max": float(err.max()) if err.size else None,
        },
        "wall_s": wall,
    }


def _run_worker(args: list[str], cpus: set[int] | None, timeout_s: float) -> dict[str, Any]:
    """Run this script's ``--worker`` mode in a fresh interpreter; its last stdout line is JSON."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=_preexec(cpus),
        check=False,
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"worker {args[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def server_lateness(url: str) -> dict[str, Any]:
    """The stream server's own chunk-write lateness since the last ask (ms, 1 ms resolution)."""
    import urllib.request

    with urllib.request.urlopen(url + "stats", timeout=10) as resp:  # 127.0.0.1 only
        return dict(json.loads(resp.read()))


# --- locust and wrk --------------------------------------------------------------------------------

LOCUSTFILE = """\
# Written by benchmarks/loadgen.py.
from locust import FastHttpUser, constant, constant_throughput, task


class Poster(FastHttpUser):
    wait_time = {wait}

    @task
    def post(self):
        self.client.post("/", json={body!r})
"""


def locust_available() -> str | None:
    """None when locust can run here, else why not."""
    exe = Path(sys.executable).with_name("locust")
    if not exe.exists():
        return "locust is not installed (pip install -e '.[bench]')"
    return None


def run_locust(
    url: str,
    tmp: Path,
    *,
    users: int,
    per_user_rate: float | None,
    duration_s: float,
    cpus: set[int] | None,
) -> dict[str, Any]:
    """One headless, single-process locust run; achieved rate and failures from its CSV stats.

    All users are spawned in the first second (``-r users``) and ``--reset-stats`` drops that
    second, as voxbench's first second is warm-up.
    """
    wait = "constant(0)" if per_user_rate is None else f"constant_throughput({per_user_rate!r})"
    name = f"locust_{users}_{per_user_rate}".replace(".", "_")
    locustfile = tmp / f"{name}.py"
    locustfile.write_text(LOCUSTFILE.format(wait=wait, body=BODY))
    csv = tmp / name
    for old in tmp.glob(f"{name}_*.csv"):  # a refinement step may repeat a rate: no stale stats
        old.unlink()
    cmd = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(locustfile),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "--run-time",
        f"{duration_s:g}s",
        "--host",
        url.rstrip("/"),
        "--csv",
        str(csv),
        "--only-summary",
        "--reset-stats",
        "--loglevel",
        "WARNING",
    ]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=duration_s + 90,
        preexec_fn=_preexec(cpus),
        check=False,
        cwd=tmp,
    )
    stats = Path(f"{csv}_stats.csv")
    if not stats.exists():
        raise RuntimeError(f"locust wrote no stats ({out.returncode}): {out.stderr[-2000:]}")
    import csv as csv_module

    with stats.open(newline="") as f:
        rows = {row["Name"]: row for row in csv_module.DictReader(f)}
    agg = rows["Aggregated"]
    return {
        "users": users,
        "requests": int(agg["Request Count"]),
        "failures": int(agg["Failure Count"]),
        "achieved_rate": float(agg["Requests/s"]),
        "latency_p50_ms": float(agg["50%"]) if agg["50%"] not in ("N/A", "") else None,
        "latency_p99_ms": float(agg["99%"]) if agg["99%"] not in ("N/A", "") else None,
        # locust warns when its own CPU is the limit; worth knowing beside its figure
        "cpu_warning": "CPU usage above" in out.stderr,
    }


# Lua's single-quoted strings hold the JSON's double quotes as they are.
WRK_LUA = (
    "wrk.method = 'POST'\nwrk.body = '{body}'\nwrk.headers['Content-Type'] = 'application/json'\n"
)


def run_wrk(url: str, tmp: Path, duration_s: float, cpus: set[int] | None) -> dict[str, Any]:
    """wrk, one thread, 50 connections, closed loop: what the endpoint can answer."""
    exe = _find("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    script = tmp / "post.lua"
    script.write_text(WRK_LUA.format(body=json.dumps(BODY)))
    cmd = [exe, "-t1", "-c50", f"-d{duration_s:g}s", "-s", str(script), url]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        preexec_fn=_preexec(cpus),
        check=False,
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or rps is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-1000:]}{out.stderr[-1000:]}"
        )
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    sock = re.search(r"Socket errors:.*", out.stdout)
    return {
        "achieved_rate": float(rps.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock.group(0) if sock else "",
    }


# --- ladders -------------------------------------------------------------------------------------


@dataclass
class Step:
    """One rung of a ladder: the offered rate, whether it was sustained, why not, the figures."""

    rate: float
    sustained: bool
    why: str
    figures: dict[str, Any]


class Climber:
    """One tool's way up the ladder: to the first rate it does not sustain, then ``refine``
    bisections between the last rate held and that one.

    A rate above the first failing one is never tried: the figure is the rate the tool holds when
    asked to, not its luckiest step. ``capped`` says the tool held the ladder's top rung, so its
    figure is only a lower bound.
    """

    def __init__(
        self, name: str, measure: Callable[[float], Step], ladder: tuple[int, ...], refine: int
    ) -> None:
        self.name = name
        self.measure = measure
        self.ladder = list(ladder)
        self.refine = refine
        self.held = 0.0
        self.failed: float | None = None
        self.steps: list[Step] = []

    @property
    def capped(self) -> bool:
        return self.failed is None and self.held >= self.ladder[-1]

    def next_rate(self) -> float | None:
        """The rate to try next, or None when the figure is found."""
        if self.failed is None:
            tried = len(self.steps)
            return float(self.ladder[tried]) if tried < len(self.ladder) else None
        if self.refine <= 0:
            return None
        mid = round((self.held + self.failed) / 2 / 50) * 50  # 50 req/s steps are fine enough
        return float(mid) if self.held < mid < self.failed else None

    def step(self, rate: float) -> None:
        refining = self.failed is not None
        step = self.measure(rate)
        self.steps.append(step)
        mark = "held" if step.sustained else "NOT held"
        print(
            f"  {self.name:8} {rate:8,.0f} req/s  {mark:8}  {step.why}", file=sys.stderr, flush=True
        )
        if refining:
            self.refine -= 1
        if step.sustained:
            self.held = rate
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)

    def at(self, rate: float) -> Step | None:
        return next((s for s in self.steps if s.rate == rate and s.sustained), None)


def climb_together(climbers: list[Climber]) -> None:
    """Every tool's ladder, interleaved rung by rung, so slow drifts of the machine (other tenants,
    thermal state) fall on all tools alike rather than on whichever ran last."""
    active = list(climbers)
    while active:
        for climber in list(active):
            rate = climber.next_rate()
            if rate is None:
                active.remove(climber)
            else:
                climber.step(rate)


def voxbench_measure(
    url: str, duration_s: float, warmup_s: float, cpus: set[int] | None
) -> Callable[[float], Step]:
    """A ladder step for voxbench: a fresh worker process at ``rate``, judged as defined above."""

    def measure(rate: float) -> Step:
        f = _run_worker(
            ["rate", url, str(rate), str(duration_s), str(warmup_s)], cpus, duration_s + 120
        )
        lag = (f["lag_ms"] or {}).get("p99", float("inf"))
        achieved = f["achieved_rate"] or 0.0
        reasons = []
        if lag >= LAG_LIMIT_MS:
            reasons.append(f"lag p99 {lag:.1f} ms >= {LAG_LIMIT_MS:g}")
        if achieved < ACHIEVED_FRACTION * rate:
            reasons.append(f"achieved {achieved:,.0f} < {ACHIEVED_FRACTION:.0%}")
        if f["error_rate"]:
            reasons.append(f"errors {f['errors']}")
        detail = (
            f"lag p99 {lag:.2f} ms, achieved {achieved:,.0f}, "
            f"{f['cpu_us_per_request']:.0f} µs CPU/request"
        )
        return Step(rate, not reasons, "; ".join(reasons) or detail, f)

    return measure


def locust_users(rate: float) -> int:
    """Users for a target rate: 20 req/s each, at least 10."""
    return max(10, round(rate / 20))


def locust_measure(
    url: str, tmp: Path, duration_s: float, cpus: set[int] | None
) -> Callable[[float], Step]:
    """A ladder step for locust: ``constant_throughput(rate / users)`` over ``users`` users."""

    def measure(rate: float) -> Step:
        users = locust_users(rate)
        f = run_locust(
            url, tmp, users=users, per_user_rate=rate / users, duration_s=duration_s, cpus=cpus
        )
        reasons = []
        if f["achieved_rate"] < ACHIEVED_FRACTION * rate:
            reasons.append(f"achieved {f['achieved_rate']:,.0f} < {ACHIEVED_FRACTION:.0%}")
        if f["failures"]:
            reasons.append(f"{f['failures']} failures")
        detail = f"achieved {f['achieved_rate']:,.0f} with {users} users"
        if f["cpu_warning"]:
            detail += " (locust warned its CPU was above 90 %)"
        return Step(rate, not reasons, "; ".join(reasons) or detail, f)

    return measure


# --- report --------------------------------------------------------------------------------------


def _rate(x: float | None, capped: bool = False) -> str:
    if x is None:
        return "n/a"
    return (">=" if capped else "") + f"{x:,.0f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _x(r: float | None, digits: int = 2) -> str:
    return "n/a" if r is None else f"{r:.{digits}f}×"


def stream_line(st: dict[str, Any]) -> str:
    """One streams run in a sentence."""
    g, f = st["gap_error_ms"], st["in_flight"]
    late = st.get("server_late_ms") or {}
    return (
        f"in flight mean {f['mean']:,.0f} / min {f['min']:,.0f} / peak {f['peak']:,.0f}; "
        f"{st['requests']:,} streams, {st['complete']:,} complete, {st['failed']:,} failed"
        + (f" {st['failures']}" if st["failures"] else "")
        + f"; chunks/stream {st['chunks_per_stream_min']}–{st['chunks_per_stream_max']}; "
        f"|gap − 100 ms| p50 {g['p50']:.2f} / p99 {g['p99']:.2f} / max {g['max']:.2f} ms "
        f"over {st['gaps']:,} gaps; server's own write lateness p99 "
        + ("n/a" if late.get("p99") is None else f"{late['p99']:.0f} ms")
    )


def print_report(res: dict[str, Any]) -> None:
    """The readable table: per-step detail, the figures side by side, ratios, streams, goals."""
    s = res["settings"]
    print(
        f"\nload generator capacity: POST {json.dumps(BODY)} to nginx {s['nginx']} on 127.0.0.1 "
        f'(1 worker, return 200 "ok"); {s["duration_s"]:g} s per step, first '
        f"{s['warmup_s']:g} s not counted; Python {s['python']}"
    )
    print(f"placement: {s['placement']}")
    for tool in ("voxbench", "locust"):
        t = res[tool]
        if "skipped" in t:
            continue
        print(f"\n{tool} ladder (in the order run):")
        for st in t["steps"]:
            mark = "held" if st["sustained"] else "NOT held"
            print(f"  {st['rate']:8,.0f} req/s  {mark:8}  {st['why']}")

    v, loc, w = res["voxbench"], res["locust"], res["wrk"]
    rows: list[tuple[str, str, str, str]] = [
        (
            "voxbench",
            "open loop, constant arrivals, 1 process: lag p99 < 5 ms, >= 99 % achieved, 0 errors",
            _rate(v["sustained_rps"], v["capped"]),
            "n/a" if v["lag_p99_ms"] is None else f"{v['lag_p99_ms']:.2f} ms",
        )
    ]
    if "skipped" in loc:
        rows.append(("locust", f"skipped: {loc['skipped']}", "", ""))
    else:
        rows.append(
            (
                "locust",
                "FastHttpUser, constant_throughput(R/U), 1 process: >= 99 % achieved, 0 failures",
                _rate(loc["sustained_rps"], loc["capped"]),
                "—",
            )
        )
        rows.append(
            (
                "locust",
                "closed loop, 50 users, no wait: its maximum (context)",
                _rate(loc["closed_loop"]["achieved_rate"]),
                "—",
            )
        )
    if "skipped" in w:
        rows.append(("wrk", f"skipped: {w['skipped']}", "", ""))
    else:
        rows.append(
            (
                "wrk",
                "closed loop, -t1 -c50: the endpoint's ceiling (context; wrk2 -R not in Debian)",
                _rate(w["achieved_rate"]),
                "—",
            )
        )
    width = max(len(r[1]) for r in rows)
    header = f"{'tool':9} {'definition':{width}} {'req/s':>9} {'lag p99':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for tool, definition, rate, lag in rows:
        print(f"{tool:9} {definition:{width}} {rate:>9} {lag:>8}")
    r = res["ratios"]
    print(
        f"\nratios: voxbench/locust {_x(r['voxbench_over_locust'])}   "
        f"voxbench/locust closed-loop max {_x(r['voxbench_over_locust_closed'])}   "
        f"voxbench/wrk {_x(r['voxbench_over_wrk'], 3)}"
    )
    for key, label in (("streams", "streams, open loop"), ("streams_closed", "streams, closed")):
        st = res.get(key)
        if st:
            print(f"{label}: {stream_line(st)}")
    print()
    width = max(len(goal["goal"]) for goal in res["goals"])
    for goal in res["goals"]:
        print(f"goal: {goal['goal']:{width}}  {goal['verdict']:13} {goal['measured']}")


def evaluate_goals(res: dict[str, Any]) -> list[dict[str, str]]:
    """Each goal of the issue with its verdict: met, MISSED, or why it could not be judged."""
    v = res["voxbench"]
    goals = [
        {
            "goal": f"voxbench sustains >= {GOAL_RATE:,.0f} req/s",
            "verdict": "met" if v["sustained_rps"] >= GOAL_RATE else "MISSED",
            "measured": f"{_rate(v['sustained_rps'], v['capped'])} req/s",
        }
    ]
    loc = res["locust"]
    ratio = res["ratios"]["voxbench_over_locust"]
    name = f"voxbench >= {GOAL_LOCUST_RATIO:g}× locust (sustained rates)"
    if "skipped" in loc:
        goals.append({"goal": name, "verdict": "not measured", "measured": loc["skipped"]})
    elif ratio is None:
        goals.append({"goal": name, "verdict": "MISSED", "measured": "no rate held"})
    elif loc["capped"] or v["capped"]:
        # A tool that held the ladder's top rung has a figure that is only a lower bound: the
        # ratio is then decided only when the bound points the same way as the verdict.
        if loc["capped"] and not v["capped"] and ratio < GOAL_LOCUST_RATIO:
            verdict, measured = "MISSED", f"<= {_x(ratio)} (locust held the ladder top)"
        elif v["capped"] and not loc["capped"] and ratio >= GOAL_LOCUST_RATIO:
            verdict, measured = "met", f">= {_x(ratio)} (voxbench held the ladder top)"
        else:
            verdict, measured = "inconclusive", f"{_x(ratio)}, ladder top held: extend the ladder"
        goals.append({"goal": name, "verdict": verdict, "measured": measured})
    else:
        verdict = "met" if ratio >= GOAL_LOCUST_RATIO else "MISSED"
        goals.append({"goal": name, "verdict": verdict, "measured": _x(ratio)})
    st = res["streams"]
    name = f"{STREAMS:,} concurrent streams, |gap − 100 ms| p99 < {GAP_LIMIT_MS:g} ms"
    p99 = st["gap_error_ms"]["p99"]
    held = st["in_flight"]["mean"] >= STREAMS - 0.5
    ok = (
        held
        and st["failed"] == 0
        and st["complete"] == st["requests"]
        and st["chunks_per_stream_min"] == CHUNKS
        and p99 is not None
        and p99 < GAP_LIMIT_MS
    )
    goals.append(
        {
            "goal": name + " (open loop)",
            "verdict": "met" if ok else "MISSED",
            "measured": (
                f"{st['in_flight']['mean']:,.0f} in flight, {st['failed']} failed, "
                f"gap p99 " + ("n/a" if p99 is None else f"{p99:.2f} ms")
            ),
        }
    )
    return goals


# --- main ----------------------------------------------------------------------------------------


def placement(pin: bool) -> tuple[set[int] | None, set[int] | None, str]:
    """CPUs for the endpoint and for the load generators, and a sentence saying so."""
    cpus = sorted(os.sched_getaffinity(0))
    if pin and len(cpus) >= 2:
        endpoint, generator = {cpus[0]}, {cpus[1]}
        return (
            endpoint,
            generator,
            f"{len(cpus)} CPUs; nginx and the stream server pinned to CPU {cpus[0]}; each load "
            f"generator (voxbench worker, locust, wrk) pinned to CPU {cpus[1]}, one at a time",
        )
    return None, None, f"{len(cpus)} CPUs; nothing pinned, the OS places every process"


def nginx_version() -> str:
    exe = _find("nginx")
    if exe is None:
        return "(missing)"
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, check=False, timeout=10)
    m = re.search(r"nginx/(\S+)", out.stderr)
    return m.group(1) if m else "?"


def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement; return the result document."""
    duration = 3.0 if args.quick else 5.0  # whole seconds: locust's --run-time takes no fractions
    warmup = 1.0
    ladder = QUICK_LADDER if args.quick else LADDER
    refine = 0 if args.quick else 2
    endpoint_cpus, gen_cpus, where = placement(not args.no_pin)
    res: dict[str, Any] = {
        "settings": {
            "quick": args.quick,
            "duration_s": duration,
            "warmup_s": warmup,
            "ladder": list(ladder),
            "refine_steps": refine,
            "lag_limit_ms": LAG_LIMIT_MS,
            "achieved_fraction": ACHIEVED_FRACTION,
            "gap_limit_ms": GAP_LIMIT_MS,
            "placement": where,
            "nginx": nginx_version(),
            "python": sys.version.split()[0],
            "argv": sys.argv,
        }
    }
    skip = "--skip-locust given" if args.skip_locust else locust_available()
    _raise_nofile()
    with tempfile.TemporaryDirectory(prefix="voxbench-loadgen-") as tmpdir:
        tmp = Path(tmpdir)
        with nginx(tmp, endpoint_cpus) as url:
            print(f"endpoint {url}; {where}", file=sys.stderr, flush=True)
            vox = Climber(
                "voxbench", voxbench_measure(url, duration, warmup, gen_cpus), ladder, refine
            )
            climbers = [vox]
            if skip is None:
                loc = Climber(
                    "locust", locust_measure(url, tmp, duration, gen_cpus), ladder, refine
                )
                climbers.append(loc)
            climb_together(climbers)
            at = vox.at(vox.held)
            res["voxbench"] = {
                "sustained_rps": vox.held,
                "capped": vox.capped,
                "lag_p99_ms": at.figures["lag_ms"]["p99"] if at else None,
                "steps": [st.__dict__ for st in vox.steps],
            }
            if skip is None:
                closed = run_locust(
                    url, tmp, users=50, per_user_rate=None, duration_s=duration, cpus=gen_cpus
                )
                print(f"  locust closed loop {closed['achieved_rate']:,.0f} req/s", file=sys.stderr)
                res["locust"] = {
                    "sustained_rps": loc.held,
                    "capped": loc.capped,
                    "steps": [st.__dict__ for st in loc.steps],
                    "closed_loop": closed,
                }
            else:
                res["locust"] = {"skipped": skip}
                print(f"  locust skipped: {skip}", file=sys.stderr)
            try:
                res["wrk"] = run_wrk(url, tmp, duration, gen_cpus)
                print(f"  wrk {res['wrk']['achieved_rate']:,.0f} req/s", file=sys.stderr)
            except RuntimeError as exc:
                res["wrk"] = {"skipped": str(exc)}
        with stream_server(endpoint_cpus) as surl:
            seconds = 2.0 if args.quick else 4.0
            for key, mode in (("streams", "open"), ("streams_closed", "closed")):
                server_lateness(surl)  # reset the server's tally
                st = _run_worker(["streams", surl, str(STREAMS), str(seconds), mode], gen_cpus, 180)
                st["server_late_ms"] = server_lateness(surl)
                res[key] = st
                print(f"  streams {mode}: {stream_line(st)}", file=sys.stderr, flush=True)
    vps = res["voxbench"]["sustained_rps"]
    res["ratios"] = {
        "voxbench_over_locust": _ratio(vps, res["locust"].get("sustained_rps")),
        "voxbench_over_locust_closed": _ratio(
            vps, res["locust"].get("closed_loop", {}).get("achieved_rate")
        ),
        "voxbench_over_wrk": _ratio(vps, res["wrk"].get("achieved_rate")),
    }
    res["goals"] = evaluate_goals(res)
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short steps, few rungs (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--skip-locust", action="store_true", help="measure voxbench and wrk only")
    parser.add_argument("--no-pin", action="store_true", help="let the OS place every process")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds like Ctrl-C: nginx and the stream server stop

    signal.signal(signal.SIGTERM, stop)
    res = measure_all(args)
    print_report(res)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0


def worker_main(argv: list[str]) -> int:
    """``--worker rate URL R D W`` or ``--worker streams URL N SECONDS MODE``: one JSON line."""
    _raise_nofile()
    kind, url, *rest = argv
    if kind == "rate":
        out = worker_rate(url, float(rest[0]), float(rest[1]), float(rest[2]))
    elif kind == "streams":
        out = worker_streams(url, int(rest[0]), float(rest[1]), rest[2])
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the endpoints were stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
