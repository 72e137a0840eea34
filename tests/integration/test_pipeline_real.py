"""The whole chain on real components on loopback: Whisper tiny.en (faster-whisper), SmolLM2-135M
through llama.cpp's OpenAI server (started by the smollm2 engine), and piper; and pocketsphinx
listening live. Asserts what must hold whatever the machine's speed: every conversation answers,
the transcript is right, and for a multi-sentence answer streaming reaches the first audible
sample sooner than sequential (it speaks the first sentence while the LLM writes the rest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxbench.engines.registry import EngineSpec
from voxbench.pipeline.run import PipelineRequest, run_pipeline

pytestmark = pytest.mark.slow


def _available(*names: str) -> None:
    for name in names:
        reason = EngineSpec(name).unavailable_reason()
        if reason:
            pytest.skip(f"{name}: {reason}")


def test_whisper_smollm2_piper_streaming_beats_sequential(tmp_path: Path) -> None:
    _available("whisper", "smollm2", "piper")
    req = PipelineRequest(
        stt="whisper",
        llm="smollm2",
        tts="piper",
        llm_params={"max_tokens": 64},
        workload="assistant",
        prompts=("story",),
        iterations=2,
        warmup=1,
        output=tmp_path,
    )
    doc = run_pipeline(req).doc
    by_mode = {c.params["mode"]: c for c in doc.cases}
    assert set(by_mode) == {"sequential", "streaming"}
    for case in by_mode.values():
        assert case.error_count == 0, case.errors
        p = case.pipeline
        assert p is not None and p.answer and case.accuracy is not None
        assert case.accuracy.wer <= 0.2  # "... lighthouse keeper and three sentences."
        assert case.ttft_ms is not None and case.tokens_per_second
        assert p.stt_ms and p.tts_first_audio_ms and p.first_byte_ms and case.ttfa_ms
        # the chain's own accounting: first byte = the stages + what is lost between them
        assert p.handoff_ms is not None and p.stage_sum_ms is not None
        assert p.first_byte_ms.median == pytest.approx(p.stage_sum_ms + p.handoff_ms.median, abs=2)
        assert case.audio_file and (Path(doc_dir(tmp_path)) / case.audio_file).is_file()
    seq, stream = by_mode["sequential"], by_mode["streaming"]
    assert stream.pipeline is not None and stream.pipeline.sentences
    assert stream.pipeline.sentences >= 2, stream.pipeline.answer  # a multi-sentence answer
    assert stream.ttfa_ms is not None and seq.ttfa_ms is not None
    assert stream.ttfa_ms.median < seq.ttfa_ms.median
    starts = {c.role: c for c in doc.pipeline.components} if doc.pipeline else {}
    assert set(starts) == {"stt", "llm", "tts"}
    assert all(c.load_ms and c.load_ms > 0 for c in starts.values())


def doc_dir(root: Path) -> Path:
    """The one run folder under ``root``."""
    (path,) = root.glob("*/*/results.json")
    return path.parent


def test_pocketsphinx_listens_live_in_streaming_mode(tmp_path: Path) -> None:
    _available("pocketsphinx", "espeak")
    req = PipelineRequest(
        stt="pocketsphinx",
        llm="echo",
        tts="espeak",
        workload="assistant",
        prompts=("time",),
        modes=("streaming",),
        iterations=2,
        warmup=0,
        output=tmp_path,
        save_audio=False,
    )
    doc = run_pipeline(req).doc
    (case,) = doc.cases
    assert case.error_count == 0, case.errors
    p = case.pipeline
    assert p is not None and p.stt_listened and p.llm_is_echo
    # fed at the pace of speech: the first partial comes while the user still speaks
    assert p.stt_first_partial_ms is not None and case.input_audio_seconds
    assert p.stt_first_partial_ms.median < case.input_audio_seconds * 1000
    # and the final transcript after they stop, not before
    assert p.stt_ms is not None and p.stt_ms.min >= 0
    # echo: the answer is the transcript, and no LLM target is judged
    assert p.answer == p.transcript
    assert doc.pipeline is not None
    tps = [r for r in doc.pipeline.targets if r.name == "tokens_per_second"]
    assert tps and all(r.passed is None for r in tps)
