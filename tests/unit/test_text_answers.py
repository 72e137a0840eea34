"""Engines that answer text: the timing of streamed text pieces, token counts and their source,
speech-recognition figures on the input audio, corpus WER, and the two report views."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support.result_docs import make_case, make_doc
from voxbench.engine import Output, TextChunk
from voxbench.report import text_views
from voxbench.report.markdown import render_markdown
from voxbench.results.accuracy import corpus_rates, error_counts
from voxbench.run.measure import measure_call
from voxbench.run.scenario import _fill_metrics
from voxbench.workloads.base import WorkloadItem

FIRST_S, GAP_S = 0.03, 0.01


class Tokens:
    """Known timing: the first piece after FIRST_S, then one piece every GAP_S; usage optional."""

    input_kind, output_kind = "text", "text"

    def __init__(self, pieces: int = 6, usage: int | None = None, blank_first: bool = True):
        self.pieces, self.usage, self.blank_first = pieces, usage, blank_first

    def synthesize(self, prompt):
        time.sleep(FIRST_S)
        return Output(text="a b c", tokens=3, input_tokens=5, tokens_source="usage")

    def stream(self, prompt):
        if self.blank_first:
            yield TextChunk(text="")  # a role header: not output yet
        time.sleep(FIRST_S)
        for i in range(self.pieces):
            if i:
                time.sleep(GAP_S)
            yield f"t{i} "
        if self.usage is not None:
            yield TextChunk(text="", usage_tokens=self.usage, input_tokens=7)


def test_streamed_text_times_first_piece_and_gaps_and_counts_pieces():
    rec = measure_call(Tokens(), "hi", use_stream=True, keep_audio=False)
    assert rec.error is None
    assert FIRST_S <= rec.ttfa_ns / 1e9 < FIRST_S + 0.02
    assert len(rec.chunk_gaps_ns) == 5
    assert all(GAP_S <= g / 1e9 < GAP_S + 0.015 for g in rec.chunk_gaps_ns)
    assert rec.text == "t0 t1 t2 t3 t4 t5 "
    assert (rec.tokens, rec.tokens_source) == (6, "counted")
    assert rec.samples == 0


def test_usage_in_the_stream_overrides_the_count():
    rec = measure_call(Tokens(usage=9), "hi", use_stream=True, keep_audio=False)
    assert (rec.tokens, rec.tokens_source, rec.input_tokens) == (9, "usage", 7)
    assert rec.chunks == 6  # the usage record is no piece of text


def test_partials_are_replaced_by_the_final_text():
    class Recogniser:
        def stream(self, path):
            yield TextChunk("good", partial=True)
            yield TextChunk("good morning", partial=True)
            yield TextChunk("good morning everyone")

    rec = measure_call(Recogniser(), Path("x.wav"), use_stream=True, keep_audio=False)
    assert rec.text == "good morning everyone"
    assert rec.chunks == 3 and rec.ttfa_ns is not None


def test_case_figures_of_a_known_decode_rate():
    records = [measure_call(Tokens(), "hi", use_stream=True, keep_audio=False) for _ in range(5)]
    case = make_case([])
    item = WorkloadItem(id="p", kind="text", text="hi")
    _fill_metrics(case, records, item)
    assert case.output_kind == "text"
    assert case.ttft_ms and case.ttft_ms.median == pytest.approx(FIRST_S * 1000, rel=0.3)
    assert case.itl_ms and case.itl_ms.median == pytest.approx(GAP_S * 1000, rel=0.3)
    # (6 - 1) tokens over 5 gaps of GAP_S: 100 tokens/s
    assert case.tokens_per_second == pytest.approx(1 / GAP_S, rel=0.2)
    assert case.output_tokens == 6 and case.tokens_source == "counted"
    assert case.ttfa_ms is None and case.rtf is None and case.accuracy is None


def test_non_streamed_tokens_over_wall_time():
    records = [measure_call(Tokens(), "hi", use_stream=False, keep_audio=False) for _ in range(3)]
    case = make_case([])
    _fill_metrics(case, records, WorkloadItem(id="p", kind="text", text="hi"))
    assert case.tokens_source == "usage" and case.input_tokens == 5
    assert case.tokens_per_second == pytest.approx(3 / FIRST_S, rel=0.3)
    assert case.ttft_ms is None


def test_recognition_rtf_on_the_input_audio_and_wer(tmp_path):
    wav = tmp_path / "u.wav"
    sf.write(wav, np.zeros(32000, dtype=np.float32), 16000)  # 2.0 s

    class Slow:
        def synthesize(self, path):
            time.sleep(0.1)
            return Output(text="Good morning everyone and")

    item = WorkloadItem(id="u", kind="audio", path=wav, text="Good morning, everyone.")
    records = [measure_call(Slow(), wav, use_stream=False, keep_audio=False) for _ in range(3)]
    case = make_case([])
    _fill_metrics(case, records, item)
    assert case.input_audio_seconds == pytest.approx(2.0)
    assert case.rtfx == pytest.approx(20.0, rel=0.15) and case.rtf == pytest.approx(0.05, rel=0.15)
    assert case.accuracy is not None
    assert (case.accuracy.hits, case.accuracy.insertions) == (3, 1)
    assert case.accuracy.wer == pytest.approx(1 / 3) and not case.accuracy.exact


def test_corpus_wer_sums_errors_over_words_not_a_mean_of_rates():
    short = error_counts("hello world", "hello word")  # 1 error of 2 words: 50%
    long = error_counts(
        "one two three four five six seven eight", "one two three four five six seven eight"
    )
    assert short and long
    rates = corpus_rates([short, long])
    assert rates is not None
    assert rates["wer"] == pytest.approx(1 / 10)  # a mean of rates would say 25%
    assert rates["sentence_accuracy"] == 0.5


def test_reports_show_recognition_and_generation_tables(tmp_path):
    stt = make_case([100.0, 110.0], input_id="u1")
    stt.output_kind, stt.input_audio_seconds = "text", 2.0
    counts = error_counts("good morning everyone", "good morning")
    assert counts
    from voxbench.results.document import Accuracy

    stt.accuracy = Accuracy(**counts)
    llm = make_case([500.0, 520.0], input_id="p1")
    llm.id, llm.output_kind, llm.tokens_per_second, llm.tokens_source = (
        "llm/p1",
        "text",
        62.5,
        "usage",
    )
    doc = make_doc("r", stt, llm)
    rec = text_views.recognition(doc)
    assert rec and rec.rows[0][rec.headers.index("WER ↓")] == "33.3%"
    assert rec.rows[0][rec.headers.index("rtfx ↑")] == "19.0"  # 2.0 s / 0.105 s
    gen = text_views.generation(doc)
    assert gen and [r[0] for r in gen.rows] == ["llm/p1"]
    assert gen.rows[0][gen.headers.index("tokens/s ↑")] == "62.5"
    md = render_markdown(doc)
    assert "## Speech recognition" in md and "## Text generation" in md


def test_a_streaming_recogniser_has_a_first_partial_but_no_token_rate(tmp_path):
    wav = tmp_path / "u.wav"
    sf.write(wav, np.zeros(16000, dtype=np.float32), 16000)

    class Partials:
        def stream(self, path):
            time.sleep(0.01)
            yield TextChunk("good", partial=True)
            time.sleep(0.01)
            yield TextChunk("good morning")

    item = WorkloadItem(id="u", kind="audio", path=wav, text="good morning")
    records = [measure_call(Partials(), wav, use_stream=True, keep_audio=False) for _ in range(3)]
    case = make_case([])
    _fill_metrics(case, records, item)
    assert case.ttft_ms is not None and case.ttft_ms.median >= 10
    assert case.tokens_per_second is None and case.itl_ms is None and case.output_tokens is None
    assert case.samples.chunk_gap_ms  # the raw gaps are kept
    assert case.accuracy and case.accuracy.exact


def test_an_empty_final_clears_the_last_partial():
    class Silence:
        def stream(self, path):
            yield TextChunk("uh", partial=True)
            yield TextChunk("")

    rec = measure_call(Silence(), Path("x.wav"), use_stream=True, keep_audio=False)
    assert rec.text == ""
