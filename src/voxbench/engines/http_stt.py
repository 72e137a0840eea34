"""An OpenAI-compatible transcription endpoint (``POST /v1/audio/transcriptions``) over HTTP.

Each call uploads the audio file as ``multipart/form-data`` (``file``, ``model``,
``response_format=json`` and ``language`` when given) and reads ``{"text": ...}`` back, as an
OpenAI client does; ``voxbench serve --engine whisper`` is such an endpoint, and so are
faster-whisper-server, whisper.cpp's server and vLLM. The file is read inside the timed call (a
client has to). Stages: ``upload`` (request start to the answer's head) and one ``server.<name>``
per ``Server-Timing`` entry. The API key comes from an environment variable, as for the speech
engine (:mod:`voxbench.engines.http`), and is never recorded.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from voxbench.engine import BaseEngine, InputKind, Output, OutputKind, record_stage
from voxbench.engines.http import (
    _without_userinfo,
    close_client,
    find_api_key,
    http_errors,
    parse_server_timing,
)
from voxbench.errors import ConfigError, EngineFailed

if TYPE_CHECKING:
    import httpx

_PROBE_TIMEOUT_S = 10.0
_ERROR_BODY_CHARS = 200
_MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
}


class OpenAITranscriptionEngine(BaseEngine):
    """Any server speaking OpenAI's ``/v1/audio/transcriptions``, measured as a client."""

    name: ClassVar[str] = "http-stt"
    input_kind: ClassVar[InputKind] = "audio"
    output_kind: ClassVar[OutputKind] = "text"
    description: ClassVar[str] = "OpenAI-compatible transcription endpoint over HTTP"
    default_workloads: ClassVar[tuple[str, ...]] = ("spoken-short",)

    def __init__(
        self,
        url: str,
        model: str = "whisper-1",
        language: str | None = None,
        timeout_s: float = 120.0,
        api_key_env: str | None = None,
    ) -> None:
        if float(timeout_s) <= 0:
            raise ConfigError("timeout_s must be positive")
        self.url = url
        self.model = str(model)
        self.language = language or None
        self.timeout_s = float(timeout_s)
        self.api_key_env = api_key_env
        self._safe_url = _without_userinfo(url)
        self._client: httpx.Client | None = None
        self._key: str | None = None
        self._key_env: str | None = None
        self._server: str | None = None

    def load(self) -> None:
        """Read the API key, open a keep-alive client, and reach the server once (any status)."""
        import httpx

        if self._client is not None:
            return
        self._key_env, self._key = find_api_key(self.api_key_env)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._client = httpx.Client(timeout=self.timeout_s, headers=headers)
        try:
            with self._http_errors():
                probe = self._client.get(self.url, timeout=min(self.timeout_s, _PROBE_TIMEOUT_S))
                self._server = probe.headers.get("server")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the client and forget the key."""
        close_client(self)

    def info(self) -> dict[str, Any]:
        """Endpoint (without userinfo), model, language, key variable name and server."""
        return {
            "url": self._safe_url,
            "model": self.model,
            "language": self.language,
            "response_format": "json",
            "api_key_env": self._key_env,
            "server": self._server,
            "batch_size": 1,
        }

    def synthesize(self, inp: Path) -> Output:
        """Upload one file, answer its transcript."""
        if self._client is None:
            raise EngineFailed("http-stt engine used before load() or after close()")
        path = Path(inp)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EngineFailed(f"cannot read audio {path}: {exc.strerror or exc}") from exc
        media = _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        form = {"model": self.model, "response_format": "json"}
        if self.language:
            form["language"] = self.language
        start = time.perf_counter_ns()
        with self._http_errors():
            response = self._client.post(
                self.url, data=form, files={"file": (path.name, data, media)}
            )
        record_stage("upload", (time.perf_counter_ns() - start) / 1e6)
        self._server = response.headers.get("server")
        for name, ms in parse_server_timing(response.headers.get_list("server-timing")).items():
            record_stage(f"server.{name}", ms)
        if not response.is_success:
            text = " ".join(response.text.split())[:_ERROR_BODY_CHARS]
            raise EngineFailed(
                self.redact(f"HTTP {response.status_code} from {self._safe_url}: {text}")
            )
        try:
            body = response.json()
        except ValueError:
            raise EngineFailed(f"{self._safe_url} answered something that is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise EngineFailed(f'{self._safe_url} answered JSON without a "text" string')
        return Output(text=body["text"].strip())

    def _http_errors(self) -> AbstractContextManager[None]:
        return http_errors(self._safe_url, self.timeout_s, self.redact)

    def redact(self, message: str) -> str:
        """``message`` with the API key masked."""
        return message.replace(self._key, "***") if self._key else message
