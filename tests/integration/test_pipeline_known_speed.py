"""A pipeline against parts of KNOWN timing: the chat server of known speed
(tests/support/chat_server.py) as the LLM, and the known-timing recogniser and TTS
(tests/support/known_timing.py). What voxbench reports — TTFT, tokens/s, each stage's share of
end to end, end to end against the stage sum — must be what the parts were set to do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chat_server import ChatServer
from support.timing import assert_took
from voxbench.pipeline.run import PipelineRequest, run_pipeline
from voxbench.results import Case

FIRST_MS = 200.0
RATE = 50.0
TOKENS = 21  # LLM whole answer: 200 + 20 × 20 = 600 ms
STT_MS = 100.0
TTS_MS = 50.0  # + 5 ms per word: 21 words → 155 ms

pytestmark = pytest.mark.usefixtures("no_default_keys")


@pytest.fixture(scope="module")
def chat() -> Iterator[str]:
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as url:
        yield url


def _run(chat: str, tmp: Path, mode: str, tts: str = "KnownTTS") -> list[Case]:
    req = PipelineRequest(
        stt="support.known_timing:KnownSTT",
        llm=chat,
        tts=f"support.known_timing:{tts}",
        stt_params={"delay_ms": STT_MS},
        workload="assistant",
        modes=(mode,),  # type: ignore[arg-type]
        iterations=3,
        warmup=1,
        output=tmp,
        limit=1,
        save_audio=False,
    )
    folder = run_pipeline(req)
    assert folder.doc.scenario == "pipeline" and folder.doc.finished_at
    return folder.doc.cases


def test_sequential_stages_add_up_to_the_end_to_end(chat: str, tmp_path: Path) -> None:
    (case,) = _run(chat, tmp_path, "sequential")
    assert case.error_count == 0, case.errors
    p = case.pipeline
    assert p is not None and p.stt_ms and p.llm_ms and p.tts_first_audio_ms and p.first_byte_ms
    assert case.ttft_ms is not None
    assert_took(case.ttft_ms.median, FIRST_MS)
    assert case.tokens_per_second == pytest.approx(RATE, rel=0.05)
    assert_took(p.stt_ms.median, STT_MS)
    llm_ms = FIRST_MS + (TOKENS - 1) * 1000 / RATE
    assert_took(p.llm_ms.median, llm_ms)
    tts_ms = TTS_MS + 5.0 * TOKENS
    assert_took(p.tts_first_audio_ms.median, tts_ms)
    expected = STT_MS + llm_ms + tts_ms
    assert p.shares["llm"] == pytest.approx(llm_ms / expected, rel=0.05)
    assert p.bottleneck == "llm"
    # end to end = the stage sum + what the chain lost between stages, and that loss is small
    assert p.handoff_ms is not None and 0 <= p.handoff_ms.median < 5
    assert p.stage_sum_ms is not None
    assert p.first_byte_ms.median == pytest.approx(p.stage_sum_ms + p.handoff_ms.median, abs=1)
    # the listener hears the tone after the TTS's 100 ms of leading silence
    assert case.ttfa_ms is not None
    assert case.ttfa_ms.median - p.first_byte_ms.median == pytest.approx(100, abs=1)
    assert p.answer and p.answer.startswith("t0 t1")
    assert case.validity is not None and not case.validity.valid  # 3 conversations: too few


def test_streaming_first_audio_comes_at_the_first_sentence(chat: str, tmp_path: Path) -> None:
    (case,) = _run(chat, tmp_path, "streaming", tts="KnownStreamingTTS")
    assert case.error_count == 0, case.errors
    p = case.pipeline
    assert p is not None and p.llm_first_sentence_ms and p.first_byte_ms
    # the known server's answer has no sentence end: the first sentence is the whole answer,
    # so streaming can only save the TTS's per-word time, and first audio is stt + llm + 50 ms
    llm_ms = FIRST_MS + (TOKENS - 1) * 1000 / RATE
    assert_took(p.llm_first_sentence_ms.median, llm_ms)
    assert_took(p.first_byte_ms.median, STT_MS + llm_ms + TTS_MS)
    assert p.tts_streamed and not p.stt_listened
    assert p.stall_ms == 0  # a 0.3 s word every 5 ms never runs dry
