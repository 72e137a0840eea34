"""CMU pocketsphinx, a small offline recogniser (HMM + n-gram) with its bundled en-us model.

``stream(path)`` feeds the utterance in 100 ms blocks (``process_raw``) and yields the running
hypothesis as a partial :class:`~voxbench.engine.TextChunk` each time it changes, then the final
transcript, so time to first partial and the gaps between partials are measured. Blocks go in as
fast as the decoder takes them (compute latency); ``realtime=true`` paces them at the audio's own
rate, as a live microphone would, and then time to first partial includes the waiting.
``synthesize(path)`` decodes the whole utterance in one ``process_raw(full_utt=True)``.
``listen(blocks, 16000)`` is the live form (a voice pipeline's microphone): each float32 block is
fed to the decoder as it arrives, the hypothesis yielded as a partial when it changes, and the
final transcript once the blocks end; ``input_sample_rate`` is 16 kHz, the decoder's own, so
voxbench resamples the utterance before pacing and the blocks go in untouched.

Audio is read with soundfile and resampled to 16 kHz mono (scipy's ``resample_poly``), then
clipped to 16-bit integers, inside the timed call.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from voxbench.engine import BaseEngine, InputKind, Output, OutputKind, TextChunk, stage
from voxbench.engines.whisper import SAMPLE_RATE, read_16k
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

if TYPE_CHECKING:
    import numpy as np

_INSTALL_HINT = "pip install 'voxbench[stt]'"


def _pcm16(path: Path) -> bytes:
    return _to_pcm16(read_16k(path))


def _to_pcm16(audio: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM (rounded, clipped)."""
    import numpy as np

    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _text(decoder: Any) -> str:
    """The decoder's current hypothesis, '' when it has none."""
    hyp = decoder.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


class PocketSphinxEngine(BaseEngine):
    """pocketsphinx en-us: streamed partial hypotheses, then the final transcript."""

    name: ClassVar[str] = "pocketsphinx"
    input_kind: ClassVar[InputKind] = "audio"
    output_kind: ClassVar[OutputKind] = "text"
    description: ClassVar[str] = "pocketsphinx offline recogniser (en-us), streams partials"
    default_workloads: ClassVar[tuple[str, ...]] = ("spoken-short",)
    input_sample_rate: ClassVar[int] = SAMPLE_RATE  # listen()'s blocks, at the decoder's rate

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
                    text = _text(decoder)
                    if text and text != last:
                        last = text
                        yield TextChunk(text=text, partial=True)
            finally:
                decoder.end_utt()
            final = _text(decoder)
        yield TextChunk(text=final)

    def listen(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[TextChunk]:
        """Live input: each block decoded as it arrives, partials as the hypothesis changes, then
        the final transcript once ``blocks`` is exhausted (the end of speech).

        ``sample_rate`` must be 16000 (``input_sample_rate``): the decoder runs at that rate, and
        resampling block by block would smear the block edges.
        """
        import numpy as np

        decoder = self._loaded()
        if int(sample_rate) != SAMPLE_RATE:
            raise EngineFailed(
                f"pocketsphinx listens at {SAMPLE_RATE} Hz, not {sample_rate} "
                "(resample the utterance to input_sample_rate first)"
            )
        with self._lock:
            decoder.start_utt()
            try:
                last = ""
                for block in blocks:
                    audio = np.asarray(block, dtype=np.float32)
                    if audio.ndim != 1:
                        raise EngineFailed(
                            f"pocketsphinx listen() got a block of shape {audio.shape}; "
                            "expected mono (one dimension)"
                        )
                    if not len(audio):
                        continue
                    decoder.process_raw(_to_pcm16(audio), False, False)
                    text = _text(decoder)
                    if text and text != last:
                        last = text
                        yield TextChunk(text=text, partial=True)
            finally:
                decoder.end_utt()
            final = _text(decoder)
        yield TextChunk(text=final)

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
            final = _text(decoder)
        return Output(text=final)

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
