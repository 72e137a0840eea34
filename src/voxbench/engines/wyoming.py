"""A Wyoming server (Home Assistant's voice protocol) as an engine: ``wyoming://host:port``.

``load()`` connects, sends ``describe`` and reads ``info``: a server with a ``tts`` program takes text
and answers audio, one with an ``asr`` program takes audio and answers text; the instance's
``input_kind``/``output_kind`` are set from it (:meth:`WyomingEngine.kinds_for` asks the same
before a run is planned).

- **Speech synthesis**: ``synthesize`` (or, when the server's info says
  ``supports_synthesize_streaming``, ``synthesize-start`` / ``synthesize-chunk`` / ``synthesize``
  / ``synthesize-stop``), then ``audio-start``, ``audio-chunk``\\ s, ``audio-stop`` (one run of them
  per sentence when streaming, ended by ``synthesize-stopped``). ``stream()`` yields each
  ``audio-chunk`` as it arrives, so time to first audio is the server's. One TCP connection is kept
  for every call of the engine (reopened when the server closes it).
- **Speech recognition**: ``transcribe``, ``audio-start``, the whole file as 16 kHz 16-bit mono
  ``audio-chunk``\\ s of 100 ms sent as fast as the socket takes them (not paced in real time),
  ``audio-stop``; then ``transcript`` (with ``transcript-chunk``\\ s before it when the server
  streams them, each a :class:`TextChunk`). wyoming-faster-whisper closes the connection after
  each transcript, so a call opens its own (a loopback connect costs ~0.1 ms of the call). The
  audio of a file is decoded and resampled once, on its first call (the cold one), and kept.
- **Live input** (``listen(blocks, sample_rate)``, a voice pipeline's microphone): ``transcribe``
  and ``audio-start``, then one ``audio-chunk`` per block as each arrives, ``audio-stop`` when the
  blocks end, then the ``transcript`` (the final :class:`TextChunk`). A thread reads the server's
  events meanwhile, so ``transcript-chunk``\\ s are yielded as partials (the text so far) between
  blocks, or after ``audio-stop``, whenever the server sends them; ``input_sample_rate`` is 16 kHz.

Plain sockets and the ``wyoming`` package's own event framing are used (no asyncio loop per call).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, cast
from urllib.parse import urlsplit

from voxbench.engine import BaseEngine, Chunk, InputKind, Output, OutputKind, TextChunk
from voxbench.engines.footprint import footprint
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

if TYPE_CHECKING:
    import numpy as np

_INSTALL_HINT = "pip install wyoming"
STT_RATE = 16000
STT_CHUNK_SAMPLES = 1600  # 100 ms per audio-chunk


def parse_url(url: str) -> tuple[str, int]:
    """``wyoming://host:port`` (or ``tcp://host:port``) as ``(host, port)``; ConfigError if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("wyoming", "tcp") or not parts.hostname:
        raise ConfigError(f"a Wyoming server is given as wyoming://host:port, not {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise ConfigError(f"the Wyoming server {url!r} needs a port (wyoming://host:port)")
    return parts.hostname, port


class _Connection:
    """One TCP connection speaking Wyoming events (JSON header line, data, payload)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Buffered socket files are BinaryIO in all but name (typeshed: BufferedReader/Writer).
        self.reader = cast(BinaryIO, self.sock.makefile("rb"))
        self.writer = cast(BinaryIO, self.sock.makefile("wb"))

    def send(self, *events: Any) -> None:
        from wyoming.event import write_event

        for event in events:
            write_event(event.event() if hasattr(event, "event") else event, self.writer)

    def receive(self) -> Any:
        """The next event; EngineFailed when the server closed the connection."""
        from wyoming.event import read_event

        event = read_event(self.reader)
        if event is None:
            raise EngineFailed("the Wyoming server closed the connection")
        if event.type == "error":
            text = event.data.get("text", "")
            code = event.data.get("code", "")
            raise EngineFailed(f"the Wyoming server answered an error: {code} {text}".strip())
        return event

    def close(self) -> None:
        # Shut down first: it wakes a thread blocked reading (listen's), which holds the reader's
        # lock that closing the reader would wait for.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        for stream in (self.reader, self.writer):
            with contextlib.suppress(OSError):
                stream.close()
        self.sock.close()


def _describe(host: str, port: int, timeout_s: float) -> dict[str, Any]:
    """The server's ``info`` event data; ConfigError (one line) when it cannot be reached."""
    try:
        conn = _Connection(host, port, timeout_s)
    except OSError as exc:
        raise ConfigError(f"cannot reach the Wyoming server at {host}:{port}: {exc}") from None
    try:
        from wyoming.info import Describe

        conn.send(Describe())
        while True:
            event = conn.receive()
            if event.type == "info":
                return dict(event.data)
    except (OSError, EngineFailed) as exc:
        raise ConfigError(f"the Wyoming server at {host}:{port} sent no info: {exc}") from None
    finally:
        conn.close()


def _kinds(info: dict[str, Any], url: str) -> tuple[InputKind, OutputKind]:
    if info.get("tts"):
        return "text", "audio"
    if info.get("asr"):
        return "audio", "text"
    offered = ", ".join(k for k, v in info.items() if isinstance(v, list) and v) or "nothing"
    raise ConfigError(
        f"the Wyoming server at {url} offers no tts or asr program (it offers {offered})"
    )


class _Replies:
    """The server's events, read by a thread so that ``listen`` takes them between blocks.

    Its connection has no socket timeout (a reader idle for a long utterance must not time out);
    the wait for the transcript after ``audio-stop`` is bounded by :meth:`next` instead.
    """

    def __init__(self, conn: _Connection) -> None:
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._read, args=(conn,), name="wyoming-listen", daemon=True
        )
        self._thread.start()

    def _read(self, conn: _Connection) -> None:
        while True:
            try:
                event = conn.receive()
            except Exception as exc:  # closed, an error event, a bad frame: raised in the caller
                self._events.put(exc)
                return
            self._events.put(event)
            if event.type == "transcript":
                return

    def ready(self) -> Iterator[Any]:
        """The events that have arrived, without waiting for more."""
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return
            yield _raised(item)

    def next(self, timeout_s: float) -> Any:
        """The next event, waiting up to ``timeout_s``; None when none came."""
        try:
            item = self._events.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return None
        return _raised(item)

    def join(self) -> None:
        """Wait (briefly) for the reading thread, once its connection is closed."""
        self._thread.join(timeout=1.0)


def _raised(item: Any) -> Any:
    if isinstance(item, EngineFailed):
        raise item
    if isinstance(item, Exception):
        raise EngineFailed(f"the Wyoming server failed mid-call: {item}") from None
    return item


def _to_pcm(audio: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM (clipped, truncated)."""
    import numpy as np

    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _pcm_to_float(pcm: bytes, width: int, channels: int) -> np.ndarray:
    import numpy as np

    if width != 2:
        raise EngineFailed(f"the Wyoming server sent {8 * width}-bit audio; voxbench reads 16-bit")
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * channels)], dtype="<i2")
    audio = samples.astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return audio


class WyomingEngine(BaseEngine):
    """A Wyoming TTS or ASR server, reached over TCP (see the module's docstring)."""

    name: ClassVar[str] = "wyoming"
    input_kind: ClassVar[InputKind] = "text"  # the instance's own is set by load()
    output_kind: ClassVar[OutputKind] = "audio"
    description: ClassVar[str] = "a Wyoming protocol server (TTS or ASR), wyoming://host:port"
    default_workloads: ClassVar[tuple[str, ...]] = ()
    input_sample_rate: ClassVar[int] = STT_RATE  # listen()'s blocks (the server may convert)

    def __init__(
        self,
        url: str = "wyoming://127.0.0.1:10200",
        voice: str | None = None,
        timeout_s: float = 60.0,
        language: str | None = None,
        streaming: bool | None = None,
    ) -> None:
        self.url = url
        self.host, self.port = parse_url(url)
        self.voice = voice
        self.timeout_s = float(timeout_s)
        self.language = language
        self.streaming = streaming  # None: when the server's info says it streams
        self._info: dict[str, Any] | None = None
        self._conn: _Connection | None = None
        self._pcm: dict[str, tuple[bytes, float]] = {}

    @classmethod
    def check(cls) -> str | None:
        """None when the wyoming package is installed, else the fix."""
        import importlib.util

        if importlib.util.find_spec("wyoming") is None:
            return f"the wyoming package is not installed ({_INSTALL_HINT})"
        return None

    @classmethod
    def kinds_for(cls, url: str) -> tuple[InputKind, OutputKind]:
        """``("text", "audio")`` for a TTS server, ``("audio", "text")`` for an ASR one."""
        if cls.check() is not None:
            raise EngineUnavailable(f"the wyoming package is not installed ({_INSTALL_HINT})")
        host, port = parse_url(url)
        return _kinds(_describe(host, port, 10.0), url)

    # --- lifecycle -------------------------------------------------------------------------------

    def load(self) -> None:
        """Describe the server and set this instance's kinds from its info."""
        if self._info is not None:
            return
        if self.check() is not None:
            raise EngineUnavailable(f"the wyoming package is not installed ({_INSTALL_HINT})")
        info = _describe(self.host, self.port, self.timeout_s)
        kinds = _kinds(info, self.url)
        self.input_kind, self.output_kind = kinds  # type: ignore[misc]  # per instance, by design
        self._info = info
        if kinds[1] == "audio":
            self._connection()  # the TTS connection is kept: open it in the cold start

    def close(self) -> None:
        """Close the kept connection."""
        self._drop()
        self._info = None

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> _Connection:
        if self._conn is None:
            try:
                self._conn = _Connection(self.host, self.port, self.timeout_s)
            except OSError as exc:
                raise EngineFailed(
                    f"cannot reach the Wyoming server at {self.url}: {exc}"
                ) from None
        return self._conn

    def _program(self) -> dict[str, Any]:
        if self._info is None:
            raise EngineFailed("wyoming engine used before load() or after close()")
        programs = self._info.get("tts") or self._info.get("asr") or [{}]
        return dict(programs[0])

    def _streams_synthesis(self) -> bool:
        if self.streaming is not None:
            return self.streaming
        return bool(self._program().get("supports_synthesize_streaming"))

    # --- calls -----------------------------------------------------------------------------------

    def synthesize(self, inp: Any) -> Output:
        """TTS: the whole audio; ASR: the transcript of one audio file."""
        if self.output_kind == "text":
            return Output(text="".join(_text_of(piece) for piece in self._transcribe(Path(inp))))
        import numpy as np

        pieces: list[np.ndarray] = []
        rate = 0
        for chunk in self._speak(str(inp)):
            pieces.append(chunk.audio)
            rate = chunk.sample_rate
        if not pieces or rate <= 0:
            raise EngineFailed("the Wyoming server sent no audio")
        return Output(audio=np.concatenate(pieces), sample_rate=rate)

    def stream(self, inp: Any) -> Iterator[Chunk | TextChunk]:
        """TTS: each audio-chunk as it arrives; ASR: transcript chunks, or the transcript."""
        if self.output_kind == "text":
            yield from self._transcribe(Path(inp))
        else:
            yield from self._speak(str(inp))

    def _speak(self, text: str) -> Iterator[Chunk]:
        from wyoming.tts import (
            Synthesize,
            SynthesizeChunk,
            SynthesizeStart,
            SynthesizeStop,
            SynthesizeVoice,
        )

        voice = SynthesizeVoice(name=self.voice) if self.voice else None
        streaming = self._streams_synthesis()
        if streaming:
            # The plain synthesize goes too, as Home Assistant sends it, for servers that ignore
            # the stream events; a streaming server ignores it.
            events: tuple[Any, ...] = (
                SynthesizeStart(voice=voice),
                SynthesizeChunk(text=text),
                Synthesize(text=text, voice=voice),
                SynthesizeStop(),
            )
        else:
            events = (Synthesize(text=text, voice=voice),)
        conn = self._send_kept(events)
        done = False
        try:
            got_audio = False
            while True:
                event = conn.receive()
                if event.type == "audio-chunk" and event.payload:
                    got_audio = True
                    data = event.data
                    audio = _pcm_to_float(
                        event.payload, int(data.get("width", 2)), int(data.get("channels", 1))
                    )
                    yield Chunk(audio=audio, sample_rate=int(data["rate"]))
                elif event.type == "synthesize-stopped" or (
                    event.type == "audio-stop" and not streaming
                ):
                    break
            if not got_audio:
                raise EngineFailed("the Wyoming server sent no audio")
            done = True
        finally:
            if not done:  # a stream left half read: the next call must not read its rest
                self._drop()

    def _send_kept(self, events: tuple[Any, ...]) -> _Connection:
        """Send on the kept connection, reopening it once if the server had closed it."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.send(*events)
                return conn
            except OSError:
                self._drop()
                if attempt == 2:
                    raise EngineFailed(f"cannot send to the Wyoming server at {self.url}") from None
        raise AssertionError("unreachable")

    def _transcribe(self, path: Path) -> Iterator[TextChunk]:
        from wyoming.asr import Transcribe
        from wyoming.audio import AudioChunk, AudioStart, AudioStop

        pcm, _seconds = self._audio(path)
        program = self._program()
        models = program.get("models") or [{}]
        try:
            conn = _Connection(self.host, self.port, self.timeout_s)
        except OSError as exc:
            raise EngineFailed(f"cannot reach the Wyoming server at {self.url}: {exc}") from None
        try:
            fmt = {"rate": STT_RATE, "width": 2, "channels": 1}
            step = STT_CHUNK_SAMPLES * 2
            timestamp = 0
            conn.send(
                Transcribe(name=models[0].get("name"), language=self.language), AudioStart(**fmt)
            )
            for start in range(0, len(pcm), step):
                conn.send(AudioChunk(audio=pcm[start : start + step], timestamp=timestamp, **fmt))
                timestamp += STT_CHUNK_SAMPLES * 1000 // STT_RATE
            conn.send(AudioStop(timestamp=timestamp))
            streamed = False
            while True:
                event = conn.receive()
                if event.type == "transcript-chunk":
                    streamed = True
                    yield TextChunk(text=str(event.data.get("text", "")))
                elif event.type == "transcript":
                    if not streamed:  # whisper's leading space is not part of the words
                        yield TextChunk(text=str(event.data.get("text", "")).strip())
                    break
        except OSError as exc:
            raise EngineFailed(f"the Wyoming server at {self.url} failed mid-call: {exc}") from None
        finally:
            conn.close()

    def listen(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[TextChunk]:
        """Live input to an ASR server: one ``audio-chunk`` per block as it arrives, partials from
        ``transcript-chunk``\\ s, the final transcript after the blocks end (module docstring).

        A server that sends its ``transcript`` before the blocks end (its own end-of-speech
        detection) ends the call there: that is its final.
        """
        from wyoming.asr import Transcribe
        from wyoming.audio import AudioChunk, AudioStart, AudioStop

        models = self._program().get("models") or [{}]  # EngineFailed before load()
        if self.output_kind != "text":
            raise EngineFailed(f"listen() needs a Wyoming ASR server; {self.url} speaks (TTS)")
        rate = int(sample_rate)
        if rate <= 0:
            raise EngineFailed(f"listen() needs a positive sample rate, not {sample_rate!r}")
        try:
            conn = _Connection(self.host, self.port, self.timeout_s)
            conn.sock.settimeout(None)  # the reader waits through the speech; see _Replies
        except OSError as exc:
            raise EngineFailed(f"cannot reach the Wyoming server at {self.url}: {exc}") from None
        replies = _Replies(conn)
        fmt = {"rate": rate, "width": 2, "channels": 1}
        heard = _Heard()
        try:
            conn.send(
                Transcribe(name=models[0].get("name"), language=self.language),
                AudioStart(timestamp=0, **fmt),
            )
            samples = 0
            for block in blocks:
                pcm = _to_pcm(_mono(block))
                if pcm:
                    conn.send(AudioChunk(audio=pcm, timestamp=samples * 1000 // rate, **fmt))
                    samples += len(pcm) // 2
                for event in replies.ready():
                    yield from heard.take(event)
                if heard.final is not None:
                    return
            conn.send(AudioStop(timestamp=samples * 1000 // rate))
            deadline = time.monotonic() + self.timeout_s
            while heard.final is None:
                event = replies.next(deadline - time.monotonic())
                if event is None:
                    raise EngineFailed(
                        f"the Wyoming server at {self.url} sent no transcript within "
                        f"{self.timeout_s:g} s of audio-stop"
                    )
                yield from heard.take(event)
        except OSError as exc:
            raise EngineFailed(f"the Wyoming server at {self.url} failed mid-call: {exc}") from None
        finally:
            conn.close()
            replies.join()

    def _audio(self, path: Path) -> tuple[bytes, float]:
        """The file as 16 kHz int16 mono little-endian PCM and its duration, decoded once."""
        key = str(path)
        if key not in self._pcm:
            import numpy as np
            import soundfile as sf

            try:
                data, rate = sf.read(path, dtype="float32", always_2d=True)
            except (RuntimeError, OSError) as exc:
                raise EngineFailed(f"cannot read the audio file {path}: {exc}") from None
            mono = data.mean(axis=1, dtype=np.float32)
            if rate != STT_RATE:
                from math import gcd

                from scipy.signal import resample_poly

                g = gcd(int(rate), STT_RATE)
                mono = resample_poly(mono, STT_RATE // g, int(rate) // g).astype(np.float32)
            self._pcm[key] = (_to_pcm(mono), len(mono) / STT_RATE)
        return self._pcm[key]

    def info(self) -> dict[str, Any]:
        """The server's program, version, model or voice, and whether it streams."""
        result: dict[str, Any] = {"url": self.url, "voice": self.voice, "language": self.language}
        if self._info is None:
            return result
        program = self._program()
        result.update(
            program=program.get("name"),
            program_version=program.get("version"),
            description=program.get("description"),
            kind="tts" if self._info.get("tts") else "asr",
        )
        if self._info.get("tts"):
            voices = program.get("voices") or []
            result["voices_offered"] = len(voices)
            result["streaming"] = self._streams_synthesis()
        else:
            result["models"] = [m.get("name") for m in program.get("models") or []]
            result["streaming"] = bool(program.get("supports_transcript_streaming"))
            result["stt_chunk_ms"] = STT_CHUNK_SAMPLES * 1000 // STT_RATE
        result["footprint"] = footprint(["wyoming"], [])
        return result


def _text_of(piece: TextChunk) -> str:
    return piece.text


def _mono(block: Any) -> np.ndarray:
    import numpy as np

    audio = np.asarray(block, dtype=np.float32)
    if audio.ndim != 1:
        raise EngineFailed(
            f"wyoming listen() got a block of shape {audio.shape}; expected mono (one dimension)"
        )
    return audio


class _Heard:
    """``listen``'s running text: ``transcript-chunk`` pieces joined, then the ``transcript``."""

    def __init__(self) -> None:
        self.running = ""
        self.shown = ""
        self.final: str | None = None

    def take(self, event: Any) -> Iterator[TextChunk]:
        """The chunk(s) one server event gives: a partial when the text so far changed, or the
        final; other events (``transcript-start``, ``transcript-stop``) give none."""
        if event.type == "transcript-chunk":
            self.running += str(event.data.get("text", ""))
            text = self.running.strip()
            if text and text != self.shown:
                self.shown = text
                yield TextChunk(text=text, partial=True)
        elif event.type == "transcript":
            # whisper's leading space is not part of the words
            self.final = str(event.data.get("text", "")).strip()
            yield TextChunk(text=self.final)
