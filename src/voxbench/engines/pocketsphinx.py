"""CMU pocketsphinx, a small offline recogniser (HMM + n-gram) with its bundled en-us model.

``stream(path)`` feeds the utterance in 100 ms blocks (``process_raw``) and yields the running
hypothesis as a partial :class:`~voxbench.engine.TextChunk` each time it changes, then the final
transcript, so time to first partial and the gaps between partials are measured. Blocks go in as
fast as the decoder takes them (compute latency); ``realtime=true`` paces them at the audio's own
rate, as a live microphone would, and then time to first partial includes the waiting.
``synthesize(path)`` decodes the whole utterance in one ``process_raw(full_utt=True)``.

Audio is read with soundfile and resampled to 16 kHz mono (scipy's ``resample_poly``), then
clipped to 16-bit integers, inside the timed call.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from voxbench.engine import BaseEngine, InputKind, Output, OutputKind, TextChunk, stage
from voxbench.engines.whisper import SAMPLE_RATE, read_16k
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

_INSTALL_HINT = "pip install 'voxbench[stt]'"


def _pcm16(path: Path) -> bytes:
    import numpy as np

    audio = read_16k(path)
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class PocketSphinxEngine(BaseEngine):
    """pocketsphinx en-us: streamed partial hypotheses, then the final transcript."""

    name: ClassVar[str] = "pocketsphinx"
    input_kind: ClassVar[InputKind] = "audio"
    output_kind: ClassVar[OutputKind] = "text"
    description: ClassVar[str] = "pocketsphinx offline recogniser (en-us), streams partials"
    default_workloads: ClassVar[tuple[str, ...]] = ("spoken-short",)

    def __init__(self, block_ms: int = 100, realtime: bool = False) -> None:
        if int(block_ms) < 10:
            raise ConfigError("pocketsphinx block_ms must be at least 10")
        self.block_ms = int(block_ms)
        self.realtime = bool(realtime)
        self._decoder: Any = None
        self._lock = threading.Lock()  # one decoder, one utterance at a time

    @classmethod
    def check(cls) -> str | None:
        """None when pocketsphinx is installed, else the fix."""
        if importlib.util.find_spec("pocketsphinx") is None:
            return f"pocketsphinx not installed ({_INSTALL_HINT})"
        return None

    def load(self) -> None:
        """Load the acoustic model, language model and dictionary (the cold start)."""
        if self._decoder is not None:
            return
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise EngineUnavailable(f"pocketsphinx not installed ({_INSTALL_HINT})") from exc
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def _loaded(self) -> Any:
        if self._decoder is None:
            raise EngineFailed("pocketsphinx engine used before load() or after close()")
        return self._decoder

    def stream(self, inp: Path) -> Iterator[TextChunk]:
        """Partial hypotheses as they change, block by block, then the final transcript."""
        decoder = self._loaded()
        with stage("read"):
            pcm = _pcm16(Path(inp))
        step = SAMPLE_RATE * self.block_ms // 1000 * 2  # bytes of one block
        with self._lock:
            decoder.start_utt()
            try:
                last = ""
                start = time.perf_counter()
                for n, offset in enumerate(range(0, len(pcm), step)):
                    if self.realtime:
                        wait = start + n * self.block_ms / 1000 - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                    decoder.process_raw(pcm[offset : offset + step], False, False)
                    hyp = decoder.hyp()
                    text = hyp.hypstr.strip() if hyp is not None else ""
                    if text and text != last:
                        last = text
                        yield TextChunk(text=text, partial=True)
            finally:
                decoder.end_utt()
            hyp = decoder.hyp()
        yield TextChunk(text=hyp.hypstr.strip() if hyp is not None else "")

    def synthesize(self, inp: Path) -> Output:
        """The whole utterance in one block (stages ``read``, ``decode``)."""
        decoder = self._loaded()
        with stage("read"):
            pcm = _pcm16(Path(inp))
        with stage("decode"), self._lock:
            decoder.start_utt()
            try:
                decoder.process_raw(pcm, False, True)
            finally:
                decoder.end_utt()
            hyp = decoder.hyp()
        return Output(text=hyp.hypstr.strip() if hyp is not None else "")

    def close(self) -> None:
        """Drop the decoder."""
        self._decoder = None

    def info(self) -> dict[str, Any]:
        """Model files, block size and pacing."""
        result: dict[str, Any] = {
            "model": "en-us",
            "block_ms": self.block_ms,
            "realtime": self.realtime,
            "sample_rate": SAMPLE_RATE,
            "batch_size": 1,
        }
        with contextlib.suppress(metadata.PackageNotFoundError):
            result["pocketsphinx_version"] = metadata.version("pocketsphinx")
        if self._decoder is not None:
            config = self._decoder.config
            result.update(acoustic_model=config["hmm"], language_model=config["lm"])
        from voxbench.engines.footprint import footprint

        # the model ships inside the wheel, so the package's size includes it
        result["footprint"] = footprint(["pocketsphinx"], [])
        return result
