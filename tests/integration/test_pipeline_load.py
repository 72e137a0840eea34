"""A pipeline under open-loop load, against parts of KNOWN timing (the chat server of known speed
and the known-timing recogniser and TTS of tests/support): at a rate the parts serve without
queueing, every user must wait what one conversation takes, the achieved rate must be the offered
one, and the SLO verdict and capacity must follow from those figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chat_server import ChatServer
from support.timing import assert_took
from voxbench.load.schedule import Level
from voxbench.pipeline.load import LoadPlan
from voxbench.pipeline.run import PipelineRequest, failures, run_pipeline

FIRST_MS, RATE, TOKENS = 200.0, 50.0, 11  # LLM: 200 + 10 × 20 = 400 ms
STT_MS, TTS_MS, SILENCE_MS = 100.0, 50.0, 100.0  # TTS: 50 + 5 ms × 11 words = 105 ms

pytestmark = pytest.mark.usefixtures("no_default_keys")


@pytest.fixture(scope="module")
def chat() -> Iterator[str]:
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as url:
        yield url


def test_open_loop_level_of_known_parts(chat: str, tmp_path: Path) -> None:
    plan = LoadPlan(
        levels=(Level("rate", 2.0),),
        duration_s=6.0,
        arrivals="constant",
        slo="first_audio_ms:p95<=1000,stt_ms<=120",
    )
    req = PipelineRequest(
        stt="support.known_timing:KnownSTT",
        llm=chat,
        tts="support.known_timing:KnownTTS",
        stt_params={"delay_ms": STT_MS},
        workload="assistant",
        modes=("sequential",),
        warmup=1,
        limit=2,
        output=tmp_path,
        load=plan,
    )
    doc = run_pipeline(req).doc
    assert doc.pipeline is not None and not doc.cases
    (level,) = doc.pipeline.levels
    assert level.conversations == 12 and level.failed == 0  # 6 s at 2/s, constant arrivals
    one = STT_MS + FIRST_MS + (TOKENS - 1) * 1000 / RATE + TTS_MS + 5.0 * TOKENS
    assert level.first_byte_ms is not None and level.first_audio_all_ms is not None
    assert_took(level.first_byte_ms.median, one)
    assert_took(level.first_audio_all_ms.median, one + SILENCE_MS)
    assert level.achieved_rate == pytest.approx(2.0, rel=0.1)
    assert level.lag_ms is not None and level.lag_ms.p99 < 20
    assert level.validity is not None and level.validity.valid, level.validity
    assert level.slo == {"first_audio_ms:p95<=1000": True, "stt_ms<=120": True}
    assert level.meets_slo and doc.pipeline.capacity["sequential"] == 2.0
    assert failures(doc) == []
    assert len(level.samples["first_audio_all_ms"]) == 12
