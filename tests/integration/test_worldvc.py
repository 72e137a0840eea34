"""The WORLD voice-conversion engine, run for real on the generated singing voice: each preset
shifts the sung F0 by the asked interval and keeps the length; the CLI sweeps the presets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.cli import voxbench
from voxbench.engine import collect_stages
from voxbench.engines import worldvc
from voxbench.engines.worldvc import PRESETS, WorldVCEngine, warp_envelope
from voxbench.errors import ConfigError
from voxbench.workloads import WorkloadItem, resolve_workload

STAGES = {"read", "f0", "envelope", "aperiodicity", "convert", "synthesis"}
pytestmark = pytest.mark.skipif(WorldVCEngine.check() is not None, reason="pyworld not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def singing5(cache: Path) -> WorkloadItem:
    return resolve_workload("singing5").items[0]


def read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float64")
    return audio, rate


def f0_praat(audio: np.ndarray, rate: int) -> np.ndarray:
    """F0 every 10 ms by Praat's autocorrelation method (0 where unvoiced)."""
    parselmouth = pytest.importorskip("parselmouth")
    sound = parselmouth.Sound(np.asarray(audio, dtype=np.float64), rate)
    pitch = sound.to_pitch_ac(time_step=0.01, pitch_floor=75.0, pitch_ceiling=1200.0)
    return pitch.selected_array["frequency"]


def median_ratio(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Median F0 ratio over frames voiced in both, and the share of input frames that stayed voiced."""
    n = min(len(before), len(after))
    a, b = before[:n], after[:n]
    both = (a > 0) & (b > 0)
    return float(np.median(b[both] / a[both])), float(both.sum() / max(1, (a > 0).sum()))


def convert(engine: WorldVCEngine, path: Path) -> tuple[np.ndarray, int, dict[str, float], float]:
    with collect_stages() as stages:
        start = time.perf_counter()
        out = engine.synthesize(path)
        wall = time.perf_counter() - start
    assert out.audio is not None and out.sample_rate
    return out.audio, out.sample_rate, dict(stages), wall


# --- construction and availability ---------------------------------------------------------------


def test_available_here_and_listed() -> None:
    assert WorldVCEngine.check() is None
    proc = voxbench("engines", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["worldvc"]["available"] and rows["worldvc"]["input"] == "audio"


def test_missing_pyworld_names_the_fix(monkeypatch) -> None:
    real = worldvc.importlib.util.find_spec
    monkeypatch.setattr(
        worldvc.importlib.util, "find_spec", lambda name: None if name == "pyworld" else real(name)
    )
    reason = WorldVCEngine.check()
    assert reason and "pip install 'voxbench[worldvc]'" in reason and "\n" not in reason


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"preset": "ultra"}, "preset"), ({"warp": 0}, "warp"), ({"f0_floor": 900.0}, "f0_floor")],
)
def test_bad_parameters_are_one_line_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        WorldVCEngine(**kwargs)


def test_info_reports_the_conversion() -> None:
    info = WorldVCEngine(preset="quality", shift=-3, warp=0.9).info()
    assert info["pitch_shift_semitones"] == -3.0 and info["warp"] == 0.9
    assert info["preset"] == "quality" and info["f0_estimator"] == "harvest"
    assert info["frame_period_ms"] == PRESETS["quality"].frame_period_ms
    assert WorldVCEngine(preset="fast").info()["f0_estimator"] == "dio"


def test_warp_moves_the_envelope_along_frequency() -> None:
    bins = np.arange(513)
    envelope = np.exp(-(((bins - 100) / 8.0) ** 2))[None, :].repeat(3, axis=0) + 1e-6
    up = warp_envelope(envelope, 1.1)
    assert up.flags.c_contiguous and up.shape == envelope.shape
    assert np.argmax(up[0]) == 110
    down = warp_envelope(envelope, 0.8)
    assert np.argmax(down[0]) == 80
    assert np.allclose(down[0, -5:], envelope[0, -1])  # past the old top: the last value held
    assert np.array_equal(warp_envelope(envelope, 1.0), envelope)


# --- conversion ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset", ["fast", "balanced", pytest.param("quality", marks=pytest.mark.slow)]
)
def test_preset_shifts_f0_and_keeps_length(singing5: WorkloadItem, preset: str) -> None:
    assert singing5.path is not None
    x, rate = read(singing5.path)
    engine = WorldVCEngine(preset=preset, shift=2.0, warp=1.1)
    engine.load()
    try:
        y, out_rate, stages, wall = convert(engine, singing5.path)
    finally:
        engine.close()
    assert out_rate == rate
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.1
    assert len(y) == len(x)
    assert set(stages) == STAGES and all(ms >= 0 for ms in stages.values())
    ratio, kept = median_ratio(f0_praat(x, rate), f0_praat(y, rate))
    expected = 2 ** (2.0 / 12)
    rtf = wall / (len(x) / rate)
    print(f"\nworldvc {preset}: rtf {rtf:.3f}, F0 ratio {ratio:.4f} (asked {expected:.4f}), "
          f"voiced kept {kept:.2f}, stages ms " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))  # fmt: skip
    assert abs(ratio / expected - 1) < 0.03
    assert kept > 0.9


@pytest.mark.parametrize("shift", [0.0, -5.0])
def test_other_shifts(singing5: WorkloadItem, shift: float) -> None:
    assert singing5.path is not None
    x, rate = read(singing5.path)
    engine = WorldVCEngine(preset="fast", shift=shift, warp=1.0)
    engine.load()
    y, _, _, _ = convert(engine, singing5.path)
    ratio, _ = median_ratio(f0_praat(x, rate), f0_praat(y, rate))
    assert abs(ratio / 2 ** (shift / 12) - 1) < 0.03


def test_equal_inputs_give_equal_outputs(singing5: WorkloadItem) -> None:
    assert singing5.path is not None
    engine = WorldVCEngine(preset="fast")
    engine.load()
    first, *_ = convert(engine, singing5.path)
    second, *_ = convert(engine, singing5.path)
    assert np.array_equal(first, second)


def test_stereo_input_is_mixed_to_mono(singing5: WorkloadItem, tmp_path: Path) -> None:
    import soundfile as sf

    assert singing5.path is not None
    x, rate = read(singing5.path)
    stereo = tmp_path / "stereo.flac"
    sf.write(str(stereo), np.stack([x, x], axis=1), rate)
    engine = WorldVCEngine(preset="fast")
    engine.load()
    y, out_rate, _, _ = convert(engine, stereo)
    assert y.ndim == 1 and len(y) == len(x) and out_rate == rate


def test_unreadable_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    engine = WorldVCEngine(preset="fast")
    engine.load()
    with pytest.raises(ConfigError, match="cannot read audio"):
        engine.synthesize(bad)


# --- through the CLI -----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_sweeps_the_presets(cache: Path, tmp_path: Path) -> None:
    proc = voxbench(
        "run", "--engine", "worldvc", "--workload", "singing5",
        "--param", "preset=fast,balanced,quality", "-n", "2", "--warmup", "1",
        "-o", str(tmp_path / "out"), "--json", "-",
        env={"VOXBENCH_CACHE": str(cache)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout[proc.stdout.index("{") :])
    cases = doc["cases"]
    assert sorted(c["params"]["preset"] for c in cases) == ["balanced", "fast", "quality"]
    for case in cases:
        assert case["engine"] == "worldvc" and case["input_kind"] == "audio"
        assert not case["errors"] and case["rtf"] and case["rtf"] > 0
        assert case["engine_info"]["pitch_shift_semitones"] == 2.0
        assert case["engine_info"]["preset"] == case["params"]["preset"]
        assert set(case["stages"]) >= STAGES
        assert case["input_meta"]["melody"] and case["input_meta"]["sample_rate"] == 22050
        assert abs(case["audio_seconds"] - 5.0) < 0.01
        print(f"\ncli worldvc {case['params']['preset']}: rtf {case['rtf']:.3f}")
