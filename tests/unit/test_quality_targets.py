"""Targets, the Pareto front, and how the evaluator records what it could not measure."""

from __future__ import annotations

import numpy as np
import pytest

from voxbench.errors import ConfigError
from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable, Value
from voxbench.quality.evaluate import melody_of, score_case
from voxbench.quality.targets import DEFAULT_TARGETS, parse_target_option, resolve_targets
from voxbench.report.quality import pareto_front
from voxbench.results import Case


def test_default_targets_follow_the_issue():
    assert DEFAULT_TARGETS["f0_rmse_hz"].text() == "<= 10"
    assert DEFAULT_TARGETS["speaker_similarity"].text() == ">= 0.85"
    assert DEFAULT_TARGETS["f0_rmse_hz"].check(9.9) and not DEFAULT_TARGETS["f0_rmse_hz"].check(
        10.1
    )


def test_config_and_options_override_defaults_last_wins():
    targets = resolve_targets(
        {"wer": 0.05, "mcd_db": "off", "pesq_nb": ">= 2.5", "lsd_db": 2},
        ["wer<=0.2", "stoi=off"],
        directions={"lsd_db": False},
    )
    assert targets["wer"].text() == "<= 0.2"
    assert "mcd_db" not in targets and "stoi" not in targets
    assert targets["pesq_nb"].text() == ">= 2.5"
    assert targets["lsd_db"].text() == "<= 2"  # the direction comes from the metric


@pytest.mark.parametrize("bad", ["wer", "wer<=fast", "<=3"])
def test_bad_target_option_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        parse_target_option(bad)


def test_bad_target_in_config_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown direction"):
        resolve_targets({"mystery": 3})
    with pytest.raises(ConfigError, match="expected"):
        resolve_targets({"wer": [1, 2]})


def test_pareto_front_minimises_rtf_and_respects_direction():
    pts = [(0.1, 3.0), (0.2, 3.5), (0.3, 3.4), (0.05, 2.0)]
    assert pareto_front(pts, higher_is_better=True) == [True, True, False, True]
    # lower is better (e.g. WER): (0.3, 3.4) now beats (0.2, 3.5) on quality but not on speed
    assert pareto_front(pts, higher_is_better=False) == [False, False, False, True]
    assert pareto_front([(0.1, 1.0), (0.1, 1.0)], True) == [True, True]  # ties dominate nothing


def _case(**kw):
    base = dict(
        id="c",
        engine="e",
        workload="w",
        input_id="i",
        input_kind="text",
        mode="in-process",
        iterations=1,
        warmup=0,
    )
    return Case(**{**base, **kw})


def _metric(compute, needs=(), requires=()):
    # A stub metric: it stands for a metric family to test the evaluator's bookkeeping only.
    return Metric(
        name="stub",
        family="stub",
        needs=needs,
        values=(Value("score", "", True), Value("other", "", False)),
        compute=compute,
        requires=requires,
    )


ITEM = Item(audio=Clip(np.zeros(1600, np.float32), 16000), text="hi")


def test_unavailable_and_failing_metrics_are_reasons_never_zero():
    targets = resolve_targets({"score": ">= 1"})

    def boom(item):
        raise RuntimeError("library refused")

    def refuse(item):
        raise MetricUnavailable("too short")

    scores = score_case(_case(), ITEM, "", [_metric(boom)], targets)
    assert scores["score"].value is None and not scores["score"].available
    assert scores["score"].reason == "failed: RuntimeError: library refused"
    scores = score_case(_case(), ITEM, "", [_metric(refuse)], targets)
    assert scores["other"].reason == "too short" and scores["other"].value is None
    scores = score_case(_case(), ITEM, "", [_metric(boom, requires=("no_such_mod_xyz",))], {})
    assert "no_such_mod_xyz not installed" in scores["score"].reason
    scores = score_case(_case(), ITEM, "", [_metric(boom, needs=("reference",))], {})
    assert scores["score"].reason == "no reference audio for this input"


def test_values_get_targets_verdicts_and_details():
    targets = resolve_targets({"score": ">= 1", "other": "<= 0.5"})
    metric = _metric(lambda item: {"score": 2.0, "other": 0.7, "transcript": "hi"})
    scores = score_case(_case(), ITEM, "", [metric], targets)
    assert scores["score"].passed is True and scores["other"].passed is False
    assert scores["score"].details == {"transcript": "hi"}
    assert scores["score"].compute_s is not None and scores["score"].compute_s >= 0
    nan = _metric(lambda item: {"score": float("nan")})
    scores = score_case(_case(), ITEM, "", [nan], targets)
    assert not scores["score"].available and not scores["other"].available


def test_melody_is_transposed_by_the_engines_reported_shift():
    case = _case(
        input_kind="audio",
        input_meta={"melody": [[0.0, 0.5, 60.0], [0.5, 0.5, 62.0]]},
        engine_info={"pitch_shift_semitones": 2.0},
    )
    assert [n.pitch for n in melody_of(case)] == [62.0, 64.0]
    assert melody_of(_case()) is None


def test_a_midi_file_is_a_target_melody(tmp_path):
    """The melody may come as a MIDI file (e.g. a JSONL line's "melody": "tune.mid"); a tempo
    change halfway is honoured."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))  # 120 bpm: 0.5 s a beat
    track.append(mido.Message("note_on", note=60, velocity=90, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=480))
    track.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))  # 60 bpm
    track.append(mido.Message("note_on", note=64, velocity=90, time=0))
    track.append(mido.Message("note_on", note=64, velocity=0, time=480))  # velocity 0 = off
    path = tmp_path / "tune.mid"
    mid.save(str(path))
    case = _case(input_kind="audio", input_meta={"melody": str(path)})
    notes = melody_of(case)
    assert [n.pitch for n in notes] == [60.0, 64.0]
    assert notes[0].onset == pytest.approx(0.0) and notes[0].duration == pytest.approx(0.5)
    assert notes[1].onset == pytest.approx(0.5) and notes[1].duration == pytest.approx(1.0)
