"""Flite for real: the flite program (apt-get install flite), one process per call."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.cli import voxbench
from voxbench.engines.flite import FliteEngine
from voxbench.errors import ConfigError, EngineFailed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("flite") is None, reason="flite not installed (apt-get install flite)"
    ),
]

SENTENCE = "Good morning, everyone."


@pytest.fixture(scope="module")
def slt() -> Iterator[FliteEngine]:
    engine = FliteEngine()
    engine.load()
    yield engine
    engine.close()


def test_slt_speaks_at_16_khz(slt: FliteEngine) -> None:
    out = slt.synthesize(SENTENCE)
    assert out.sample_rate == 16000
    assert out.audio is not None and out.audio.dtype == np.float32 and out.audio.ndim == 1
    # flite 2.2's slt says this sentence in 1.795 s; durations are deterministic.
    assert len(out.audio) / 16000 == pytest.approx(1.795, abs=0.05)
    assert 0.1 < np.abs(out.audio).max() <= 1.0
    longer = slt.synthesize(SENTENCE + " Turn left at the bridge.")
    assert longer.audio is not None and len(longer.audio) > 1.5 * len(out.audio)


def test_kal_is_8_khz_and_deterministic() -> None:
    engine = FliteEngine(voice="kal")
    engine.load()
    try:
        first, second = engine.synthesize(SENTENCE), engine.synthesize(SENTENCE)
    finally:
        engine.close()
    assert first.sample_rate == 8000
    assert first.audio is not None and second.audio is not None
    assert np.array_equal(first.audio, second.audio)


def test_unknown_voice_and_use_before_load() -> None:
    with pytest.raises(ConfigError, match="no built-in voice 'nobody'"):
        FliteEngine(voice="nobody")
    with pytest.raises(EngineFailed, match="before load"):
        FliteEngine().synthesize(SENTENCE)
    assert FliteEngine.check() is None


def test_info_records_voice_version_and_footprint(slt: FliteEngine) -> None:
    info = slt.info()
    assert info["voice"] == "slt" and info["flite_version"].startswith("flite-2")
    files = info["footprint"]["model_files"]
    assert any("libflite_cmu_us_slt" in name for name in files)
    assert not any("libflite_cmu_us_kal" in name for name in files)
    voice_lib = next(Path(n) for n in files if "libflite_cmu_us_slt" in n)
    assert files[str(voice_lib)] == round(voice_lib.stat().st_size / 2**20, 3)


def test_voxbench_run_flite(tmp_path: Path) -> None:
    proc = voxbench(
        "run", "-e", "flite", "-w", "short", "-n", "2", "--warmup", "0",
        "-o", str(tmp_path / "r"), "--json", str(tmp_path / "doc.json"), "--no-store",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "doc.json").read_text())
    assert [c["input_id"] for c in doc["cases"]] == ["short-1", "short-2"]
    first = doc["cases"][0]
    assert first["error_count"] == 0, first["errors"]
    assert first["audio_seconds"] == pytest.approx(1.795, abs=0.05)
    # One process per call: its memory is the child's (RUSAGE_CHILDREN), a few MB.
    assert first["peak_child_rss_mb"] and first["peak_child_rss_mb"] > 1
    assert first["engine_info"]["footprint"]["model_mib"] > 1
