"""Hypothesis strategies and checks for fuzzing what voxbench reads: config files, workload
files, result documents and requests to ``voxbench serve``.

Each ``check_*`` takes one generated input and returns ``"accepted"`` or ``"rejected"`` (a
one-line :class:`~voxbench.errors.VoxbenchError`, or a 4xx answer); anything else raises. The
suite (tests/fuzz/) runs them a few hundred times each; scripts/fuzz.py runs them by the ten
thousand and counts.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import socket
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from voxbench.errors import VoxbenchError

ACCEPTED, REJECTED = "accepted", "rejected"


def one_line(exc: VoxbenchError) -> str:
    """The message, checked to be one non-empty line (what the CLI prints)."""
    text = str(exc)
    assert text.strip() and "\n" not in text and "\r" not in text, repr(text)
    assert "Traceback (most recent call last)" not in text  # the data itself may say "Traceback"
    return text


def classify(action: Callable[[], object]) -> str:
    """Run ``action``: accepted, or rejected with a one-line VoxbenchError; others propagate."""
    try:
        action()
    except VoxbenchError as exc:
        one_line(exc)
        return REJECTED
    return ACCEPTED


# --- JSON and TOML values ------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def toml_key(key: str) -> str:
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return toml_string(key)


def toml_string(text: str) -> str:
    # JSON's escapes are TOML's basic-string escapes (\uXXXX included); a lone surrogate comes
    # out as \ud800, which TOML refuses: a parse error, as it should be.
    return json.dumps(text)


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (inline tables for dicts)."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(type(value))


def toml_document(table: dict[str, Any]) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())


# --- config files --------------------------------------------------------------------------------

_names = st.sampled_from(["short", "medium", "espeak", "cpu", "cuda", "cuda:1", "worker", "auto"])
_words = _names | st.text(max_size=15)
_config_values: dict[str, st.SearchStrategy[Any]] = {
    "workloads": st.lists(_words, max_size=3) | json_values,
    "devices": st.lists(_words, max_size=3) | json_values,
    "batch_sizes": st.lists(st.integers(-3, 64), max_size=3) | json_values,
    "iterations": st.integers(-3, 1000) | json_values,
    "warmup": st.integers(-3, 10) | json_values,
    "mode": st.sampled_from(["worker", "in-process", "ray"]) | json_values,
    "timeout": st.floats(-1, 1e9) | json_values,
    "stream": st.sampled_from(["auto", "on", "off", "maybe"]) | json_values,
    "output": st.text(max_size=20) | json_values,
    "machine_id": st.text(max_size=20) | json_values,
    "save_audio": st.booleans() | json_values,
    "quality": st.booleans() | json_values,
    "metrics": st.lists(_words, max_size=3) | json_values,
    "targets": st.dictionaries(_words, json_values, max_size=3) | json_values,
    "params": st.dictionaries(_words, st.lists(_scalars, max_size=3) | _scalars, max_size=3)
    | json_values,
}
_engine_entry = st.fixed_dictionaries(
    {"ref": _words | json_values},
    optional={
        "args": st.dictionaries(_words, json_values, max_size=3) | json_values,
        "params": st.dictionaries(_words, st.lists(_scalars, max_size=3) | _scalars, max_size=2)
        | json_values,
        "resources": st.dictionaries(_words, st.floats() | st.integers(), max_size=2) | json_values,
        "unknown": json_values,
    },
)
_pipeline = st.fixed_dictionaries(
    {},
    optional={
        "stt": _words | json_values,
        "llm": _words | json_values,
        "tts": _words | json_values,
        "modes": st.lists(st.sampled_from(["sequential", "streaming", "other"]), max_size=2)
        | json_values,
        "iterations": st.integers(-2, 5) | json_values,
        "targets": st.lists(_words, max_size=2) | json_values,
    },
)
config_tables = st.fixed_dictionaries(
    {},
    optional={
        **_config_values,
        "engine": st.lists(_engine_entry, max_size=3) | json_values,
        "pipeline": _pipeline | json_values,
        "unknown_key": json_values,
    },
)
good_configs = st.fixed_dictionaries(
    {},
    optional={
        "iterations": st.integers(1, 50),
        "warmup": st.integers(0, 5),
        "workloads": st.lists(st.sampled_from(["short", "medium", "long"]), min_size=1, max_size=2),
        "devices": st.just(["cpu"]),
        "mode": st.sampled_from(["worker", "in-process"]),
        "timeout": st.floats(0, 600),
        "stream": st.sampled_from(["auto", "on", "off"]),
        "params": st.dictionaries(st.sampled_from(["length_scale", "rate"]),
                                  st.lists(st.floats(0.5, 2.0), min_size=1, max_size=3), max_size=2),
        "engine": st.lists(st.fixed_dictionaries({"ref": st.sampled_from(["espeak", "piper"])}),
                           max_size=2),
    },
)  # fmt: skip
config_texts = (
    good_configs.map(toml_document)
    | config_tables.map(toml_document)
    | st.text(max_size=200)
    | st.lists(
        st.sampled_from(
            [
                "iterations = 3",
                "[pipeline]",
                "[[engine]]",
                'ref = "espeak"',
                "a = [[[[1]]]]",
                "x = 1979-05-27T07:32:00Z",
                "d = 2020-02-30",
                'k = "\\u0000"',
                '"" = 1',
                "x.y.z = 1",
                "i = 0x_1",
            ]
        ),
        max_size=6,
    ).map("\n".join)
)


def check_config(data: bytes) -> str:
    """``voxbench run -c FILE``'s first step on ``data``: a RunRequest or a one-line error."""
    from voxbench.run.request import RunOptions, RunRequest

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "voxbench.toml"
        path.write_bytes(data)
        return classify(lambda: RunRequest.from_sources(path, RunOptions()))


# --- workload files ------------------------------------------------------------------------------


def _wav(rate: int, channels: int, bits: int, frames: int, tag: int = 1) -> bytes:
    block = channels * bits // 8
    data = bytes((i * 37) % 256 for i in range(max(0, frames * block)))
    byte_rate = (rate * block) & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, block & 0xFFFF, bits)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
        + fmt + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip


@functools.cache
def _midi() -> bytes:
    from voxbench.workloads.midi import piece_bytes

    return piece_bytes(2.0, "simple", 7)


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A valid file, then cut, overwritten or spliced at random places."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "field"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=8))
        elif kind == "field" and len(data) >= at + 4:
            data[at : at + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 0xFFFFFFFF, 2**31])))
    return bytes(data)


wav_seeds = st.builds(
    _wav,
    st.sampled_from([0, 1, 8000, 16000, 44100, 2**32 - 1]),
    st.sampled_from([0, 1, 2, 255]),
    st.sampled_from([0, 8, 16, 24, 32, 64]),
    st.integers(0, 50),
    st.sampled_from([1, 3, 0xFFFE, 7]),
)
wav_bytes = mutated(wav_seeds) | st.binary(max_size=200)
midi_bytes = (
    mutated(st.builds(_midi))
    | st.binary(max_size=200)
    | st.just(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\xff\xff\xff\xff")
)
_record = st.fixed_dictionaries(
    {},
    optional={
        "text": st.text(max_size=30) | json_values,
        "id": st.text(max_size=10) | json_values,
        "audio": st.sampled_from(["clip.wav", "missing.wav", "~nobody-here/x.wav", "a\x00b", ""])
        | json_values,
        "reference": st.sampled_from(["clip.wav", "bad.wav", "~nobody-here/x.wav"]) | json_values,
        "melody": st.sampled_from(["tune.mid", "bad.wav"]) | json_values,
        "extra": json_values,
    },
)
jsonl_bytes = st.lists(
    _record.map(lambda r: json.dumps(r).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=30)
    | st.just(b"[" * 5000)
    | st.just(b'{"text": "\\ud800"}'),
    max_size=5,
).map(b"\n".join)
text_bytes = (
    st.text(max_size=100).map(str.encode)
    | st.binary(max_size=100)
    | st.text(max_size=50).map(lambda t: t.encode("utf-16"))
)
_good_workload = st.one_of(
    st.tuples(
        st.just(".txt"),
        st.lists(st.text(min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=4).map(
            lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")
        ),
    ),
    st.tuples(
        st.just(".jsonl"),
        st.lists(
            st.fixed_dictionaries(
                {"text": st.sampled_from(["Hi.", "A line."])},
                optional={
                    "id": st.text(alphabet="abc", min_size=1, max_size=4),
                    "reference": st.just("clip.wav"),
                },
            ),
            min_size=1,
            max_size=3,
        ).map(lambda rs: "\n".join(json.dumps(r) for r in rs).encode()),
    ),
    st.tuples(st.just(".wav"), st.integers(1, 2000).map(lambda f: _wav(16000, 1, 16, f))),
    st.tuples(st.just(".mid"), st.builds(_midi)),
)
workload_files = _good_workload | st.one_of(
    st.tuples(st.just(".txt"), text_bytes),
    st.tuples(st.just(".jsonl"), jsonl_bytes),
    st.tuples(st.sampled_from([".wav", ".flac", ".ogg"]), wav_bytes),
    st.tuples(st.sampled_from([".mid", ".midi"]), midi_bytes),
    st.tuples(st.just("/"), st.lists(st.tuples(st.sampled_from([".wav", ".mid", ".txt"]), wav_bytes | midi_bytes), max_size=3).map(
        lambda files: json.dumps([[s, b.hex()] for s, b in files]).encode()
    )),
)  # fmt: skip


def check_workload(suffix: str, data: bytes) -> str:
    """``voxbench run -w FILE`` reading ``data`` as a file with ``suffix`` (``/``: a folder of
    files); companion files the JSONL lines may name sit beside it."""
    from voxbench.workloads import resolve_workload

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "clip.wav").write_bytes(_wav(16000, 1, 16, 800))
        (root / "bad.wav").write_bytes(b"RIFF....WAVEnot really")
        (root / "tune.mid").write_bytes(_midi())
        if suffix == "/":
            target = root / "inputs"
            target.mkdir()
            for n, (ext, hexed) in enumerate(json.loads(data)):
                (target / f"f{n}{ext}").write_bytes(bytes.fromhex(hexed))
        else:
            target = root / f"inputs{suffix}"
            target.write_bytes(data)
        return classify(lambda: resolve_workload(str(target)))


def check_wav_stream(data: bytes, cuts: list[int]) -> str:
    """The streaming WAV decoder fed ``data`` in pieces: samples, or a one-line WavError."""
    from voxbench.wav import WavDecoder

    decoder = WavDecoder()
    points = sorted({min(max(0, c), len(data)) for c in cuts} | {0, len(data)})

    def feed() -> None:
        for a, b in itertools.pairwise(points):
            decoder.feed(data[a:b])
        decoder.finish()

    return classify(feed)


# --- result documents ----------------------------------------------------------------------------


def base_document() -> dict[str, Any]:
    """A real document (two cases, one failed) as JSON, the seed the mutations start from."""
    from support.result_docs import make_case, make_doc

    doc = make_doc("run-a", make_case([10.0, 11.0, 12.0]), make_case([], input_id="b", errors=2))
    return json.loads(doc.model_dump_json())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """Result-document bytes: the seed mutated (keys dropped, values swapped for any JSON,
    unknown keys, other schema versions), any JSON at all, or JSON cut short."""
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "version", "any", "cut"]))
    doc = base_document()
    if kind == "any":
        return json.dumps(draw(json_values)).encode()
    if kind == "version":
        doc["schema_version"] = draw(
            st.sampled_from(["2.0", "1.99", "0.9", "1", "1.7.1", "v1.7", "", "99999999.0"])
            | json_values
        )
    for _ in range(draw(st.integers(1, 4)) if kind == "mutate" else 0):
        paths = _paths(doc)[1:]
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
    text = json.dumps(doc, allow_nan=True).encode()
    if kind == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return text


def check_document(data: bytes) -> str:
    """``voxbench report|compare|quality RUN`` reading ``data`` as results.json (and ``store
    import`` reading it as an exported JSON list): a document or a one-line error."""
    from voxbench.results.document import load_document
    from voxbench.results.store.io import find_documents

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.json"
        path.write_bytes(data)
        first = classify(lambda: load_document(path))
        listed = Path(tmp) / "export.json"
        listed.write_bytes(b"[" + data + b"]")
        classify(lambda: list(find_documents([listed])))  # either answer, but no other exception
        return first


# --- requests to voxbench serve ------------------------------------------------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)
_header_value = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
_good_speech = st.fixed_dictionaries(
    {"input": st.text(min_size=1, max_size=60).filter(str.strip)},
    optional={
        "model": st.sampled_from(["tts-1", "espeak"]),
        "voice": st.sampled_from(["alloy", "en"]),
        "response_format": st.sampled_from(["wav", "pcm"]),
        "stream": st.booleans(),
        "speed": st.floats(0.25, 4.0),
    },
).map(lambda b: json.dumps(b).encode())
speech_bodies = _good_speech | st.one_of(
    st.fixed_dictionaries(
        {"input": st.text(min_size=1, max_size=60) | json_values},
        optional={
            "model": st.sampled_from(["tts-1", "espeak"]) | json_values,
            "voice": st.sampled_from(["alloy", "en"]) | json_values,
            "response_format": st.sampled_from(["wav", "pcm", "mp3", ""]) | json_values,
            "stream": st.booleans() | json_values,
            "speed": st.floats(0.25, 4.0) | json_values,
            "stream_format": st.sampled_from(["audio", "sse"]) | json_values,
            "instructions": st.text(max_size=20) | json_values,
            "other": json_values,
        },
    ).map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.just(b"[" * 100_000),
    st.just(b'{"input": "\\ud800 hello"}'),
    st.just(b'{"input": "a\\u0000b"}'),
    st.integers(5001, 6000).map(lambda n: json.dumps({"input": "a" * n}).encode()),
)


JSON_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", None,
     "multipart/form-data", "application/x-www-form-urlencoded", "application/ld+json"]
)  # fmt: skip
FORM_TYPES = st.sampled_from(
    ["multipart/form-data; boundary=fuzzb"] * 4
    + ["multipart/form-data", "application/json", None, "multipart/form-data; boundary=\"fuzzb\"",
       "multipart/form-data; boundary*=utf-8''%E2%82%AC", "multipart/form-data; boundary=" + "x" * 80]
)  # fmt: skip


@st.composite
def http_requests(
    draw: st.DrawFn,
    path: str,
    bodies: st.SearchStrategy[bytes],
    ctypes: st.SearchStrategy[str | None] = JSON_TYPES,
) -> bytes:
    """One raw HTTP/1.1 request: method, target, headers and body; half of them a plain POST of
    a body to ``path`` (so the engine is reached), the rest anything."""
    if draw(st.booleans()):
        body = draw(bodies)
        ctype = (
            "application/json" if ctypes is JSON_TYPES else "multipart/form-data; boundary=fuzzb"
        )
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: {ctype}\r\nConnection: close\r\n\r\n"
        )
        return head.encode("latin-1") + body
    method = draw(
        st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "FOO"])
    )
    target = draw(
        st.sampled_from([path] * 6 + ["/health", "/v1/models", "/", "/nope", path + "?x=1", "*"])
        | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(
            lambda t: "/" + t
        )
    )
    body = draw(bodies)
    ctype = draw(ctypes | _header_value)
    headers = [("Host", "127.0.0.1")]
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    headers += draw(st.lists(st.tuples(_token, _header_value), max_size=3))
    framing = draw(st.sampled_from(["length"] * 6 + ["chunked", "none", "wrong-length"]))
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "wrong-length":
        headers.append(("Content-Length", draw(st.sampled_from(["-1", "abc", "1e3", " 5", "0"]))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
    headers.append(("Connection", "close"))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


def send_raw(host: str, port: int, request: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
    """Send ``request``, read until the server closes; ``(status, whole answer)``, status 0 when
    the server closed without answering."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        # answered (413) and closed before the whole body went: read the answer
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            chunks.append(piece)
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1.1 "):
        return 0, answer
    return int(answer[9:12]), answer


def check_answer(status: int, answer: bytes) -> str:
    """2xx accepted; 4xx rejected (in OpenAI's error shape when voxbench wrote it); else raise."""
    if 200 <= status < 300:
        return ACCEPTED
    assert 400 <= status < 500, f"status {status}: {answer[:300]!r}"
    head, _, body = answer.partition(b"\r\n\r\n")
    if not body:  # the answer to HEAD: the head alone
        return REJECTED
    if b"application/json" in head.lower():
        error = json.loads(body)["error"]
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
    else:  # only uvicorn's own answer to a request h11 cannot parse is plain text
        assert body == b"Invalid HTTP request received.", answer[:300]
    return REJECTED


def multipart(fields: list[tuple[str, str | None, bytes]], boundary: str) -> bytes:
    out = b""
    for name, filename, content in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@st.composite
def upload_bodies(draw: st.DrawFn) -> bytes:
    """Multipart uploads (the boundary is ``fuzzb``), well formed or not, with audio or not."""
    if draw(st.booleans()):  # a proper upload: a short WAV, maybe a response format
        fields = [("file", "a.wav", _wav(16000, 1, 16, draw(st.integers(1, 4000))))]
        fmt = draw(st.sampled_from([None, b"json", b"text"]))
        return multipart(fields + ([("response_format", None, fmt)] if fmt else []), "fuzzb")
    fields = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["file", "file", "response_format", "model", "other"]),
                st.sampled_from([None, "a.wav", "a.mp3", "../x.wav", "a.\u00e9"]),
                wav_bytes | st.sampled_from([b"json", b"text", b"srt"]),
            ),
            max_size=3,
        )
    )
    body = multipart(fields, "fuzzb")
    if draw(st.booleans()):
        return body
    return draw(mutated(st.just(body)))
