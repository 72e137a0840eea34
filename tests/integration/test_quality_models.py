"""The model-based quality metrics, run for real: resemblyzer speaker similarity and ASR error rates.

Real engines (espeak-ng, piper) speak; real models (resemblyzer, Whisper tiny.en, pocketsphinx)
judge. ``pytest -s`` prints the figures measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from voxbench.engines.espeak import EspeakEngine
from voxbench.engines.piper import PiperEngine
from voxbench.quality import intelligibility, speaker
from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable
from voxbench.workloads.corpus import CORPUS

ASR = intelligibility.METRICS[0]
SPEAKER = speaker.METRICS[0]


def needs(metric: Metric) -> None:
    """Skip (with the fix) where the optional models of this metric are not installed."""
    if reason := metric.unavailable():
        pytest.skip(reason)


@pytest.fixture(scope="module")
def espeak_voice() -> Iterator[EspeakEngine]:
    engine = EspeakEngine()
    engine.load()
    engine.synthesize("warm up")  # espeak's first utterance in a process comes out shorter
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def piper_voice() -> Iterator[PiperEngine]:
    if reason := PiperEngine.check():
        pytest.skip(reason)
    # No noise: VITS otherwise draws durations at random, and transcripts could change run to run.
    engine = PiperEngine(noise_scale=0.0, noise_w=0.0)
    engine.load()
    yield engine
    engine.close()


def speak(engine: EspeakEngine | PiperEngine, text: str) -> Clip:
    out = engine.synthesize(text)
    assert out.audio is not None and out.sample_rate
    return Clip(audio=out.audio, sample_rate=out.sample_rate)


# --- speaker similarity ---------------------------------------------------------------------------


@pytest.mark.slow
def test_two_clips_of_one_voice_are_more_similar_than_two_engines(
    espeak_voice: EspeakEngine, piper_voice: PiperEngine
) -> None:
    needs(SPEAKER)
    text_a, text_b = CORPUS["medium"]["medium-1"], CORPUS["medium"]["medium-2"]
    espeak_a, espeak_b = speak(espeak_voice, text_a), speak(espeak_voice, text_b)
    piper_a, piper_b = speak(piper_voice, text_a), speak(piper_voice, text_b)

    started = time.perf_counter()
    speaker.encoder()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    speaker.embed(espeak_a)  # the first call also warms torch up
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = {
        name: speaker.embed(clip)
        for name, clip in {
            "espeak A": espeak_a,
            "espeak B": espeak_b,
            "piper A": piper_a,
            "piper B": piper_b,
        }.items()
    }
    per_clip_s = (time.perf_counter() - started) / len(vectors)

    def sim(a: str, b: str) -> float:
        return float(np.dot(vectors[a], vectors[b]))

    for vector in vectors.values():
        assert vector.shape == (256,)
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-6)

    # Through the metric as the evaluator calls it, and symmetric.
    via_metric = SPEAKER.compute(Item(audio=espeak_a, reference=espeak_b))["speaker_similarity"]
    assert via_metric == pytest.approx(sim("espeak A", "espeak B"), abs=1e-6)
    assert via_metric == pytest.approx(
        SPEAKER.compute(Item(audio=espeak_b, reference=espeak_a))["speaker_similarity"], abs=1e-6
    )

    print(
        f"\nresemblyzer load {load_s:.2f} s, first embedding {first_s:.2f} s, then "
        f"{per_clip_s:.3f} s per clip (~5 s of speech)"
        f"\nspeaker_similarity espeak A vs espeak B {sim('espeak A', 'espeak B'):.3f}"
        f"\nspeaker_similarity piper A  vs piper B  {sim('piper A', 'piper B'):.3f}"
        f"\nspeaker_similarity espeak A vs piper A  {sim('espeak A', 'piper A'):.3f}"
        f"\nspeaker_similarity espeak B vs piper B  {sim('espeak B', 'piper B'):.3f}"
    )
    assert sim("espeak A", "espeak B") > sim("espeak A", "piper A")
    assert sim("piper A", "piper B") > sim("piper A", "espeak A")
    assert sim("espeak B", "espeak A") > sim("espeak B", "piper B")
    assert sim("piper B", "piper A") > sim("piper B", "espeak B")


@pytest.mark.slow
def test_speaker_similarity_refuses_silence_and_needs_a_reference(
    espeak_voice: EspeakEngine,
) -> None:
    needs(SPEAKER)
    clip = speak(espeak_voice, CORPUS["short"]["short-1"])
    silence = Clip(audio=np.zeros(16_000 * 2, dtype=np.float32), sample_rate=16_000)
    assert SPEAKER.missing_inputs(Item(audio=clip)) == "no reference audio for this input"
    with pytest.raises(MetricUnavailable, match="silent"):
        SPEAKER.compute(Item(audio=clip, reference=silence))
    # A 0.2 s blip: VAD keeps too little of it for an embedding.
    t = np.arange(int(0.2 * 16_000)) / 16_000
    blip = Clip(audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate=16_000)
    with pytest.raises(MetricUnavailable, match="voiced audio"):
        SPEAKER.compute(Item(audio=blip, reference=clip))


# --- intelligibility ------------------------------------------------------------------------------


def test_normalisation_ignores_case_punctuation_and_spacing() -> None:
    pytest.importorskip("jiwer")
    assert intelligibility.error_rates("Hello, World!", "hello world") == (0.0, 0.0)
    assert intelligibility.error_rates("The right-hand window.", "  the right hand  WINDOW ") == (
        0.0,
        0.0,
    )
    wer, cer = intelligibility.error_rates("the quick brown fox", "the quick brown box")
    assert wer == pytest.approx(1 / 4)
    assert cer == pytest.approx(1 / len("the quick brown fox"))
    with pytest.raises(MetricUnavailable, match="no words"):
        intelligibility.error_rates("?!", "anything")


def test_missing_text_is_reported_before_any_model_loads() -> None:
    clip = Clip(audio=np.zeros(1600, dtype=np.float32), sample_rate=16_000)
    assert ASR.missing_inputs(Item(audio=clip)) == "no input text to compare a transcript with"
    assert ASR.missing_inputs(Item(audio=clip, text="")) is not None
    assert ASR.missing_inputs(Item(audio=clip, text="hello")) is None


def test_a_bogus_recognizer_choice_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(intelligibility.ASR_ENV, "kaldi")
    reason = ASR.unavailable()
    assert reason is not None and "VOXBENCH_ASR='kaldi'" in reason
    clip = Clip(audio=np.zeros(1600, dtype=np.float32), sample_rate=16_000)
    with pytest.raises(MetricUnavailable, match="kaldi"):
        ASR.compute(Item(audio=clip, text="hello"))


@pytest.mark.slow
def test_espeak_and_piper_corpus_wer_is_measured_and_reported(
    espeak_voice: EspeakEngine, piper_voice: PiperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(intelligibility.ASR_ENV, intelligibility.WHISPER)
    needs(ASR)
    started = time.perf_counter()
    intelligibility.recognizer()
    load_s = time.perf_counter() - started

    texts = {
        key: text for group in ("short", "medium", "long") for key, text in CORPUS[group].items()
    }
    words = {key: len(intelligibility.normalise(text).split()) for key, text in texts.items()}
    errors: dict[str, float] = {}
    transcripts: dict[tuple[str, str], str] = {}
    lines = [f"\nwhisper load {load_s:.2f} s"]
    for engine_name, engine in (("espeak", espeak_voice), ("piper", piper_voice)):
        weighted = 0.0
        for key, text in texts.items():
            clip = speak(engine, text)
            started = time.perf_counter()
            result = ASR.compute(Item(audio=clip, text=text))
            took = time.perf_counter() - started
            wer, cer = result["wer"], result["cer"]
            assert result["recognizer"].startswith("faster-whisper")
            assert math.isfinite(wer) and math.isfinite(cer) and wer >= 0 and cer >= 0
            weighted += wer * words[key]
            transcripts[engine_name, key] = result["transcript"]
            lines.append(
                f"{engine_name:6} {key:8} {clip.seconds:5.1f} s audio, {took:.2f} s asr  "
                f"wer {wer:.3f} cer {cer:.3f}  {result['transcript']!r}"
            )
        errors[engine_name] = weighted / sum(words.values())
    lines.append(
        f"corpus WER (word-weighted) espeak {errors['espeak']:.3f}, piper {errors['piper']:.3f}"
    )
    print("\n".join(lines))

    # The neural voice is the more intelligible one over the corpus as a whole (single short
    # sentences can tie or go either way); and neither is so garbled that the recognizer failed.
    assert errors["piper"] < errors["espeak"]
    assert errors["piper"] < 0.25 and errors["espeak"] < 0.5

    # A transcript judged against the wrong text scores badly: the metric discriminates.
    wer, cer = intelligibility.error_rates(texts["medium-2"], transcripts["piper", "short-1"])
    assert wer > 0.8 and cer > 0.5


@pytest.mark.slow
def test_pocketsphinx_fallback_transcribes_and_names_itself(
    piper_voice: PiperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(intelligibility.ASR_ENV, intelligibility.POCKETSPHINX)
    needs(ASR)
    text = CORPUS["short"]["short-2"]
    clip = speak(piper_voice, text)
    started = time.perf_counter()
    result = ASR.compute(Item(audio=clip, text=text))
    took = time.perf_counter() - started
    print(
        f"\npocketsphinx (first call, with load) {took:.2f} s for {clip.seconds:.1f} s: "
        f"wer {result['wer']:.3f} cer {result['cer']:.3f} {result['transcript']!r}"
    )
    assert result["recognizer"] == "pocketsphinx en-us"
    assert math.isfinite(result["wer"]) and math.isfinite(result["cer"])
    assert result["wer"] <= 0.5  # a short, clear sentence from the neural voice
    with pytest.raises(MetricUnavailable, match="no input text"):
        ASR.compute(Item(audio=clip, text=None))


@pytest.mark.slow
def test_pocketsphinx_is_the_fallback_when_whisper_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    needs(ASR)
    monkeypatch.delenv(intelligibility.ASR_ENV, raising=False)
    absent = "voxbench_no_such_module"
    monkeypatch.setitem(intelligibility._MODULES, intelligibility.WHISPER, (absent,))
    if intelligibility._missing(intelligibility.POCKETSPHINX):
        pytest.skip("pocketsphinx not installed")
    assert ASR.unavailable() is None
    assert intelligibility.recognizer().name == "pocketsphinx en-us"

    monkeypatch.setitem(intelligibility._MODULES, intelligibility.POCKETSPHINX, (absent,))
    reason = ASR.unavailable()
    assert reason is not None and "pip install" in reason
    monkeypatch.setenv(intelligibility.ASR_ENV, intelligibility.WHISPER)
    reason = ASR.unavailable()
    assert reason is not None and absent in reason


# --- the MCD target ---------------------------------------------------------------------------


def test_the_mcd_target_passes_the_same_voice_and_fails_another(
    espeak_voice: EspeakEngine, piper_voice: PiperEngine
) -> None:
    """``mcd_db <= 6`` separates voices: espeak against itself at another speaking rate passes,
    piper against espeak saying the same words fails (half-scale MCD passed both: 2.3 and 5.5)."""
    from voxbench.quality import spectral
    from voxbench.quality.targets import DEFAULT_TARGETS

    text = "The quick brown fox jumps over the lazy dog."
    espeak = speak(espeak_voice, text)
    slow = EspeakEngine(rate=130)
    slow.load()
    try:
        slow.synthesize("warm up")
        espeak_slow = speak(slow, text)
    finally:
        slow.close()
    target = DEFAULT_TARGETS["mcd_db"]
    same = spectral.compute(Item(audio=espeak_slow, reference=espeak))["mcd_db"]
    other = spectral.compute(Item(audio=speak(piper_voice, text), reference=espeak))["mcd_db"]
    print(f"\nMCD: espeak slower vs espeak {same:.2f} dB, piper vs espeak {other:.2f} dB")
    assert target.check(same) and not target.check(other)
    assert other > same + 4.0
