"""The HTTP engine's incremental WAV decoder and its Server-Timing parser."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from support.speech_server import wav_header
from voxbench.engines.http import WavStreamDecoder, parse_server_timing, pcm16_format
from voxbench.errors import EngineFailed

RATE = 16000


def int16_samples(n: int = 301) -> np.ndarray:
    # An odd count and values that use both bytes, so a misaligned byte shows up in the result.
    return ((np.arange(n) * 2654435761) % 65536 - 32768).astype("<i2")


def as_float(ints: np.ndarray) -> np.ndarray:
    return ints.astype(np.float32) / 32768.0


def decode(pieces: list[bytes], decoder: WavStreamDecoder | None = None) -> np.ndarray:
    decoder = decoder or WavStreamDecoder()
    parts = [decoder.feed(p) for p in pieces]
    decoder.finish()
    return np.concatenate(parts)


def split_every(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def streaming_wav(ints: np.ndarray, *, extra_chunk: bool = True) -> bytes:
    """Header with unknown sizes and (optionally) an odd-sized LIST chunk between fmt and data."""
    header = wav_header(RATE, None)
    if extra_chunk:
        header = header[:36] + chunk(b"LIST", b"INFOabc") + header[36:]
    return header + ints.tobytes()


# --- WAV decoder ---------------------------------------------------------------------------------


def test_header_split_at_every_byte_position() -> None:
    ints = int16_samples()
    body = streaming_wav(ints)
    for cut in range(len(body) + 1):
        got = decode([body[:cut], body[cut:]])
        np.testing.assert_array_equal(got, as_float(ints), err_msg=f"split at byte {cut}")


@pytest.mark.parametrize("size", [1, 3, 7])
def test_odd_pieces_carry_partial_samples(size: int) -> None:
    ints = int16_samples()
    decoder = WavStreamDecoder()
    got = decode(split_every(streaming_wav(ints), size), decoder)
    np.testing.assert_array_equal(got, as_float(ints))
    assert decoder.sample_rate == RATE and decoder.samples == len(ints)


@pytest.mark.parametrize("data_size", [0, 0xFFFFFFFF])
def test_unknown_data_size_reads_to_the_end(data_size: int) -> None:
    ints = int16_samples()
    header = wav_header(RATE, None)[:40] + struct.pack("<I", data_size)
    np.testing.assert_array_equal(decode([header + ints.tobytes()]), as_float(ints))


def test_known_data_size_stops_before_trailing_chunks() -> None:
    ints = int16_samples()
    body = wav_header(RATE, ints.nbytes) + ints.tobytes() + chunk(b"LIST", b"INFOtrailing")
    np.testing.assert_array_equal(decode(split_every(body, 5)), as_float(ints))


@pytest.mark.parametrize(
    ("subtype", "fmt", "channels"),
    [
        ("PCM_U8", "WAV", 1),
        ("PCM_16", "WAV", 1),
        ("PCM_24", "WAV", 1),
        ("PCM_32", "WAV", 1),
        ("FLOAT", "WAV", 1),
        ("DOUBLE", "WAV", 1),
        ("PCM_16", "WAV", 2),
        ("PCM_24", "WAVEX", 2),
        ("FLOAT", "WAVEX", 1),
    ],
)
def test_sample_formats_match_soundfile(subtype: str, fmt: str, channels: int) -> None:
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.9, 0.9, size=(257, channels)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, audio, RATE, subtype=subtype, format=fmt)
    expected, _ = sf.read(io.BytesIO(buffer.getvalue()), dtype="float64", always_2d=True)
    got = decode(split_every(buffer.getvalue(), 13))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("subtype", ["ALAW", "ULAW", "IMA_ADPCM"])
def test_compressed_wav_is_rejected(subtype: str) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(2048, dtype=np.float32), RATE, subtype=subtype, format="WAV")
    with pytest.raises(EngineFailed, match="bad audio: unsupported WAV encoding"):
        decode([buffer.getvalue()])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff" * 64, "not a WAV stream"),
        (b"RIFF\xff\xff\xff\xffAVI LIST", "not WAVE"),
        (b"RIFF\xff\xff\xff\xffWAVEdata\xff\xff\xff\xff\x00\x00", "data chunk before its fmt"),
        (wav_header(RATE, None)[:30], "ended inside the WAV header"),
        (b"", "body was empty"),
        (wav_header(RATE, None), "no audio samples"),
        (wav_header(RATE, None)[:16] + struct.pack("<I", 1 << 20), "fmt chunk claims"),
    ],
)
def test_broken_bodies_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(EngineFailed, match=f"bad audio: .*{reason}"):
        decode([body])


def test_raw_pcm_carries_the_odd_byte() -> None:
    ints = int16_samples()
    decoder = WavStreamDecoder(raw=pcm16_format(24000))
    got = decode(split_every(ints.tobytes(), 3), decoder)
    np.testing.assert_array_equal(got, as_float(ints))
    assert decoder.sample_rate == 24000


def test_samples_come_out_as_soon_as_they_are_complete() -> None:
    decoder = WavStreamDecoder()
    assert len(decoder.feed(wav_header(RATE, None) + b"\x01")) == 0
    assert len(decoder.feed(b"\x02\x03")) == 1  # one whole sample, one byte carried
    assert len(decoder.feed(b"\x04")) == 1


# --- Server-Timing -------------------------------------------------------------------------------


def test_server_timing_entries() -> None:
    header = (
        'synth;dur=12.5;desc="espeak, in-process; v1", queue;dur=0.3, cache;desc=miss, db;dur=x'
    )
    assert parse_server_timing([header]) == {"synth": 12.5, "queue": 0.3}


def test_server_timing_across_headers_adds_up_repeated_names() -> None:
    values = ["gpu;dur=4", 'gpu;desc="second pass";dur=6, total;DUR="11.5"', "", "  ,  "]
    assert parse_server_timing(values) == {"gpu": 10.0, "total": 11.5}


def test_server_timing_ignores_unusable_durations() -> None:
    assert parse_server_timing(["a;dur=-1, b;dur=inf, c;dur=nan, ;dur=3, d"]) == {}
