"""Load against transcription endpoints: the multipart uploads (parsed back by Python's email
parser and by the server's own), the request on the wire, the answers, a level's figures, the
SLO clause, the request's checks and the report table."""

from __future__ import annotations

import email.parser
import email.policy
from pathlib import Path

import numpy as np
import pytest

from voxbench.errors import ConfigError
from voxbench.load import transcriptions
from voxbench.load.capacity import evaluate, parse_slo
from voxbench.load.metrics import summarize_level
from voxbench.load.pool import PreparedTarget
from voxbench.load.records import BadAnswer, Form, RequestRecord, Target, error_kind
from voxbench.load.run import LoadRequest, _workload, is_transcription_url
from voxbench.load.schedule import Level
from voxbench.load.transcriptions import (
    Corpus,
    encode_form,
    new_boundary,
    read_transcript,
    transcription_bodies,
)
from voxbench.report.load import levels_section
from voxbench.results.document import LoadResult
from voxbench.wav import encode_wav
from voxbench.workloads import resolve_workload

# a WAV whose bytes hold CRLF, dashes and "--" runs, as audio can
AUDIO = encode_wav(np.array([0.0, 0.5, -0.5, 0.25] * 400, dtype=np.float32), 16000) + (
    b"\r\n--\r\n\r\n--x--\r\n"
)


def _parse(form: Form) -> list[tuple[str | None, str | None, str, bytes]]:
    """(name, filename, content type, bytes) of each part, by the standard library's MIME parser."""
    head = f"MIME-Version: 1.0\r\nContent-Type: {form.content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + form.payload)
    assert message.is_multipart() and message.get_content_type() == "multipart/form-data"
    out = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        name = part.get_param("name", header="content-disposition")
        out.append((name, part.get_filename(), part.get_content_type(), payload))
    return out


def test_the_form_parses_back_with_its_fields_and_the_exact_file_bytes():
    boundary = new_boundary([AUDIO])
    form = encode_form(
        [("model", "whisper-1"), ("response_format", "json")],
        ("a b.wav", AUDIO, "audio/wav"),
        boundary,
    )
    assert form.content_type == f"multipart/form-data; boundary={boundary}"
    assert boundary.startswith("voxbench-") and len(boundary) == 9 + 32
    assert _parse(form) == [
        ("model", None, "text/plain", b"whisper-1"),
        ("response_format", None, "text/plain", b"json"),
        ("file", "a b.wav", "audio/wav", AUDIO),
    ]


def test_the_server_reads_the_same_form():
    pytest.importorskip("starlette")
    from voxbench.load.serve_stt import parse_form

    form = encode_form([("model", "m")], ("x.wav", AUDIO, "audio/wav"), new_boundary([AUDIO]))
    fields = parse_form(form.content_type, form.payload)
    assert fields == {"model": (None, b"m"), "file": ("x.wav", AUDIO)}


def test_a_quote_or_line_break_in_a_file_name_cannot_break_the_part_header():
    form = encode_form([], ('say "hi"\r\nX: 1.wav', b"RIFF", "audio/wav"), "b")
    assert b'filename="say %22hi%22%0D%0AX: 1.wav"' in form.payload
    ((name, filename, _, data),) = _parse(form)
    assert (name, filename, data) == ("file", "say %22hi%22%0D%0AX: 1.wav", b"RIFF")


def test_a_boundary_found_in_a_file_is_never_used(monkeypatch: pytest.MonkeyPatch):
    tokens = iter(["a" * 32, "b" * 32])
    monkeypatch.setattr(transcriptions.secrets, "token_hex", lambda n: next(tokens))
    assert new_boundary([b"xx voxbench-" + b"a" * 32 + b" xx"]) == "voxbench-" + "b" * 32


def test_the_request_on_the_wire_carries_the_form_type_and_length():
    form = encode_form([("model", "m")], ("x.wav", AUDIO, "audio/wav"), "BOUND")
    target = Target(url="http://127.0.0.1:9/v1/audio/transcriptions", bodies=(form, {"a": 1}))
    prep = PreparedTarget(target)
    upload, json_body = prep.requests
    head, _, payload = upload.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /v1/audio/transcriptions HTTP/1.1"
    assert "Content-Type: multipart/form-data; boundary=BOUND" in lines
    assert f"Content-Length: {len(form.payload)}" in lines
    assert payload == form.payload
    assert b'Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}' in json_body
    assert sum(1 for ln in lines if ln.lower().startswith("content-type")) == 1


def test_answers_json_plain_text_and_what_is_neither():
    assert read_transcript(b'{"text": "turn left"}', "application/json") == "turn left"
    assert read_transcript(b"turn left\n", "text/plain; charset=utf-8") == "turn left"
    with pytest.raises(BadAnswer, match="not JSON"):
        read_transcript(b"<html>", "text/html")
    with pytest.raises(BadAnswer, match='no "text" string'):
        read_transcript(b'{"error": "x"}', "application/json")
    assert error_kind(BadAnswer("x")) == "bad_answer"


def _records(texts: list[str], latency: float = 0.5) -> list[RequestRecord]:
    """Requests every 0.5 s alternating between items 0 and 1, each answered ``latency`` later."""
    out = []
    for i, text in enumerate(texts):
        due = 0.5 * i
        rec = RequestRecord(
            due=due, sent=due, first_byte=due + latency, done=due + latency, status=200
        )
        rec.item, rec.text = i % 2, text
        out.append(rec)
    return out


CORPUS = Corpus(
    references=("Good morning, everyone.", "Turn left at the bridge."), seconds=(1.5, 2.0)
)


def test_a_level_counts_input_audio_rtf_and_corpus_wer():
    # 20 requests, item 1 heard with one word wrong: (10 × 1) / (10 × 3 + 10 × 5) = 1/8
    texts = ["good morning everyone", "turn right at the bridge"] * 10
    lv = summarize_level(
        Level("rate", 2.0), _records(texts), warmup_s=0, wall_s=10, buffer_ms=0, max_lag_ms=5,
        min_duration_s=1, corpus=CORPUS,
    )  # fmt: skip
    assert lv.requests == lv.ok == 20 and lv.window_s == pytest.approx(10.0)
    # every success ends inside the window but the last (due 9.5 + 0.5 = 10.0): 10 × 1.5 + 9 × 2
    assert lv.audio_seconds_per_second == pytest.approx((10 * 1.5 + 9 * 2.0) / 10)
    assert lv.rtf is not None and lv.rtf.max == pytest.approx(0.5 / 1.5)
    assert lv.rtf.p50 == pytest.approx((0.5 / 1.5 + 0.5 / 2.0) / 2)
    assert lv.wer == pytest.approx(1 / 8) and lv.wer_requests == 20
    assert lv.cer is not None and lv.cer > 0
    assert lv.ttfa_ms is None and lv.stalls is None
    assert lv.latency_ms is not None and lv.latency_ms.p50 == pytest.approx(500)
    assert parse_slo("wer<=12.5%")[0].holds(lv) is True
    assert parse_slo("wer<10%")[0].holds(lv) is False
    assert parse_slo("cer<0.5")[0].holds(lv) is True


def test_failures_and_items_without_a_reference_are_not_scored():
    recs = _records(["good morning everyone", "turn left at the bridge"] * 5)
    recs[0].error, recs[0].text = "http_500", None
    corpus = Corpus(references=("Good morning, everyone.", None), seconds=(1.5, 2.0))
    lv = summarize_level(
        Level("rate", 2.0), recs, warmup_s=0, wall_s=5, buffer_ms=0, max_lag_ms=5,
        corpus=corpus,
    )  # fmt: skip
    assert lv.wer == 0.0 and lv.wer_requests == 4  # items 0 that succeeded
    none_scored = summarize_level(
        Level("rate", 2.0), recs, warmup_s=0, wall_s=5, buffer_ms=0, max_lag_ms=5,
        corpus=Corpus(references=(None, None), seconds=(1.5, 2.0)),
    )  # fmt: skip
    assert none_scored.wer is None and "wer" not in none_scored.model_dump()
    assert parse_slo("wer<=5%")[0].holds(none_scored) is None  # not measured


def test_a_speech_level_has_no_wer():
    lv = summarize_level(
        Level("rate", 2.0), _records(["x"] * 4), warmup_s=0, wall_s=2, buffer_ms=0, max_lag_ms=5
    )
    assert lv.wer is None and "wer" not in lv.model_dump()


def _audio_folder(tmp_path: Path) -> Path:
    import soundfile as sf

    folder = tmp_path / "corpus"
    folder.mkdir()
    sf.write(str(folder / "one.wav"), np.zeros(8000, dtype=np.float32), 16000, subtype="PCM_16")
    (folder / "one.txt").write_text("hello there\n", encoding="utf-8")
    sf.write(str(folder / "two.flac"), np.zeros(24000, dtype=np.float32), 8000)
    return folder


def test_a_folder_corpus_gives_one_upload_per_file_and_its_references(tmp_path: Path):
    folder = _audio_folder(tmp_path)
    forms, corpus = transcription_bodies(resolve_workload(str(folder)), "whisper-1")
    assert corpus.references == ("hello there", None)
    assert corpus.seconds == pytest.approx((0.5, 3.0))
    assert len({f.content_type for f in forms}) == 1  # one boundary for the target
    parts = [_parse(f) for f in forms]
    assert [p[2][:3] for p in parts] == [
        ("file", "one.wav", "audio/wav"),
        ("file", "two.flac", "audio/flac"),
    ]
    assert parts[0][2][3] == (folder / "one.wav").read_bytes()
    assert parts[1][:2] == [
        ("model", None, "text/plain", b"whisper-1"),
        ("response_format", None, "text/plain", b"json"),
    ]


def test_transcription_targets_take_audio_and_the_others_text(tmp_path: Path):
    url = "http://127.0.0.1:9/v1/audio/transcriptions"
    assert is_transcription_url(url) and is_transcription_url(url + "/")
    assert not is_transcription_url("http://127.0.0.1:9/v1/audio/speech")
    req = LoadRequest(target=url, levels=[Level("rate", 1)])
    assert req.transcription and not req.chat
    assert (req.workload, req.model) == ("spoken-short", "whisper-1")
    with pytest.raises(ConfigError, match=r"'short' is text; a transcription target needs audio"):
        _workload(LoadRequest(target=url, levels=[Level("rate", 1)], workload="short"))
    folder = str(_audio_folder(tmp_path))
    assert _workload(LoadRequest(target=url, levels=[Level("rate", 1)], workload=folder))
    speech = LoadRequest(
        target="http://127.0.0.1:9/v1/audio/speech", levels=[Level("rate", 1)], workload=folder
    )
    with pytest.raises(ConfigError, match="is audio; a speech target takes text") as refused:
        _workload(speech)
    assert "\n" not in str(refused.value)
    chat = LoadRequest(
        target="http://127.0.0.1:9/v1/chat/completions", levels=[Level("rate", 1)],
        workload=folder, model="m",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="is audio; a chat target takes text"):
        _workload(chat)


def test_the_report_table_of_a_transcription_run():
    lv = summarize_level(
        Level("rate", 2.0), _records(["good morning everyone", "turn left at the bridge"] * 10),
        warmup_s=0, wall_s=10, buffer_ms=0, max_lag_ms=5, min_duration_s=1, corpus=CORPUS,
    )  # fmt: skip
    load = LoadResult(target="http://x/v1/audio/transcriptions", settings={"transcription": True})
    load.levels.append(lv)
    load.capacity = evaluate(load.levels, parse_slo("latency_p99<1s,wer<=1%"))
    section = levels_section(load)
    row = dict(zip(section.headers, section.rows[0], strict=True))
    assert "ttfa p50" not in section.headers
    assert (row["WER"], row["RTFx"], row["latency p50"]) == ("0.00%", "3.30", "500")
    assert row["SLO"] == "met" and load.capacity["level"] == lv.label
