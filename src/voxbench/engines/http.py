"""An OpenAI-compatible speech endpoint (``POST /v1/audio/speech``) benchmarked over HTTP.

The engine sends ``{"model", "voice", "input", "response_format", "speed", "stream"}`` and reads
audio back: WAV, or raw 16-bit little-endian mono PCM — at the rate the server announces in
``X-Sample-Rate`` (``voxbench serve`` does), else ``pcm_sample_rate``, else 24 kHz (OpenAI's). Streaming calls read the body as it arrives
and hand each piece of decodable audio on at once, so time to first audio is what a client of the
server sees. Stages recorded per call: ``ttfb`` (request sent to the first byte of the body) and one
``server.<name>`` per ``Server-Timing`` entry the server reports.

The API key is read from an environment variable in :meth:`OpenAISpeechEngine.load` and lives only
in the HTTP client's headers; results record the variable's name, never its value.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from voxbench.engine import BaseEngine, Chunk, InputKind, Output, record_stage, stage
from voxbench.errors import ConfigError, EngineFailed
from voxbench.wav import RawDecoder, WavDecoder, WavFormat, pcm16_format

if TYPE_CHECKING:
    import httpx

DEFAULT_KEY_ENVS = ("VOXBENCH_API_KEY", "OPENAI_API_KEY")
FORMATS = ("wav", "pcm")
_PROBE_TIMEOUT_S = 10.0
_ERROR_BODY_CHARS = 200
DEFAULT_PCM_RATE = 24000  # OpenAI's pcm format, when neither the server nor the user says
# The decoder's name here before it moved to voxbench.wav, kept for code that imports it.
WavStreamDecoder = WavDecoder
__all__ = [
    "DEFAULT_KEY_ENVS",
    "FORMATS",
    "OpenAISpeechEngine",
    "WavFormat",
    "WavStreamDecoder",
    "close_client",
    "http_errors",
    "parse_server_timing",
    "pcm16_format",
]


# --- Server-Timing -------------------------------------------------------------------------------


def _split_unquoted(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep``, except inside double-quoted strings (as in ``desc="a, b"``)."""
    pattern = rf'(?:[^{sep}"]|"(?:\\.|[^"\\])*")+'
    return [part.strip() for part in re.findall(pattern, text) if part.strip()]


def _duration(params: list[str]) -> float | None:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "dur":
            try:
                ms = float(value.strip().strip('"'))
            except ValueError:
                return None
            return ms if math.isfinite(ms) and ms >= 0 else None
    return None


def parse_server_timing(headers: Iterable[str]) -> dict[str, float]:
    """Milliseconds per metric name from ``Server-Timing`` header values.

    Each value is a comma-separated list of ``name;dur=12.3;desc="..."``; entries without a usable
    ``dur`` are ignored and a name reported twice adds up, as :func:`voxbench.stage` does.
    """
    found: dict[str, float] = {}
    for header in headers:
        for entry in _split_unquoted(header, ","):
            name, *params = _split_unquoted(entry, ";") or [""]
            ms = _duration(params)
            if name and ms is not None:
                found[name] = found.get(name, 0.0) + ms
    return found


# --- the engine ----------------------------------------------------------------------------------


def _announced_rate(value: str | None) -> int | None:
    """The Hz of an ``X-Sample-Rate`` header; None when absent or not a positive integer."""
    if value is None or not value.strip().isdigit() or int(value) <= 0:
        return None
    return int(value)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class OpenAISpeechEngine(BaseEngine):
    """Any server speaking OpenAI's ``/v1/audio/speech``, measured as a client over HTTP/1.1."""

    name: ClassVar[str] = "http"
    input_kind: ClassVar[InputKind] = "text"
    description: ClassVar[str] = "OpenAI-compatible speech endpoint over HTTP (streaming)"
    default_workloads: ClassVar[tuple[str, ...]] = ("short", "medium", "long")

    def __init__(
        self,
        url: str,
        model: str = "tts-1",
        voice: str = "alloy",
        response_format: str = "wav",
        speed: float | None = None,
        stream: bool = True,
        pcm_sample_rate: int | None = None,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``timeout`` bounds each network wait (connect, each read) in seconds.

        ``extra`` fields are added to the request body last, so they may override the others.
        With ``stream=False`` the engine has no ``stream`` method and every call is a whole body.
        ``pcm_sample_rate`` is the Hz of raw PCM answers that carry no ``X-Sample-Rate`` header
        (None: 24000).
        """
        if response_format not in FORMATS:
            raise ConfigError(
                f"response_format {response_format!r} is not supported (use one of {FORMATS})"
            )
        if extra is not None and not isinstance(extra, dict):
            raise ConfigError(f"extra must be a mapping of request fields, not {extra!r}")
        if float(timeout) <= 0 or (pcm_sample_rate is not None and int(pcm_sample_rate) <= 0):
            raise ConfigError("timeout and pcm_sample_rate must be positive")
        self.url = url
        self.model = str(model)
        self.voice = str(voice)
        self.response_format = response_format
        self.speed = None if speed is None else float(speed)
        self.streaming = bool(stream)
        self.pcm_rate_source = "default" if pcm_sample_rate is None else "option"
        self.pcm_sample_rate = DEFAULT_PCM_RATE if pcm_sample_rate is None else int(pcm_sample_rate)
        self._announced_rate: int | None = None  # the last answer's X-Sample-Rate
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.extra = dict(extra or {})
        self._safe_url = _without_userinfo(url)
        self._client: httpx.Client | None = None
        self._key: str | None = None
        self._key_env: str | None = None
        self._server: str | None = None
        self._http_version: str | None = None
        if not self.streaming:
            # can_stream() looks for a callable `stream`; hiding it makes the harness synthesize.
            self.stream = None  # type: ignore[assignment, method-assign]

    # --- lifecycle -------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the API key, open a keep-alive HTTP/1.1 client and learn who answers.

        One GET on the URL (any status will do) opens the connection and tells the ``Server``
        header and HTTP version for :meth:`info`; a server that cannot be reached fails here.
        """
        import httpx

        if self._client is not None:
            return
        self._key_env, self._key = self._find_key()
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.Client(timeout=self.timeout, headers=headers)
        try:
            with self._http_errors():
                probe_timeout = min(self.timeout, _PROBE_TIMEOUT_S)
                self._note_server(self._client.get(self.url, timeout=probe_timeout))
        except BaseException:
            self.close()
            raise

    def _find_key(self) -> tuple[str | None, str | None]:
        return find_api_key(self.api_key_env)

    def close(self) -> None:
        """Close the client and its connections, and forget the key."""
        close_client(self)

    def info(self) -> dict[str, Any]:
        """Endpoint (without userinfo), request settings, key variable name, server and protocol."""
        result: dict[str, Any] = {
            "url": self._safe_url,
            "model": self.model,
            "voice": self.voice,
            "response_format": self.response_format,
            "stream": self.streaming,
            "speed": self.speed,
            "api_key_env": self._key_env,
            "server": self._server,
            "http_version": self._http_version,
        }
        if self.response_format == "pcm":
            # Known before any call: a server's X-Sample-Rate overrides it per answer.
            result["pcm_sample_rate"] = self.pcm_sample_rate
            result["pcm_sample_rate_source"] = self.pcm_rate_source
        if self.extra:
            result["extra"] = self.extra
        return result

    # --- calls -----------------------------------------------------------------------------------

    def synthesize(self, inp: str) -> Output:
        """One whole-body request (``"stream": false``); the audio is decoded after the last byte."""
        body = b"".join(self._body(inp, stream=False))
        decoder = self._decoder()  # after the head: X-Sample-Rate is known
        with stage("decode"):
            audio = decoder.feed(body)
            decoder.finish()
        return Output(audio=audio, sample_rate=decoder.sample_rate)

    def stream(self, inp: str) -> Iterator[Chunk]:
        """One streaming request (``"stream": true``): a Chunk for each piece of the body that
        completes at least one sample."""
        decoder: WavDecoder | None = None
        for data in self._body(inp, stream=True):
            decoder = decoder or self._decoder()  # after the head: X-Sample-Rate is known
            audio = decoder.feed(data)
            if len(audio):
                assert decoder.sample_rate is not None
                yield Chunk(audio=audio, sample_rate=decoder.sample_rate)
        (decoder or self._decoder()).finish()

    def _decoder(self) -> WavDecoder:
        """The decoder of the current answer: raw PCM at the announced rate, else the option's
        (or the default), or WAV."""
        if self.response_format == "pcm":
            return RawDecoder(self._announced_rate or self.pcm_sample_rate)
        return WavDecoder()

    def _payload(self, text: str, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "voice": self.voice,
            "input": text,
            "response_format": self.response_format,
            "stream": stream,
        }
        if self.speed is not None:
            body["speed"] = self.speed
        body.update(self.extra)
        return body

    def _body(self, text: str, *, stream: bool) -> Iterator[bytes]:
        """POST the request and yield the body as it arrives; record ``ttfb`` and server stages."""
        if self._client is None:
            raise EngineFailed("http engine used before load() or after close()")
        start = time.perf_counter_ns()
        with (
            self._http_errors(),
            self._client.stream("POST", self.url, json=self._payload(text, stream)) as response,
        ):
            self._note_server(response)
            self._announced_rate = _announced_rate(response.headers.get("x-sample-rate"))
            for name, ms in parse_server_timing(response.headers.get_list("server-timing")).items():
                record_stage(f"server.{name}", ms)
            self._raise_for_status(response)
            first = True
            for data in response.iter_bytes():
                if data and first:
                    record_stage("ttfb", (time.perf_counter_ns() - start) / 1e6)
                    first = False
                yield data

    def _http_errors(self) -> AbstractContextManager[None]:
        return http_errors(self._safe_url, self.timeout, self.redact)

    def _note_server(self, response: httpx.Response) -> None:
        self._server = response.headers.get("server")
        self._http_version = response.http_version

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        text = " ".join(response.read().decode("utf-8", errors="replace").split())
        hint = ""
        if response.status_code == 401 and not self._key:
            hint = (
                " (no API key was sent: set $VOXBENCH_API_KEY or $OPENAI_API_KEY, or api_key_env)"
            )
        raise EngineFailed(
            self.redact(
                f"HTTP {response.status_code} from {self._safe_url}: "
                f"{text[:_ERROR_BODY_CHARS]}{hint}"
            )
        )

    def redact(self, message: str) -> str:
        """``message`` with the API key masked: servers and proxies may echo it in an error body."""
        return message.replace(self._key, "***") if self._key else message


@contextmanager
def http_errors(
    safe_url: str,
    timeout_s: float,
    redact: Callable[[str], str] = str,
    *,
    squash: bool = False,
) -> Iterator[None]:
    """httpx's transport errors inside the block as one-line EngineFailed errors: a timeout as
    "``safe_url`` did not answer within ``timeout_s`` s", any other error as "request to
    ``safe_url`` failed: ..." passed through ``redact`` (which masks the API key: an error may
    quote the request). ``squash`` folds runs of white space in the error's text into one space
    (the chat engine's messages)."""
    import httpx

    try:
        yield
    except httpx.TimeoutException as exc:
        raise EngineFailed(
            f"{safe_url} did not answer within {timeout_s:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:
        detail = " ".join(str(exc).split()) if squash else str(exc)
        raise EngineFailed(
            redact(f"request to {safe_url} failed: {type(exc).__name__}: {detail}")
        ) from exc


class ClientOwner(Protocol):
    """An engine holding a keep-alive HTTP client and the API key it sends."""

    _client: httpx.Client | None
    _key: str | None


def close_client(owner: ClientOwner) -> None:
    """Close ``owner``'s HTTP client and its connections (when open), and forget the key; safe to
    call twice."""
    if owner._client is not None:
        owner._client.close()
        owner._client = None
    owner._key = None


def find_api_key(api_key_env: str | None) -> tuple[str | None, str | None]:
    """``(variable name, key)``: the variable ``api_key_env`` names (a one-line ConfigError when
    it is unset), else the first of :data:`DEFAULT_KEY_ENVS` that is set, else ``(None, None)``."""
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(
                f"environment variable {api_key_env} (api_key_env) is not set or empty"
            )
        return api_key_env, key
    for env in DEFAULT_KEY_ENVS:
        if os.environ.get(env):
            return env, os.environ[env]
    return None, None
