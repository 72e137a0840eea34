"""The chat side of the load client: SSE reading, level figures, SLO clauses, requests, report."""

from __future__ import annotations

import json

import pytest

from voxbench.errors import ConfigError
from voxbench.load.capacity import evaluate, parse_slo
from voxbench.load.metrics import summarize_level
from voxbench.load.records import BadStream, RequestRecord
from voxbench.load.run import LoadRequest, _bodies, is_chat_url
from voxbench.load.schedule import Level
from voxbench.load.sse import ChatReader
from voxbench.report.load import levels_section
from voxbench.results.document import LoadResult


def _event(obj: object) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _delta(text: str) -> bytes:
    return _event({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


ROLE = _event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
FINISH = _event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
USAGE = _event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}})
DONE = b"data: [DONE]\n\n"


def _reader(track: bool = True) -> tuple[RequestRecord, ChatReader]:
    rec = RequestRecord(due=0.0)
    return rec, ChatReader(rec, track=track, content_type="text/event-stream")


def test_events_split_across_pieces_and_several_in_one():
    rec, reader = _reader()
    stream = ROLE + b": keep-alive\n\n" + _delta("a") + _delta("b") + _delta("c")
    # the role event and a comment whole, then the three deltas cut in the middle of the second
    cut = len(ROLE) + len(b": keep-alive\n\n") + len(_delta("a")) + 7
    reader.feed(stream[:cut], 1.0)  # role + comment + "a" + part of "b"
    assert (rec.deltas, rec.first_token, rec.last_token) == (1, 1.0, 1.0)
    reader.feed(stream[cut:], 1.5)  # the rest of "b" and all of "c"
    reader.feed(FINISH + USAGE + DONE, 2.0)
    reader.finish(2.0)
    assert rec.deltas == 3
    assert rec.token_times == [1.0, 1.5, 1.5]
    assert (rec.first_token, rec.last_token) == (1.0, 1.5)
    assert rec.usage_tokens == 9 and rec.tokens == 9
    assert rec.done_marker


def test_crlf_line_ends_even_when_cut_between_cr_and_lf():
    rec, reader = _reader()
    wire = (_delta("x") + _delta("y")).replace(b"\n", b"\r\n")
    cut = wire.index(b"\r\n\r\n") + 1  # the first event's blank line cut after a \r
    reader.feed(wire[:cut], 1.0)
    assert rec.deltas == 0
    reader.feed(wire[cut:], 2.0)
    assert rec.deltas == 2 and rec.token_times == [2.0, 2.0]


def test_no_usage_counts_the_deltas_and_empty_content_is_no_token():
    rec, reader = _reader(track=False)
    for i, piece in enumerate((ROLE, _delta("one"), _delta(""), _delta("two"), FINISH, DONE)):
        reader.feed(piece, float(i))
    reader.finish(9.0)
    assert rec.usage_tokens == -1 and rec.tokens == rec.deltas == 2
    assert (rec.first_token, rec.last_token) == (1.0, 3.0)
    assert rec.token_times == []  # not tracked


def test_reasoning_content_is_not_content_and_last_event_without_blank_line():
    rec, reader = _reader()
    reasoning = _event({"choices": [{"delta": {"reasoning_content": "hmm"}}]})
    reader.feed(reasoning, 1.0)
    assert rec.deltas == 0
    reader.feed(_delta("z").rstrip(b"\n"), 2.0)  # the server closed without the blank line
    reader.finish(3.0)
    assert rec.deltas == 1 and rec.first_token == 3.0


def test_an_error_event_or_bad_json_is_a_bad_stream():
    _, reader = _reader()
    with pytest.raises(BadStream, match="overloaded"):
        reader.feed(_event({"error": {"message": "overloaded"}}), 1.0)
    _, reader = _reader()
    with pytest.raises(BadStream, match="not JSON"):
        reader.feed(b'data: {"content": \n\n', 1.0)


def test_a_whole_json_answer_is_one_delta_at_its_end():
    rec = RequestRecord(due=0.0)
    reader = ChatReader(rec, track=True, content_type="application/json")
    body = json.dumps(
        {
            "choices": [{"message": {"role": "assistant", "content": "hello there"}}],
            "usage": {"completion_tokens": 4},
        }
    ).encode()
    reader.feed(body[:10], 1.0)
    reader.feed(body[10:], 2.0)
    assert rec.deltas == 0
    reader.finish(2.5)
    assert (rec.deltas, rec.first_token, rec.usage_tokens) == (1, 2.5, 4)


# --- level figures -------------------------------------------------------------------------------


def _chat_record(due: float, ttft: float, tokens: int, gap: float, usage: bool) -> RequestRecord:
    first = due + ttft
    times = [first + i * gap for i in range(tokens)]
    return RequestRecord(
        due=due,
        sent=due,
        first_byte=due + 0.001,
        done=times[-1] + 0.001,
        status=200,
        first_token=first,
        last_token=times[-1],
        deltas=tokens,
        usage_tokens=tokens if usage else -1,
        done_marker=True,
        token_times=times,
    )


def _level(records: list[RequestRecord]):
    return summarize_level(
        Level("rate", 2.0), records, warmup_s=1.0, wall_s=12.0, buffer_ms=0, max_lag_ms=5
    )


def test_level_figures_of_known_requests():
    # 2 req/s for 10 s after a 1 s warm-up; ttft 0.25 s, 11 tokens 0.04 s apart (25 tokens/s)
    records = [_chat_record(0.5 * i, 0.25, 11, 0.04, usage=True) for i in range(22)]
    lv = _level(records)
    assert lv.requests == 20 and lv.ok == 20
    assert lv.ttft_ms is not None and lv.ttft_ms.p50 == pytest.approx(250)
    assert lv.itl_ms is not None and lv.itl_ms.p50 == pytest.approx(40) and lv.itl_ms.n == 200
    assert lv.tokens_per_second is not None and lv.tokens_per_second.p50 == pytest.approx(25)
    # window [1, 11): completions in it are the requests due 0.5 .. 10.0 s (done 0.65 s later)
    assert lv.window_s == pytest.approx(10.0)
    assert lv.output_tokens_per_second == pytest.approx(20 * 11 / 10.0)
    assert lv.tokens_source == "usage"
    assert lv.samples.ttft_ms == pytest.approx([250.0] * 20)
    assert lv.samples.tokens_per_second == pytest.approx([25.0] * 20)
    assert lv.ttfa_ms is None and lv.stalls is None  # no audio


def test_one_request_without_usage_makes_the_level_counted():
    records = [_chat_record(0.5 * i, 0.25, 11, 0.04, usage=True) for i in range(22)]
    records[5].usage_tokens = -1
    for r in records:
        r.usage_tokens = 30 if r.usage_tokens >= 0 else -1  # usage would say 30
    lv = _level(records)
    assert lv.tokens_source == "counted"
    assert lv.output_tokens_per_second == pytest.approx(20 * 11 / 10.0)  # the deltas, for all


def test_usage_counts_differ_from_deltas_when_a_delta_carries_several_tokens():
    records = [_chat_record(0.5 * i, 0.25, 11, 0.04, usage=True) for i in range(22)]
    for r in records:
        r.usage_tokens = 21  # two tokens per delta: (21 - 1) / 0.4 s
    lv = _level(records)
    assert lv.tokens_source == "usage"
    assert lv.tokens_per_second is not None and lv.tokens_per_second.p50 == pytest.approx(50)
    assert lv.output_tokens_per_second == pytest.approx(20 * 21 / 10.0)


def test_failed_requests_have_no_token_figures():
    records = [_chat_record(0.5 * i, 0.25, 11, 0.04, usage=True) for i in range(22)]
    records[10].error, records[10].status = "http_503", 503
    lv = _level(records)
    assert lv.ok == 19 and lv.ttft_ms is not None and lv.ttft_ms.n == 19


def test_speech_levels_have_no_chat_figures():
    records = [RequestRecord(due=0.5 * i, sent=0.5 * i, done=0.5 * i + 0.1) for i in range(22)]
    lv = _level(records)
    assert lv.ttft_ms is None and lv.tokens_source is None and lv.output_tokens_per_second is None


# --- SLO -----------------------------------------------------------------------------------------


def test_chat_slo_clauses():
    records = [_chat_record(0.5 * i, 0.25, 11, 0.04, usage=True) for i in range(22)]
    lv = _level(records)
    clauses = parse_slo("ttft_p50<=300ms,itl_p50<50ms,tokens_per_second_p50>=20")
    assert [c.holds(lv) for c in clauses] == [True, True, True]
    assert parse_slo("ttft_ok_p50<0.2s")[0].holds(lv) is False
    assert parse_slo("tokens_per_second_p50>30")[0].holds(lv) is False
    cap = evaluate([lv], parse_slo("ttft_p50<=300ms"))
    assert cap["output_tokens_per_second"] == pytest.approx(22.0)
    with pytest.raises(ConfigError, match="plain number"):
        parse_slo("tokens_per_second_p50>=20ms")


def test_chat_clauses_are_not_measured_on_speech_levels():
    records = [RequestRecord(due=0.5 * i, sent=0.5 * i, done=0.5 * i + 0.1) for i in range(22)]
    assert parse_slo("ttft_p50<1s")[0].holds(_level(records)) is None


# --- requests ------------------------------------------------------------------------------------


def test_chat_targets_and_their_bodies():
    assert is_chat_url("http://h:1/v1/chat/completions")
    assert not is_chat_url("http://h:1/v1/audio/speech")
    req = LoadRequest(target="llm:http://127.0.0.1:9/v1/", levels=[Level("rate", 1)], model="m")
    assert req.target == "http://127.0.0.1:9/v1/chat/completions"
    assert req.chat and req.workload == "prompts"
    bodies = _bodies(req)
    from voxbench.workloads import resolve_workload

    assert [b["messages"] for b in bodies] == [
        [{"role": "user", "content": item.text}] for item in resolve_workload("prompts").items
    ]
    assert bodies[0]["max_tokens"] == 128 and bodies[0]["stream"] is True
    assert bodies[0]["stream_options"] == {"include_usage": True}
    assert bodies[0]["temperature"] == 0 and bodies[0]["model"] == "m"


def test_speech_targets_keep_their_bodies():
    req = LoadRequest(target="http://127.0.0.1:9/v1/audio/speech", levels=[Level("rate", 1)])
    assert not req.chat and req.workload == "short"
    body = _bodies(req)[0]
    assert body["model"] == "tts-1" and "input" in body and "messages" not in body


def test_max_tokens_must_be_positive():
    with pytest.raises(ConfigError, match="--max-tokens"):
        LoadRequest(target="llm:http://h:1/v1", levels=[Level("rate", 1)], max_tokens=0)


# --- report --------------------------------------------------------------------------------------


def test_chat_level_table():
    records = [_chat_record(0.5 * i, 0.25, 11, 0.04, usage=False) for i in range(22)]
    load = LoadResult(target="http://h/v1/chat/completions", settings={"chat": True})
    load.levels.append(_level(records))
    section = levels_section(load)
    row = dict(zip(section.headers, section.rows[0], strict=True))
    assert "audio s/s" not in section.headers
    assert row["ttft p50"] == "250" and row["itl p50"] == "40.00"
    assert row["tok/s p50"] == "25.0" and row["output tok/s"] == "22.0"
    assert row["tokens"] == "counted" and row["errors"] == "0.00%"


@pytest.mark.parametrize(
    "event",
    [
        {"choices": [{"delta": {"content": "a"}}]},
        {"choices": [{"delta": {"content": ""}}]},
        {"choices": [{"delta": {"content": None}}]},
        {"choices": [{"delta": {"content": '"'}}]},  # an escaped quote is text
        {"choices": [{"delta": {"content": '\\"content\\"'}}]},
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"reasoning_content": "r"}}]},
        {"choices": [{"delta": {"content": "x"}, "logprobs": {"content": [{"token": "x"}]}}]},
        {"choices": [{"delta": {}, "logprobs": {"content": [{"token": "x"}]}}]},
        {"choices": [{"delta": {"content": ["odd"]}}]},
    ],
)
@pytest.mark.parametrize("spaced", [True, False])
def test_the_fast_content_test_agrees_with_decoding(event, spaced):
    """What the reader tells from the bytes is what decoding the event says."""
    text = json.dumps(event) if spaced else json.dumps(event, separators=(",", ":"))
    rec, reader = _reader()
    reader.feed(f"data: {text}\n\n".encode(), 1.0)
    content = event["choices"][0]["delta"].get("content")
    assert rec.deltas == (1 if isinstance(content, str) and content else 0)
