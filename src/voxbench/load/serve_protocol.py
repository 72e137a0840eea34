"""uvicorn's HTTP/1.1 protocol (h11), with deadlines on reading a request.

uvicorn itself only times out an idle keep-alive connection (``timeout_keep_alive``), and only
until its first byte arrives: a client that opens a connection and sends nothing, or sends its
request head one byte a second (slowloris), holds the connection for as long as it likes; the
head is bounded only in size (``h11_max_incomplete_event_size``, 16 KiB). This protocol closes a
connection whose request head has not fully arrived ``header_timeout_s`` after the connection
opened (or after the previous answer went), or whose body has not fully arrived
``body_timeout_s`` after its head. Checked every :data:`TICK_S`, so a slow client is cut within
the timeout plus that. The time an engine takes to answer is not limited here: that is the
request's own, after it has been read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

TICK_S = 0.25

log = logging.getLogger("voxbench.load.serve")


class DeadlineH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections slower than its deadlines to send a request."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tick: asyncio.TimerHandle | None = None
        self._watched: tuple[object, str] = (None, "")
        self._since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self.loop.time()
        self._watched = (None, "head")
        self._tick = self.loop.call_later(TICK_S, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head is timed from the end of this answer.
        self._watched = (self.cycle, "head")
        self._since = self.loop.time()

    def _phase(self) -> str:
        """``head`` (waiting for a request head), ``body`` (reading its body) or ``app``."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return "head"
        return "body" if cycle.more_body else "app"

    def _check(self) -> None:
        self._tick = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        watched = (self.cycle, self._phase())
        if watched != self._watched:
            self._watched, self._since = watched, now
        phase = watched[1]
        limit = {"head": self.header_timeout_s, "body": self.body_timeout_s}.get(phase)
        if limit is not None and now - self._since > limit:
            log.info("closing a connection that sent no whole request %s in %g s", phase, limit)
            self.transport.close()
            return
        self._tick = self.loop.call_later(TICK_S, self._check)


def deadline_protocol(header_timeout_s: float, body_timeout_s: float) -> type[H11Protocol]:
    """The protocol class for uvicorn's ``http=`` with these deadlines."""
    return type(
        "ServeH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
