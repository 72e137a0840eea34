"""The built-in engines, run for real on this machine: espeak-ng, piper and FluidSynth."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voxbench.engine import Chunk, Output, collect_stages
from voxbench.engines.espeak import EspeakEngine
from voxbench.engines.fluidsynth import FluidSynthEngine
from voxbench.engines.piper import PiperEngine
from voxbench.errors import EngineUnavailable
from voxbench.workloads.midi import write_piece

TWO_SENTENCES = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April."


def seconds(out: Output) -> float:
    assert out.audio is not None and out.sample_rate
    return len(out.audio) / out.sample_rate


def assert_mono_float(audio: np.ndarray) -> None:
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


def joined(chunks: list[Chunk]) -> np.ndarray:
    return np.concatenate([c.audio for c in chunks])


@pytest.fixture(scope="module")
def espeak() -> Iterator[EspeakEngine]:
    engine = EspeakEngine()
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperEngine]:
    # No noise: VITS otherwise draws phoneme durations at random, and lengths differ by ~0.2 s.
    engine = PiperEngine(noise_scale=0.0, noise_w=0.0)
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def fluid() -> Iterator[FluidSynthEngine]:
    engine = FluidSynthEngine()
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def piece(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_piece(tmp_path_factory.mktemp("midi") / "p.mid", 10, "simple", seed=1)


# --- availability --------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", [EspeakEngine, PiperEngine, FluidSynthEngine])
def test_available_here(engine: type) -> None:
    assert engine.check() is None


def test_espeak_missing_library_names_the_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VOXBENCH_ESPEAK_LIBRARY", str(tmp_path / "libespeak-ng.so.1"))
    reason = EspeakEngine.check()
    assert reason and "apt-get install espeak-ng" in reason and "\n" not in reason


def test_fluidsynth_missing_soundfont_names_the_fix(monkeypatch, tmp_path) -> None:
    missing = tmp_path / "none.sf2"
    monkeypatch.setenv("VOXBENCH_SOUNDFONT", str(missing))
    reason = FluidSynthEngine.check()
    assert reason and str(missing) in reason and "apt-get install fluid-soundfont-gm" in reason
    with pytest.raises(EngineUnavailable, match="not found"):
        FluidSynthEngine(soundfont=str(missing)).load()


# --- espeak ---------------------------------------------------------------------------------------


def test_espeak_synthesize(espeak: EspeakEngine) -> None:
    out = espeak.synthesize("Hello world.")
    assert out.sample_rate == 22050
    assert_mono_float(out.audio)
    assert 0.5 <= seconds(out) <= 2.0
    assert np.abs(out.audio).max() > 0.1


def test_espeak_stream_matches_synthesize(espeak: EspeakEngine) -> None:
    chunks = list(espeak.stream(TWO_SENTENCES))
    whole = espeak.synthesize(TWO_SENTENCES)
    assert len(chunks) > 10  # ~50 ms buffers: real streaming, not one block at the end
    assert all(c.sample_rate == 22050 for c in chunks)
    # espeak-ng is not bit-exact from call to call (a few samples of drift), so lengths only.
    assert abs(len(joined(chunks)) - len(whole.audio)) <= 0.005 * 22050


def test_espeak_stream_closed_early_releases_the_library(espeak: EspeakEngine) -> None:
    stream = espeak.stream(TWO_SENTENCES * 5)
    next(stream)
    stream.close()
    assert 0.5 <= seconds(espeak.synthesize("Hello world.")) <= 2.0


def test_espeak_concurrent_calls_are_serialised(espeak: EspeakEngine) -> None:
    lengths: list[float] = []

    def call() -> None:
        lengths.append(seconds(espeak.synthesize(TWO_SENTENCES)))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(lengths) == 4 and max(lengths) - min(lengths) < 0.01


def test_espeak_rate_and_info() -> None:
    fast = EspeakEngine(rate=350)
    fast.load()
    try:
        quick = seconds(fast.synthesize(TWO_SENTENCES))
        info = fast.info()
    finally:
        fast.close()
    normal = EspeakEngine()
    normal.load()
    try:
        assert quick < 0.75 * seconds(normal.synthesize(TWO_SENTENCES))
    finally:
        normal.close()
    assert info["voice"] == "en-us" and info["rate"] == 350
    assert info["library"] and info["espeak_version"]


# --- piper ----------------------------------------------------------------------------------------


def test_piper_synthesize_and_stream(piper: PiperEngine) -> None:
    out = piper.synthesize("Hello world.")
    assert out.sample_rate == 22050
    assert_mono_float(out.audio)
    assert 0.4 <= seconds(out) <= 2.5
    chunks = list(piper.stream(TWO_SENTENCES))
    assert len(chunks) == 2  # one per sentence
    whole = piper.synthesize(TWO_SENTENCES)
    assert abs(len(joined(chunks)) - len(whole.audio)) <= 0.005 * 22050


def test_piper_info_reports_the_real_session(piper: PiperEngine) -> None:
    info = piper.info()
    assert info["model"].endswith(".onnx") and info["sample_rate"] == 22050
    assert "CPUExecutionProvider" in info["providers"]
    assert info["onnxruntime_version"] and "intra_op_num_threads" in info


# --- fluidsynth -----------------------------------------------------------------------------------


def test_fluidsynth_renders_the_piece(fluid: FluidSynthEngine, piece: Path) -> None:
    with collect_stages() as stages:
        out = fluid.synthesize(piece)
    assert out.sample_rate == 44100
    assert_mono_float(out.audio)
    assert 10.0 <= seconds(out) <= 12.0
    assert np.abs(out.audio).max() > 0.05
    assert set(stages) == {"parse", "render"}


def test_fluidsynth_stream_matches_synthesize(fluid: FluidSynthEngine, piece: Path) -> None:
    chunks = list(fluid.stream(piece))
    assert len(chunks) >= 20  # ~0.5 s each
    assert np.array_equal(joined(chunks), fluid.synthesize(piece).audio)


def test_fluidsynth_calls_are_independent(fluid: FluidSynthEngine, piece: Path, tmp_path) -> None:
    first = fluid.synthesize(piece).audio
    dense = write_piece(tmp_path / "dense.mid", 5, "dense", seed=2)
    fluid.synthesize(dense)  # leaves reverb, pedal and notes behind if reset were incomplete
    stream = fluid.stream(dense)
    next(stream)
    stream.close()  # an abandoned stream, cut mid-piece
    assert np.array_equal(fluid.synthesize(piece).audio, first)
