"""An OpenAI-compatible chat endpoint (``POST /v1/chat/completions``) benchmarked over HTTP.

Each call sends one user message (its content a plain string: llama.cpp's chat templates break on
OpenAI's list-of-parts form) and reads the answer back. Streaming calls (``"stream": true``, with
``stream_options: {"include_usage": true}``) read the server-sent events as they arrive and hand
each content delta on as a :class:`~voxbench.engine.TextChunk`, so time to first token and the gaps
between tokens are what a client of the server sees; a final ``usage`` object, when the server
sends one, becomes the call's token count (``tokens_source="usage"``), else voxbench counts the
deltas (``"counted"``). Whole-body calls (``stream=False``) answer ``Output(text, tokens=usage)``.

The URL may be the API base (``http://host:port/v1``) or the full ``…/v1/chat/completions``; with
no ``model`` the first id ``GET /v1/models`` lists is used. The API key is read from
``$OPENAI_API_KEY`` (or the variable ``api_key_env`` names) in :meth:`OpenAIChatEngine.load` and
lives only in the HTTP client's headers; results record the variable's name, never its value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from voxbench.engine import BaseEngine, InputKind, Output, OutputKind, TextChunk
from voxbench.engines.http import close_client, http_errors
from voxbench.engines.registry import redact
from voxbench.errors import ConfigError, EngineFailed

if TYPE_CHECKING:
    import httpx

CHAT_PATH = "/chat/completions"
MODELS_PATH = "/models"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_PROBE_TIMEOUT_S = 10.0
_ERROR_BODY_CHARS = 200

__all__ = ["OpenAIChatEngine", "endpoints", "parse_sse"]


def endpoints(url: str) -> tuple[str, str]:
    """``(chat completions URL, models URL)`` of a base (``…/v1``) or full (``…/chat/completions``)
    URL; a URL with no path at all gets ``/v1``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{redact(url)!r} is not an http(s) URL of a chat endpoint")
    path = parts.path.rstrip("/")
    if path.endswith(CHAT_PATH):
        path = path[: -len(CHAT_PATH)]
    elif not path:
        path = "/v1"
    base = urlunsplit(parts._replace(path=path, query="", fragment=""))
    query = f"?{parts.query}" if parts.query else ""
    return base + CHAT_PATH + query, base + MODELS_PATH + query


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of an OpenAI-style event stream, up to ``data: [DONE]``.

    Comments (``: keep-alive``), other fields (``event:``, ``id:``) and blank separators are
    skipped; a ``data`` line that is not JSON is a one-line EngineFailed.
    """
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        if not data:
            continue
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise EngineFailed(f"bad event in the stream: {data[:_ERROR_BODY_CHARS]!r}") from exc
        if isinstance(event, dict):
            yield event


def _error_of(event: dict[str, Any]) -> str | None:
    error = event.get("error")
    if error is None:
        return None
    message = error.get("message") if isinstance(error, dict) else error
    return " ".join(str(message).split())[:_ERROR_BODY_CHARS]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _delta_text(event: dict[str, Any]) -> str:
    """The content of a chunk's first choice (an empty string for role headers and the end)."""
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


class OpenAIChatEngine(BaseEngine):
    """Any server speaking OpenAI's ``/v1/chat/completions``, measured as a client over HTTP."""

    name: ClassVar[str] = "llm"
    input_kind: ClassVar[InputKind] = "text"
    output_kind: ClassVar[OutputKind] = "text"
    description: ClassVar[str] = "OpenAI-compatible chat completions endpoint (streaming SSE)"
    default_workloads: ClassVar[tuple[str, ...]] = ("prompts",)

    def __init__(
        self,
        url: str,
        model: str | None = None,
        max_tokens: int = 64,
        temperature: float = 0.0,
        timeout_s: float = 120.0,
        api_key_env: str = DEFAULT_KEY_ENV,
        stream: bool = True,
        system: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``timeout_s`` bounds each network wait (connect, each read) in seconds; ``system`` is an
        optional system message; ``extra`` fields are added to the request body last."""
        if int(max_tokens) <= 0 or float(timeout_s) <= 0:
            raise ConfigError("max_tokens and timeout_s must be positive")
        if extra is not None and not isinstance(extra, dict):
            raise ConfigError(f"extra must be a mapping of request fields, not {extra!r}")
        self.url = url
        self.model = None if model is None else str(model)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.timeout_s = float(timeout_s)
        self.api_key_env = str(api_key_env)
        self.streaming = bool(stream)
        self.system = system
        self.extra = dict(extra or {})
        self._client: httpx.Client | None = None
        self._key: str | None = None
        self._key_env: str | None = None
        if not self.streaming:
            # can_stream() looks for a callable `stream`; hiding it makes the harness synthesize.
            self.stream = None  # type: ignore[assignment, method-assign]

    @property
    def safe_url(self) -> str:
        """The URL as results record it: no userinfo."""
        return redact(_without_userinfo(self.url))

    # --- lifecycle -------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the API key, open a keep-alive client and learn the model (``GET /v1/models``).

        A server that cannot be reached fails here; with a ``model`` given, a server without a
        models list (any HTTP status) is fine.
        """
        import httpx

        if self._client is not None:
            return
        self._chat_url, self._models_url = endpoints(self.url)
        self._key = os.environ.get(self.api_key_env) or None
        if self._key is None and self.api_key_env != DEFAULT_KEY_ENV:
            raise ConfigError(
                f"environment variable {self.api_key_env} (api_key_env) is not set or empty"
            )
        self._key_env = self.api_key_env if self._key else None
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.Client(timeout=self.timeout_s, headers=headers)
        try:
            with self._http_errors():
                probe = min(self.timeout_s, _PROBE_TIMEOUT_S)
                response = self._client.get(self._models_url, timeout=probe)
                if self.model is None:
                    self._raise_for_status(response)
                    self.model = self._first_model(response)
        except BaseException:
            self.close()
            raise

    def _first_model(self, response: httpx.Response) -> str:
        try:
            models = response.json()["data"]
            return str(models[0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise EngineFailed(
                f"{self.safe_url}: GET {MODELS_PATH} listed no model id; pass model=..."
            ) from exc

    def close(self) -> None:
        """Close the client and its connections, and forget the key."""
        close_client(self)

    def info(self) -> dict[str, Any]:
        """Endpoint (without userinfo), model and request settings, and the key variable's name."""
        result: dict[str, Any] = {
            "url": self.safe_url,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "streaming": self.streaming,
            "api_key_env": self._key_env,
        }
        if self.system is not None:
            result["system"] = self.system
        if self.extra:
            result["extra"] = self.extra
        return result

    # --- calls -----------------------------------------------------------------------------------

    def _payload(self, prompt: str, stream: bool) -> dict[str, Any]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": str(prompt)})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(self.extra)
        return body

    def _ready(self) -> httpx.Client:
        if self._client is None:
            raise EngineFailed(f"{self.name} engine used before load() or after close()")
        return self._client

    def synthesize(self, inp: str) -> Output:
        """One whole-body request (``"stream": false``): the answer and the server's usage."""
        client = self._ready()
        with self._http_errors():
            response = client.post(self._chat_url, json=self._payload(inp, stream=False))
            self._raise_for_status(response)
        try:
            body = response.json()
            text = body["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise EngineFailed(
                f"{self.safe_url} answered no choices[0].message.content: "
                f"{response.text[:_ERROR_BODY_CHARS]!r}"
            ) from exc
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tokens = _int(usage.get("completion_tokens"))
        return Output(
            text=str(text),
            tokens=tokens,
            input_tokens=_int(usage.get("prompt_tokens")),
            tokens_source="usage" if tokens is not None else None,
        )

    def stream(self, inp: str) -> Iterator[TextChunk]:
        """One streaming request: a TextChunk per content delta, then the usage when sent."""
        client = self._ready()
        payload = self._payload(inp, stream=True)
        with (
            self._http_errors(),
            client.stream("POST", self._chat_url, json=payload) as response,
        ):
            self._raise_for_status(response)
            for event in parse_sse(response.iter_lines()):
                error = _error_of(event)
                if error is not None:
                    raise EngineFailed(self.redact(f"{self.safe_url} streamed an error: {error}"))
                text = _delta_text(event)
                if text:
                    yield TextChunk(text=text)
                usage = event.get("usage")
                if isinstance(usage, dict) and _int(usage.get("completion_tokens")) is not None:
                    yield TextChunk(
                        text="",
                        usage_tokens=_int(usage.get("completion_tokens")),
                        input_tokens=_int(usage.get("prompt_tokens")),
                    )

    # --- errors ----------------------------------------------------------------------------------

    def _http_errors(self) -> AbstractContextManager[None]:
        return http_errors(self.safe_url, self.timeout_s, self.redact, squash=True)

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        text = " ".join(response.read().decode("utf-8", errors="replace").split())
        hint = ""
        if response.status_code == 401 and not self._key:
            hint = (
                f" (no API key was sent: set ${self.api_key_env}, or name another in api_key_env)"
            )
        where = redact(_without_userinfo(str(response.request.url)))
        raise EngineFailed(
            self.redact(
                f"HTTP {response.status_code} from {where}: {text[:_ERROR_BODY_CHARS]}{hint}"
            )
        )

    def redact(self, message: str) -> str:
        """``message`` with the API key masked: servers and proxies may echo it in an error body."""
        return message.replace(self._key, "***") if self._key else message
