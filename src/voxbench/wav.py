"""WAV encoding and streaming decoding, shared by the command and HTTP engines, serve and the
load client.

Decoding is incremental: :class:`WavDecoder` takes a RIFF/WAVE stream in pieces of any size (a
pipe read, an HTTP body chunk, one byte) and returns float32 mono samples as soon as whole frames
have arrived, so a caller can time the first audio of a stream. :class:`RawDecoder` does the same
for headerless PCM. Encoding writes what voxbench's own server sends: 16-bit PCM with a 44-byte
header, whose size fields say "unknown" while a stream is still being written.

Only numpy and the standard library are used, and numpy only once there is audio to convert, so
modules that merely import this one (listing engines) do not pay for numpy.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxbench.errors import EngineFailed

if TYPE_CHECKING:
    import numpy as np

WAVE_PCM = 1  # integer PCM; 8-bit is unsigned, wider is signed little-endian
WAVE_FLOAT = 3  # IEEE float, little-endian
WAVE_EXTENSIBLE = 0xFFFE  # the real tag is the first two bytes of the SubFormat GUID
# What a writer puts in a size field it cannot know, e.g. on a pipe or a streamed HTTP body.
UNKNOWN_SIZE = 0xFFFFFFFF
_UNKNOWN_SIZES = (0, UNKNOWN_SIZE)
HEADER_BYTES = 44  # RIFF preamble (12) + fmt chunk (8 + 16) + data chunk header (8)
# A longer fmt chunk is not WAV: refusing it keeps a corrupt header from buffering megabytes.
_MAX_FMT_BYTES = 1024
_HEAD_SHOWN = 12  # bytes of a stream that is not WAV quoted in the error

# (format tag, bits per sample) → (numpy dtype read, zero offset, full scale). Every scale is a
# power of two, so multiplying by its inverse is exact. 24-bit samples are read as the top three
# bytes of an int32 (see _int24), hence the int32 scale.
_ENCODINGS: dict[tuple[int, int], tuple[str, float, float]] = {
    (WAVE_PCM, 8): ("u1", 128.0, 128.0),
    (WAVE_PCM, 16): ("<i2", 0.0, 2.0**15),
    (WAVE_PCM, 24): ("<i4", 0.0, 2.0**31),
    (WAVE_PCM, 32): ("<i4", 0.0, 2.0**31),
    (WAVE_FLOAT, 32): ("<f4", 0.0, 1.0),
    (WAVE_FLOAT, 64): ("<f8", 0.0, 1.0),
}


class WavError(EngineFailed):
    """Bytes that do not decode as audio; the message gives the decoder's context and the reason."""


@dataclass(frozen=True)
class WavFormat:
    """How the samples of a WAV ``data`` chunk (or of raw PCM) are laid out.

    ``tag`` is :data:`WAVE_PCM` or :data:`WAVE_FLOAT` (never :data:`WAVE_EXTENSIBLE`: its real
    tag is read instead), ``sample_rate`` is in Hz and ``bits`` is bits per sample per channel.
    """

    tag: int
    channels: int
    sample_rate: int
    bits: int

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame: one sample of every channel."""
        return self.channels * self.bits // 8


def pcm16_format(sample_rate: int, channels: int = 1) -> WavFormat:
    """Signed 16-bit little-endian PCM at ``sample_rate`` Hz, as OpenAI's ``"pcm"`` format."""
    return WavFormat(tag=WAVE_PCM, channels=channels, sample_rate=sample_rate, bits=16)


# --- encoding ------------------------------------------------------------------------------------


def _size_field(value: int) -> int:
    # More than 4 GiB does not fit: "unknown" makes readers read to the end, as for a stream.
    return value if value < UNKNOWN_SIZE else UNKNOWN_SIZE


def wav_header(
    sample_rate: int, data_bytes: int | None, channels: int = 1, bits: int = 16
) -> bytes:
    """The 44-byte header of integer-PCM WAV audio holding ``data_bytes`` bytes of samples.

    ``data_bytes=None`` writes :data:`UNKNOWN_SIZE` in both size fields, as a stream whose length
    is not known yet does. An odd ``data_bytes`` is counted with the pad byte RIFF requires after
    it, which the caller writes.
    """
    frame = channels * bits // 8
    fmt = struct.pack("<HHIIHH", WAVE_PCM, channels, sample_rate, sample_rate * frame, frame, bits)
    if data_bytes is None:
        riff_size = data_size = UNKNOWN_SIZE
    else:
        data_size = _size_field(data_bytes)
        riff_size = _size_field(HEADER_BYTES - 8 + data_bytes + (data_bytes & 1))
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", data_size)
    )  # fmt: skip


def to_pcm16(audio: Any) -> bytes:
    """Float samples, full scale at ±1, as signed 16-bit little-endian PCM (clipped, rounded)."""
    import numpy as np

    # ×32768 with rounding gives back the very samples of engines that started from int16 (espeak).
    scaled = np.round(np.asarray(audio, dtype=np.float32) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def encode_wav(audio: Any, sample_rate: int) -> bytes:
    """A whole 16-bit mono WAV file of ``audio`` (float samples, full scale at ±1)."""
    pcm = to_pcm16(audio)
    return wav_header(sample_rate, len(pcm)) + pcm


# --- decoding ------------------------------------------------------------------------------------


def _parse_fmt(body: bytes) -> WavFormat:
    """The ``fmt `` chunk's body, checked to be an encoding :data:`_ENCODINGS` can read.

    Raises ValueError with the reason; the decoder adds its context.
    """
    if len(body) < 16:
        raise ValueError(f"WAV fmt chunk is {len(body)} bytes, expected at least 16")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == WAVE_EXTENSIBLE and len(body) >= 26:
        (tag,) = struct.unpack_from("<H", body, 24)
    if (tag, bits) not in _ENCODINGS:
        raise ValueError(
            f"unsupported WAV encoding (format tag {tag:#x}, {bits}-bit); "
            "expected integer PCM (8/16/24/32-bit) or IEEE float (32/64-bit)"
        )
    if channels < 1 or rate < 1:
        raise ValueError(f"WAV header says {channels} channels at {rate} Hz")
    return WavFormat(tag=tag, channels=channels, sample_rate=rate, bits=bits)


def _int24(data: bytes) -> bytes:
    """Each 3-byte sample moved into the top of a 4-byte one, so the sign comes along."""
    import numpy as np

    wide = np.zeros((len(data) // 3, 4), dtype=np.uint8)
    wide[:, 1:] = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
    return wide.tobytes()


def _converter(fmt: WavFormat) -> Callable[[bytes], np.ndarray]:
    """A function turning whole frames of ``fmt`` into float32 mono (channels averaged).

    Built once per stream, so that each piece of audio costs one read, one scale and (for more
    than one channel) one mean, with nothing looked up again.
    """
    import numpy as np

    dtype, offset, scale = _ENCODINGS[(fmt.tag, fmt.bits)]
    inverse = np.float32(1.0 / scale)
    # Decided here, as plain bools, so the per-piece function does no numpy comparisons.
    widen, shift, rescale, channels = fmt.bits == 24, offset != 0, scale != 1, fmt.channels

    def convert(data: bytes) -> np.ndarray:
        samples = np.frombuffer(_int24(data) if widen else data, dtype=dtype).astype(np.float32)
        if shift:
            samples -= offset
        if rescale:
            samples *= inverse
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
        return samples

    return convert


class WavDecoder:
    """A RIFF/WAVE stream fed in pieces of any size, turned into float32 mono as it arrives.

    The header may arrive split anywhere; chunks other than ``fmt `` and ``data`` are skipped
    without being kept; a partial frame waits for the next piece. A data size of 0 or
    0xFFFFFFFF means "until the stream ends", and any other size is trusted only as an upper
    bound: a writer on a pipe cannot seek back to fix it, so it may write a guess (espeak-ng
    1.51 writes 0x7FFFF000), and the audio then simply ends with the stream.

    Given ``raw``, there is no header: every byte is audio in that format. Errors are
    :class:`WavError` (an EngineFailed) reading ``"{context}: {reason}"``.
    """

    def __init__(self, raw: WavFormat | None = None, *, context: str = "bad audio") -> None:
        self.format: WavFormat | None = None
        self.samples = 0  # mono samples (frames) returned so far
        self.bytes_fed = 0
        self.context = context
        self._convert: Callable[[bytes], np.ndarray] | None = None
        self._frame = 1
        self._riff_seen = False
        self._head = bytearray()  # header bytes not parsed yet
        self._skip = 0  # bytes of an unneeded chunk still to drop
        self._left: int | None = None  # data bytes still to come; None: up to the end
        self._carry = b""  # the start of a frame whose other bytes have not arrived yet
        if raw is not None:
            self._start(raw, None)

    @property
    def sample_rate(self) -> int | None:
        """The audio's rate in Hz once the header has been read (at once for raw PCM)."""
        return self.format.sample_rate if self.format else None

    @property
    def started(self) -> bool:
        """Whether the audio has begun: the header is read (always, for raw PCM)."""
        return self._convert is not None

    def feed(self, data: bytes) -> np.ndarray:
        """Take the next piece of the stream; return the samples it completed (maybe none)."""
        self.bytes_fed += len(data)
        if self._convert is None:
            self._head += data
            data = self._parse_header()
            if self._convert is None:
                return self._empty()
        if self._left is not None:
            # Bytes after a data chunk of known size are trailing chunks (LIST...), not audio.
            data = data[: self._left]
            self._left -= len(data)
        if self._carry:
            data = self._carry + data
        whole = len(data) - len(data) % self._frame
        self._carry = data[whole:]
        audio = self._convert(data[:whole])
        self.samples += len(audio)
        return audio

    def finish(self) -> None:
        """Check that the stream held audio; raise :class:`WavError` saying why when it did not.

        A partial frame left at the end is dropped: it is at most a few bytes of one sample.
        """
        if self.bytes_fed == 0:
            raise self._error("the body was empty")
        if self._convert is None:
            raise self._error(
                f"the stream ended inside the WAV header after {self.bytes_fed} bytes "
                "(no 'data' chunk yet)"
            )
        if self.samples == 0:
            raise self._error("the stream held no audio samples")

    def _error(self, reason: str) -> WavError:
        return WavError(f"{self.context}: {reason}")

    def _empty(self) -> np.ndarray:
        import numpy as np

        return np.zeros(0, dtype=np.float32)

    def _start(self, fmt: WavFormat, size: int | None) -> None:
        self.format = fmt
        self._frame = fmt.frame_bytes
        self._left = size
        self._convert = _converter(fmt)

    def _parse_header(self) -> bytes:
        """Consume header bytes; once the ``data`` chunk starts, return the bytes after its header."""
        head = self._head
        while True:
            if self._skip:
                dropped = min(self._skip, len(head))
                del head[:dropped]
                self._skip -= dropped
                if self._skip:
                    return b""
            if not self._riff_seen:
                if not self._check_riff():
                    return b""
                continue
            if len(head) < 8:
                return b""
            chunk_id = bytes(head[:4])
            (size,) = struct.unpack_from("<I", head, 4)
            if chunk_id == b"data":
                return self._start_data(size)
            if chunk_id == b"fmt ":
                if not self._read_fmt(size):
                    return b""
                continue
            del head[:8]
            self._skip = size + (size & 1)  # chunks are padded to an even size

    def _check_riff(self) -> bool:
        """Consume the 12-byte RIFF/WAVE preamble; False while it is incomplete."""
        head = self._head
        # Checked from the 4th byte on, so a stream that is not WAV fails on its first piece.
        if len(head) >= 4 and head[:4] not in (b"RIFF", b"RF64"):
            raise self._error(f"not a WAV stream (it starts with {bytes(head[:_HEAD_SHOWN])!r})")
        if len(head) < 12:
            return False
        if head[8:12] != b"WAVE":
            raise self._error(f"RIFF file of type {bytes(head[8:12])!r}, not WAVE")
        del head[:12]
        self._riff_seen = True
        return True

    def _read_fmt(self, size: int) -> bool:
        """Parse the ``fmt `` chunk at the head; False while it is incomplete."""
        if size > _MAX_FMT_BYTES:
            raise self._error(f"WAV fmt chunk claims {size} bytes")
        head = self._head
        if len(head) < 8 + size:
            return False
        try:
            self.format = _parse_fmt(bytes(head[8 : 8 + size]))
        except ValueError as exc:
            raise self._error(str(exc)) from None
        del head[: 8 + size]
        self._skip = size & 1
        return True

    def _start_data(self, size: int) -> bytes:
        if self.format is None:
            raise self._error("WAV data chunk before its fmt chunk")
        rest = bytes(self._head[8:])
        self._head.clear()
        self._start(self.format, None if size in _UNKNOWN_SIZES else size)
        return rest


class RawDecoder(WavDecoder):
    """Headerless PCM fed in pieces of any size: signed 16-bit little-endian mono by default.

    A :class:`WavDecoder` that starts in the data; a trailing partial frame is dropped.
    """

    def __init__(self, sample_rate: int, channels: int = 1, *, context: str = "bad audio") -> None:
        super().__init__(pcm16_format(sample_rate, channels), context=context)
