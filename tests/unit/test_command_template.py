"""Command templates: shell-like splitting once, placeholders filled inside arguments per call."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from voxbench.engines.command import CommandTemplate, RawDecoder, Slot, WavDecoder
from voxbench.errors import ConfigError, EngineFailed

VALUES = {
    "text": "",
    "text_file": "/tmp/t.txt",
    "in": "/music/a b.mid",
    "out": "/tmp/o.wav",
    "out_dir": "/tmp/d",
}


def expand(template: str, **values: str) -> list[str]:
    return CommandTemplate.parse(template).expand({**VALUES, **values})


@pytest.mark.parametrize(
    "text",
    [
        "two words",
        'it\'s "quoted"',
        "braces {out} and {{x}} and {",
        "  spaces  around  ",
        "$HOME; rm -rf / | `x` && echo",
        "",
    ],
)
def test_text_is_one_argument_verbatim(text: str) -> None:
    assert expand("say -o {out} {text}", text=text) == ["say", "-o", "/tmp/o.wav", text]


def test_placeholder_inside_an_argument() -> None:
    assert expand("prog --out={out} --in={in}:x") == [
        "prog",
        "--out=/tmp/o.wav",
        "--in=/music/a b.mid:x",
    ]


def test_quoting_follows_the_shell() -> None:
    assert expand('piper --model "my model.onnx" -f {out}') == [
        "piper",
        "--model",
        "my model.onnx",
        "-f",
        "/tmp/o.wav",
    ]
    assert expand("sh -c 'echo boom >&2; exit 3' x {text}", text="a b") == [
        "sh",
        "-c",
        "echo boom >&2; exit 3",
        "x",
        "a b",
    ]
    # Quotes do not protect placeholders from being filled: they only group words.
    assert expand("prog '{out}'") == ["prog", "/tmp/o.wav"]


def test_doubled_braces_are_literal() -> None:
    assert expand("awk {{print}} {{text}} {{{text}}}", text="T") == [
        "awk",
        "{print}",
        "{text}",
        "{T}",
    ]


def test_other_braces_are_left_alone() -> None:
    assert expand("prog {1,2} { } {-x} } { {out") == [
        "prog",
        "{1,2}",
        "{",
        "}",
        "{-x}",
        "}",
        "{",
        "{out",
    ]


def test_parse_keeps_literals_and_slots_apart() -> None:
    template = CommandTemplate.parse("prog --out={out}.tmp {text}")
    assert template.args == (("prog",), ("--out=", Slot("out"), ".tmp"), (Slot("text"),))
    assert template.placeholders == {"out", "text"}
    assert template.program == "prog"
    assert template.source == "prog --out={out}.tmp {text}"


@pytest.mark.parametrize("template", ["prog {foo}", "prog --x={Text}", "prog {out_file}"])
def test_unknown_names_are_rejected(template: str) -> None:
    with pytest.raises(ConfigError, match="unknown placeholder") as err:
        CommandTemplate.parse(template)
    assert "{{" in str(err.value)  # the message says how to write a literal brace


def test_empty_template_is_rejected() -> None:
    for empty in ("", "   "):
        with pytest.raises(ConfigError, match="empty"):
            CommandTemplate.parse(empty)


# --- stdout decoders ------------------------------------------------------------------------------


def wav_bytes(
    samples: np.ndarray, rate: int, channels: int = 1, *, size: int | None = None
) -> bytes:
    pcm = samples.astype("<i2").tobytes()
    data_size = len(pcm) if size is None else size
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (
        b"RIFF" + struct.pack("<I", min(36 + data_size, 0xFFFFFFFF)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"LIST" + struct.pack("<I", 3) + b"abc\0"  # odd size: padded to a word
        + b"data" + struct.pack("<I", data_size) + pcm
    )  # fmt: skip


def feed_in_pieces(decoder: WavDecoder | RawDecoder, data: bytes, step: int) -> np.ndarray:
    parts = [decoder.feed(data[i : i + step]) for i in range(0, len(data), step)]
    decoder.finish()
    return np.concatenate(parts)


@pytest.mark.parametrize("size", [None, 0, 0xFFFFFFFF, 0x7FFFF000])
@pytest.mark.parametrize("step", [1, 3, 4096])
def test_wav_decoder_reads_streamed_headers(size: int | None, step: int) -> None:
    samples = np.arange(-500, 500, dtype=np.int16) * 30
    decoder = WavDecoder()
    audio = feed_in_pieces(decoder, wav_bytes(samples, 16000, size=size), step)
    assert decoder.sample_rate == 16000
    assert np.array_equal(audio, samples.astype(np.float32) / 32768)


def test_wav_decoder_stops_at_a_known_data_size_and_mixes_to_mono() -> None:
    stereo = np.array([[1000, 3000], [-2000, 0]], dtype=np.int16).reshape(-1)
    trailer = b"LIST" + struct.pack("<I", 4) + b"junk"
    data = wav_bytes(stereo, 8000, channels=2) + trailer
    audio = feed_in_pieces(WavDecoder(), data, 5)
    assert np.allclose(audio, np.array([2000, -1000], dtype=np.float32) / 32768)


def test_wav_decoder_rejects_what_is_not_wav() -> None:
    with pytest.raises(EngineFailed, match="not WAV"):
        WavDecoder().feed(b"hello, this is text\n")
    decoder = WavDecoder()
    decoder.feed(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(EngineFailed, match="no 'data' chunk"):
        decoder.finish()


def test_raw_decoder_carries_half_samples() -> None:
    samples = np.array([1, -2, 300, -32768, 32767], dtype="<i2")
    audio = feed_in_pieces(RawDecoder(8000), samples.tobytes(), 3)
    assert np.array_equal(audio, samples.astype(np.float32) / 32768)
