"""voxbench.wav: known-answer tests of the header writer, the encoder and the streaming decoders."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from voxbench.errors import EngineFailed
from voxbench.wav import (
    UNKNOWN_SIZE,
    RawDecoder,
    WavDecoder,
    WavError,
    WavFormat,
    encode_wav,
    pcm16_format,
    to_pcm16,
    wav_header,
)

# A known signal and the 16-bit samples it must become: ×32768, rounded, clipped to int16.
SIGNAL = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 0.25, -0.000015, 0.99], dtype=np.float32)
INTS = np.array([0, 16384, -16384, 32767, -32768, 8192, 0, 32440], dtype="<i2")
DECODED = INTS.astype(np.float32) / 32768  # what reading INTS back gives

# wav_header(16000, 6): every field written out by hand.
HEADER_16K_6 = (
    b"RIFF" + bytes.fromhex("2a000000") + b"WAVE"  # RIFF size 36 + 6 = 42
    + b"fmt " + bytes.fromhex("10000000")  # fmt chunk of 16 bytes
    + bytes.fromhex("0100 0100 803e0000 007d0000 0200 1000")  # PCM, mono, 16000 Hz, 32000 B/s, 2, 16
    + b"data" + bytes.fromhex("06000000")
)  # fmt: skip


def feed_all(decoder: WavDecoder, pieces: list[bytes]) -> np.ndarray:
    parts = [decoder.feed(p) for p in pieces]
    decoder.finish()
    return np.concatenate(parts)


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_pieces(data: bytes, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    pieces, pos = [], 0
    while pos < len(data):
        step = int(rng.integers(1, 20))
        pieces.append(data[pos : pos + step])
        pos += step
    return pieces


# --- encoding ------------------------------------------------------------------------------------


def test_header_fields_are_the_known_bytes() -> None:
    assert wav_header(16000, 6) == HEADER_16K_6
    assert len(HEADER_16K_6) == 44


def test_streaming_header_says_unknown_sizes() -> None:
    header = wav_header(24000, None)
    assert struct.unpack_from("<I", header, 4) == (UNKNOWN_SIZE,)
    assert struct.unpack_from("<I", header, 40) == (UNKNOWN_SIZE,)
    assert header[8:40] == wav_header(24000, 0)[8:40]  # only the sizes differ


def test_header_of_other_layouts() -> None:
    header = wav_header(8000, 3, channels=1, bits=8)
    # An odd data size is counted with its pad byte in the RIFF size: 36 + 3 + 1.
    assert struct.unpack_from("<I", header, 4) == (40,)
    assert struct.unpack_from("<HHIIHH", header, 20) == (1, 1, 8000, 8000, 1, 8)
    stereo = wav_header(44100, 400, channels=2, bits=24)
    assert struct.unpack_from("<HHIIHH", stereo, 20) == (1, 2, 44100, 44100 * 6, 6, 24)
    # A size that does not fit 32 bits is written as "unknown": readers read to the end.
    assert struct.unpack_from("<I", wav_header(8000, 1 << 33), 40) == (UNKNOWN_SIZE,)


def test_to_pcm16_rounds_and_clips() -> None:
    assert to_pcm16(SIGNAL) == INTS.tobytes()
    assert to_pcm16([2.0, -3.0]) == np.array([32767, -32768], dtype="<i2").tobytes()


def test_encoded_file_is_header_then_samples() -> None:
    data = encode_wav(SIGNAL, 16000)
    assert data == wav_header(16000, 2 * len(SIGNAL)) + INTS.tobytes()
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")  # an independent reader agrees
    assert rate == 16000
    np.testing.assert_array_equal(audio, INTS)


# --- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["whole", "bytewise", "random0", "random1", "random2"])
@pytest.mark.parametrize("streaming", [False, True])
def test_round_trip_in_any_pieces(split: str, streaming: bool) -> None:
    pcm = to_pcm16(SIGNAL)
    data = wav_header(22050, None if streaming else len(pcm)) + pcm
    if split == "whole":
        pieces = [data]
    elif split == "bytewise":
        pieces = bytewise(data)
    else:
        pieces = random_pieces(data, seed=int(split[-1]))
    decoder = WavDecoder()
    audio = feed_all(decoder, pieces)
    assert audio.dtype == np.float32
    np.testing.assert_array_equal(audio, DECODED)
    assert decoder.sample_rate == 22050 and decoder.samples == len(SIGNAL)
    assert decoder.format == WavFormat(tag=1, channels=1, sample_rate=22050, bits=16)
    assert decoder.bytes_fed == len(data) and decoder.started


def test_known_size_ends_the_audio_before_trailing_chunks() -> None:
    pcm = to_pcm16(SIGNAL)
    data = wav_header(8000, len(pcm)) + pcm + b"LIST" + struct.pack("<I", 4) + b"junk"
    np.testing.assert_array_equal(feed_all(WavDecoder(), bytewise(data)), DECODED)


def test_stereo_is_mixed_to_mono() -> None:
    frames = np.array([[16384, -16384], [32767, 32767], [-8192, 0]], dtype="<i2")
    data = wav_header(8000, frames.nbytes, channels=2) + frames.tobytes()
    expected = frames.astype(np.float32).mean(axis=1) / 32768
    np.testing.assert_allclose(feed_all(WavDecoder(), random_pieces(data, 3)), expected)


def test_raw_pcm_round_trip_carries_half_samples() -> None:
    decoder = RawDecoder(24000)
    audio = feed_all(decoder, random_pieces(to_pcm16(SIGNAL), 4))
    np.testing.assert_array_equal(audio, DECODED)
    assert decoder.format == pcm16_format(24000) and decoder.started


def test_errors_carry_the_context() -> None:
    with pytest.raises(WavError, match=r"^the pipe: not a WAV stream \(it starts with b'ID3"):
        WavDecoder(context="the pipe").feed(b"ID3\x04" + bytes(20))
    assert issubclass(WavError, EngineFailed)
    decoder = WavDecoder()
    decoder.feed(wav_header(8000, None)[:20])
    assert not decoder.started
    with pytest.raises(WavError, match=r"^bad audio: .*after 20 bytes \(no 'data' chunk yet\)"):
        decoder.finish()
