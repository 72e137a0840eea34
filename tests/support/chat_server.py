"""A chat server of KNOWN speed for tests: OpenAI's ``/v1/chat/completions`` on 127.0.0.1.

This is a timing fixture, not a language model: it answers every prompt with the same numbered
tokens (``"t0 "``, ``"t1 "``, ...) on a fixed schedule, so that what voxbench reports can be
checked against what was set. A streamed answer sends the role header at once, token ``i`` at
``first_token_ms + i * 1000 / tokens_per_second`` after the request arrived (an absolute schedule:
no drift), then — when the client asked for it (``stream_options.include_usage``) and
``usage_in_stream`` is on — a last chunk with ``usage``, then ``data: [DONE]``. A whole answer
(``"stream": false``) comes after the time its last token would have, with ``usage``. The answer
has ``min(tokens, max_tokens)`` tokens. ``GET /v1/models`` lists ``model``::

    with ChatServer(first_token_ms=200, tokens_per_second=50, tokens=21) as base:
        ...  # base is http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_START_TIMEOUT_S = 10.0
PROMPT_TOKENS = 7  # what the server says every prompt was, in usage


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "test"}}, status_code=status)


def _sse(obj: object) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


class ChatServer:
    """The server in a background thread; ``with`` starts it and gives the API base URL.

    ``requests`` collects the JSON body of every chat request, for tests to inspect.
    """

    def __init__(
        self,
        *,
        first_token_ms: float = 200.0,
        tokens_per_second: float = 50.0,
        tokens: int = 21,
        usage_in_stream: bool = True,
        model: str = "known-speed",
        fail_status: int | None = None,
        api_key: str | None = None,
    ) -> None:
        self.first_token_ms = first_token_ms
        self.tokens_per_second = tokens_per_second
        self.tokens = tokens
        self.usage_in_stream = usage_in_stream
        self.model = model
        self.fail_status = fail_status
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> str:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="chat-server", daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._wait_for_port()}/v1"

    def _wait_for_port(self) -> int:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the chat server did not start")
            time.sleep(0.01)
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=_START_TIMEOUT_S)

    # --- the application -------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def _unauthorised(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return _error(401, "missing or wrong API key")
        return None

    async def _models(self, request: Request) -> Response:
        if (denied := self._unauthorised(request)) is not None:
            return denied
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    def token(self, i: int) -> str:
        return f"t{i} "

    def answer(self, count: int) -> str:
        """The whole answer of ``count`` tokens."""
        return "".join(self.token(i) for i in range(count))

    def _at(self, i: int) -> float:
        """Seconds after the request arrived at which token ``i`` goes out."""
        return self.first_token_ms / 1000 + i / self.tokens_per_second

    def _usage(self, count: int) -> dict[str, int]:
        return {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": count,
            "total_tokens": PROMPT_TOKENS + count,
        }

    async def _chat(self, request: Request) -> Response:
        arrived = asyncio.get_running_loop().time()
        if (denied := self._unauthorised(request)) is not None:
            return denied
        auth = request.headers.get("authorization", "")
        if self.fail_status is not None:
            return _error(self.fail_status, f"injected failure ({auth or 'no key'})")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        self.requests.append(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            # llama.cpp's chat templates need plain strings: hold clients to that.
            return _error(400, "each message's content must be a string")
        count = min(self.tokens, int(body.get("max_tokens") or self.tokens))
        if not body.get("stream"):
            await self._until(arrived, self._at(count - 1))
            return JSONResponse(
                {
                    "id": "chatcmpl-known",
                    "object": "chat.completion",
                    "model": self.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": self.answer(count)},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": self._usage(count),
                }
            )
        options = body.get("stream_options") or {}
        usage = self.usage_in_stream and bool(options.get("include_usage"))
        return StreamingResponse(
            self._stream(arrived, count, usage), media_type="text/event-stream"
        )

    async def _until(self, arrived: float, offset: float) -> None:
        loop = asyncio.get_running_loop()
        delay = arrived + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _chunk(self, delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-known",
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    async def _stream(self, arrived: float, count: int, usage: bool) -> AsyncIterator[bytes]:
        yield _sse(self._chunk({"role": "assistant", "content": ""}))
        yield b": keep-alive\n\n"  # a comment, as some servers send
        for i in range(count):
            await self._until(arrived, self._at(i))
            yield _sse(self._chunk({"content": self.token(i)}))
        yield _sse(self._chunk({}, finish="length"))
        if usage:
            yield _sse(
                {
                    "id": "chatcmpl-known",
                    "object": "chat.completion.chunk",
                    "model": self.model,
                    "choices": [],
                    "usage": self._usage(count),
                }
            )
        yield b"data: [DONE]\n\n"
