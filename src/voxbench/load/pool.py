"""The load client's connections: targets prepared once, a keep-alive pool per server, and
the timer that expires requests past their timeout.

The pool is unbounded, so no request waits client-side for a connection: a new one is opened
whenever none is idle. Idle connections older than :data:`KEEPALIVE_S` are closed, not reused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from voxbench.load.http1 import Connection, Exchange
from voxbench.load.records import ConnectFailed, Form, RequestRecord, Target

KEEPALIVE_S = 15.0  # idle connections older than this are closed, not reused (as aiohttp did)


class PreparedTarget:
    """A target's connection details and its requests encoded once."""

    def __init__(self, target: Target) -> None:
        from voxbench import __version__

        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {target.url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.key = (parts.scheme, self.host, self.port)
        self.target = target
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "host": ("Host", parts.netloc.rpartition("@")[2]),
            "user-agent": ("User-Agent", f"voxbench/{__version__}"),
            "accept": ("Accept", "*/*"),
            "content-type": ("Content-Type", "application/json"),
        }
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(userinfo.encode()).decode()
            headers["authorization"] = ("Authorization", f"Basic {token}")
        for name, value in target.headers.items():
            if any(c in f"{name}{value}" for c in "\r\n"):
                raise ValueError(f"header {name!r} holds a line break")
            headers[name.lower()] = (name, value)
        headers.pop("content-length", None)  # set per body below
        # a JSON body's type (the user's header may replace it); an upload carries its own
        self.json_type = headers.pop("content-type")[1]
        lines = "".join(f"{n}: {v}\r\n" for n, v in headers.values())
        self.head = f"POST {path} HTTP/1.1\r\n{lines}".encode("latin-1")
        self.requests = [self.request(body) for body in target.bodies]

    def request(self, body: dict[str, Any] | Form) -> bytes:
        """The whole request on the wire for ``body`` (a JSON object, or an encoded form)."""
        if isinstance(body, Form):
            kind, payload = body.content_type, body.payload
        else:
            kind, payload = self.json_type, json.dumps(body).encode()
        fields = f"Content-Type: {kind}\r\nContent-Length: {len(payload)}\r\n\r\n"
        return self.head + fields.encode("latin-1") + payload


class Session:
    """Keep-alive connections for the targets of one level, opened as they are needed."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str, int], list[Connection]] = {}
        self.prepared: dict[int, PreparedTarget] = {}
        self.connections: set[Connection] = set()  # open ones only: churn must not pile up
        self.addresses: dict[tuple[str, int], list[tuple[int, str]]] = {}
        # Exchanges in flight, one watch list per timeout: each list is in launch order, which is
        # deadline order, so one timer for its head does for all (see _sweep).
        self.timeouts: dict[float, dict[Exchange, None]] = {}
        self._sweeping: asyncio.TimerHandle | None = None
        self._tls: Any = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
        for conn in list(self.connections):
            conn.close()
        await asyncio.sleep(0)  # let the transports run their connection_lost

    def prepare(self, target: Target) -> PreparedTarget:
        prep = self.prepared.get(id(target))
        if prep is None or prep.target is not target:
            prep = self.prepared[id(target)] = PreparedTarget(target)
        return prep

    def launch(
        self,
        prep: PreparedTarget,
        rec: RequestRecord,
        request: bytes,
        start: float,
        on_done: Callable[[], None],
    ) -> None:
        """Send one encoded request now; fill ``rec`` as the answer arrives, then call
        ``on_done``. Never raises: a failure is recorded in ``rec``."""
        loop = asyncio.get_running_loop()
        rec.sent = time.monotonic() - start
        timeout_s = prep.target.timeout_s
        watch = self.timeouts.get(timeout_s)
        if watch is None:
            watch = self.timeouts[timeout_s] = {}
        deadline = loop.time() + timeout_s
        exchange = Exchange(rec, prep.target, start, on_done, watch, deadline)
        if self._sweeping is None or deadline < self._sweeping.when():  # (a shorter timeout)
            if self._sweeping is not None:
                self._sweeping.cancel()
            self._sweeping = loop.call_at(deadline, self._sweep)
        try:
            conn = self.idle(prep)
            if conn is None:  # only a new connection costs a task
                exchange.connecting = loop.create_task(
                    self._connect_and_send(prep, exchange, request)
                )
            else:
                conn.begin(exchange, request)
        except Exception as exc:
            exchange.fail(exc)

    async def _connect_and_send(
        self, prep: PreparedTarget, exchange: Exchange, request: bytes
    ) -> None:
        try:
            conn = await self.connect(prep)
        except Exception as exc:
            exchange.fail(exc)
            return
        exchange.connecting = None
        if exchange.on_done is None:  # timed out while connecting: the connection is still good
            conn.idle_since = time.monotonic()
            conn.pool.append(conn)
            return
        try:
            conn.begin(exchange, request)
        except Exception as exc:
            exchange.fail(exc)

    def _sweep(self) -> None:
        """Expire every exchange past its deadline; set the timer for the next deadline."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        following = None
        for watch in self.timeouts.values():
            while watch:
                exchange = next(iter(watch))
                if exchange.deadline > now:
                    if following is None or exchange.deadline < following:
                        following = exchange.deadline
                    break
                exchange.expire()  # removes it from ``watch``
        self._sweeping = None if following is None else loop.call_at(following, self._sweep)

    def idle(self, prep: PreparedTarget) -> Connection | None:
        """A kept-alive connection to the target's server, most recently used first."""
        pool = self.pools.get(prep.key)
        if not pool:
            return None
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if not conn.closed and now - conn.idle_since <= KEEPALIVE_S:
                return conn
            conn.close()
        return None

    async def connect(self, prep: PreparedTarget) -> Connection:
        loop = asyncio.get_running_loop()
        pool = self.pools.setdefault(prep.key, [])
        tls: Any = None
        if prep.tls:
            if self._tls is None:
                import ssl

                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            addresses = await self._resolve(prep.host, prep.port)
        except OSError as exc:
            raise ConnectFailed(f"cannot resolve {prep.host}: {exc}") from exc
        errors = []
        for family, address in addresses:  # in the resolver's order, as a browser would
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(pool, self.connections),
                    address,
                    prep.port,
                    family=family,
                    ssl=tls,
                    server_hostname=prep.host if tls else None,
                )
            except OSError as exc:  # refused, unreachable, TLS handshake
                errors.append(exc)
                continue
            return conn
        raise ConnectFailed(f"cannot connect to {prep.host}:{prep.port}: {errors[-1]}")

    async def _resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        """The host's addresses, looked up once per level: a burst of new connections must not
        queue behind as many name look-ups."""
        cached = self.addresses.get((host, port))
        if cached is None:
            import socket

            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            cached = list(dict.fromkeys((info[0], str(info[4][0])) for info in infos))
            if not cached:
                raise OSError(f"no address for {host}")
            self.addresses[(host, port)] = cached
        return cached
