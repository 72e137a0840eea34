"""Throughput of the quality metrics: seconds of audio judged per second of compute (x real time).

Every metric of ``voxbench.quality.registry`` that can run here is timed on espeak-ng speech of
about 10 s and 30 s (whole sentences, so a transcript can be checked); the reference is a slightly
altered copy of the same speech (gain 0.8, a one-pole low-pass, white noise 30 dB below it), so
pitch, spectral, PESQ, STOI and speaker similarity all have something to compare. One untimed
warm-up call per metric (imports, model loads; its time is shown as "first s"), then the median of
``--repeats`` calls timed with ``time.perf_counter`` (CPU time by ``time.process_time`` beside it:
above the wall time when a library runs threads, far below it when other processes take the
cores). Metrics that cannot run are listed with the reason; a family whose module cannot be
imported is skipped with a note.

Side by side, F0 trackers on the same speech: voxbench's ``pitch.f0_contour`` (Praat) against
``librosa.pyin`` (the common Python reference) and pyworld's DIO and Harvest, all at a 10 ms hop
and a 50-1100 Hz range.

Also pitch against a target melody (one F0 analysis instead of two) on the generated singing voice
of the ``singing30`` workload.

The whole set as an evaluation runs it (:func:`voxbench.quality.scoring.score_entries`): every
available metric on each of the sentences above as its own case (its reference an altered copy),
first serially (``jobs=1``, every metric in this process, one after another), then in parallel
(one worker process per CPU, the metric families side by side), in the same run, each timed from
start to end (wall clock): cold (imports and model loads included: an evaluation loads each model
once), then warm (models loaded: this process for serial, the same worker pool for parallel); all
checked to give the same scores. "x real time" = seconds of audio judged / wall seconds.

Goals: pitch and spectral each at least 100x real time; the whole set at least 8x (parallel
evaluation), with 5x for the sum of every available metric's warm time, per second of audio.
Metrics whose first call takes over 2 s are timed 3 times at most, to keep the run short.
Usage: python benchmarks/quality.py [--quick] [--repeats 5] [--jobs N]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import tempfile

# librosa caches its numba kernels next to its own code; processes compiling them at the same time
# can leave a mismatched pair that crashes pyin (numba/numba#10128, librosa/librosa#1998). A cache
# of our own, set before numba is imported, keeps this benchmark off a corrupted shared one.
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "voxbench-bench-numba")
)
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from voxbench.engines.espeak import EspeakEngine
from voxbench.quality.base import Clip, Item, Metric, MetricUnavailable
from voxbench.quality.registry import BUILTIN_FAMILIES, ENTRY_POINT_GROUP, family_metrics
from voxbench.quality.scoring import (
    Entry,
    default_jobs,
    evaluation_threads,
    score_entries,
    worker_pool,
)
from voxbench.quality.targets import DEFAULT_TARGETS

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs.",
    "A journey of a thousand miles begins with a single step.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "How vexingly quick daft zebras jump!",
    "The rain in Spain stays mainly in the plain.",
    "We measured every engine twice, once cold and once warm, and wrote down both figures.",
)
SLOW_FIRST_CALL_S = 2.0
SLOW_REPEATS = 3
DSP_GOAL = 100.0
WHOLE_SET_GOAL = 5.0
EVALUATION_GOAL = 8.0
F0_RANGE = (50.0, 1100.0)
HOP_S = 0.01


def speech(seconds: float) -> tuple[Clip, str]:
    """Whole espeak-ng sentences, cycled until at least ``seconds`` of audio, and their text."""
    engine = EspeakEngine()
    engine.load()
    try:
        engine.synthesize("warm up")  # the first utterance in a process comes out shorter
        parts: list[np.ndarray] = []
        words: list[str] = []
        total, rate, k = 0, 22_050, 0
        while total < seconds * rate:
            out = engine.synthesize(SENTENCES[k % len(SENTENCES)])
            assert out.audio is not None and out.sample_rate is not None
            rate = out.sample_rate
            parts.append(out.audio)
            words.append(SENTENCES[k % len(SENTENCES)])
            total += len(out.audio)
            k += 1
    finally:
        engine.close()
    return Clip(np.concatenate(parts).astype(np.float32), rate), " ".join(words)


def altered(clip: Clip, seed: int = 0) -> Clip:
    """A slightly different copy: gain 0.8, one-pole low-pass (a = 0.3), noise 30 dB down."""
    from scipy.signal import lfilter

    x = 0.8 * lfilter([0.7], [1.0, -0.3], clip.audio.astype(np.float64))
    noise = np.random.default_rng(seed).standard_normal(len(x))
    x += noise * np.sqrt(np.mean(x**2)) * 10 ** (-30 / 20)
    return Clip(np.clip(x, -1.0, 1.0).astype(np.float32), clip.sample_rate)


def load_metrics() -> tuple[list[Metric], list[str]]:
    """Every metric whose family module imports, and a note for each family that does not."""
    from importlib.metadata import entry_points

    metrics: list[Metric] = []
    notes: list[str] = []
    for family in BUILTIN_FAMILIES:
        try:
            metrics += family_metrics(family)
        except ImportError as exc:
            notes.append(f"family {family!r} skipped: cannot import its module ({exc})")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:
            notes.append(f"entry point {ep.name!r} skipped: {type(exc).__name__}: {exc}")
            continue
        metrics += list(loaded) if isinstance(loaded, list | tuple) else [loaded]
    return metrics, notes


def timed(call: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def first_call(call: Callable[[], Any]) -> tuple[float, str | None]:
    """Seconds of one untimed-for-the-median call, or the reason it could not run."""
    t0 = time.perf_counter()
    try:
        call()
    except MetricUnavailable as exc:
        return time.perf_counter() - t0, str(exc)
    return time.perf_counter() - t0, None


Timings = dict[str, dict[float, tuple[float, float]]]


def bench_metrics(metrics: list[Metric], items: dict[float, Item], repeats: int) -> Timings:
    """Print one row per metric; return metric name -> {audio seconds: (wall s, cpu s)}."""
    durations = list(items)
    head = "".join(
        f" | {f'{d:.1f} s audio: wall s':>19} {'cpu s':>7} {'x RT':>7}" for d in durations
    )
    print(f"{'metric':16} {'family':16} {'first s':>8}{head}")
    timings: Timings = {}
    for metric in metrics:
        label = f"{metric.name:16} {metric.family:16}"
        reason = metric.unavailable() or metric.missing_inputs(items[durations[0]])
        if reason:
            print(f"{label} unavailable: {reason}")
            continue
        first, refused = first_call(lambda m=metric: m.compute(items[durations[0]]))
        if refused:
            print(f"{label} {first:8.2f} unavailable on this input: {refused}")
            continue
        row = f"{label} {first:8.2f}"
        timings[metric.name] = {}
        n = min(repeats, SLOW_REPEATS) if first > SLOW_FIRST_CALL_S else repeats
        for seconds, item in items.items():
            wall, cpu = timed(lambda m=metric, it=item: m.compute(it), n)
            timings[metric.name][seconds] = (wall, cpu)
            row += f" | {wall:19.3f} {cpu:7.3f} {seconds / wall:7.1f}"
        print(row)
    return timings


def bench_f0(clip: Clip, repeats: int) -> None:
    """voxbench's Praat F0 against librosa.pyin and pyworld DIO / Harvest on the same audio."""
    from voxbench.quality.pitch import f0_contour

    x = clip.audio.astype(np.float64)
    rate = clip.sample_rate
    floor, ceiling = F0_RANGE
    trackers: list[tuple[str, str, Callable[[], Any]]] = [
        ("voxbench f0_contour (Praat AC)", "parselmouth", lambda: f0_contour(clip)),
        (
            "librosa.pyin",
            "librosa",
            lambda: importlib.import_module("librosa").pyin(
                x, fmin=floor, fmax=ceiling, sr=rate, hop_length=round(HOP_S * rate)
            ),
        ),
        (
            "pyworld.dio",
            "pyworld",
            lambda: importlib.import_module("pyworld").dio(
                x, rate, f0_floor=floor, f0_ceil=ceiling, frame_period=HOP_S * 1000
            ),
        ),
        (
            "pyworld.harvest",
            "pyworld",
            lambda: importlib.import_module("pyworld").harvest(
                x, rate, f0_floor=floor, f0_ceil=ceiling, frame_period=HOP_S * 1000
            ),
        ),
    ]
    print(f"\nF0 trackers on {clip.seconds:.1f} s of speech, {floor:g}-{ceiling:g} Hz, 10 ms hop:")
    print(f"{'tracker':32} {'first s':>8} {'wall s':>8} {'cpu s':>7} {'x RT':>8} {'vs ours':>9}")
    ours: float | None = None
    for name, module, call in trackers:
        if importlib.util.find_spec(module) is None:
            print(f"{name:32} unavailable: {module} not installed")
            continue
        first, _ = first_call(call)
        wall, cpu = timed(
            call, min(repeats, SLOW_REPEATS) if first > SLOW_FIRST_CALL_S else repeats
        )
        ours = ours or wall
        print(
            f"{name:32} {first:8.2f} {wall:8.3f} {cpu:7.3f} {clip.seconds / wall:8.1f} "
            f"{wall / ours:8.1f}x"
        )


def bench_singing_pitch(repeats: int) -> tuple[float, float, float] | None:
    """Pitch against the melody of the 30 s generated singing voice: (audio s, wall s, cpu s)."""
    try:
        from voxbench.quality import pitch
        from voxbench.quality.base import Note
        from voxbench.workloads.singing import SAMPLE_RATE, generate
    except ImportError as exc:
        print(f"\npitch against a melody skipped: {exc}")
        return None
    audio, notes = generate(30.0, seed=1)
    melody = tuple(Note(*n.as_melody(SAMPLE_RATE)) for n in notes)
    item = Item(audio=Clip(audio, SAMPLE_RATE), melody=melody)
    result = pitch.compute(item)
    wall, cpu = timed(lambda: pitch.compute(item), repeats)
    seconds = item.audio.seconds
    print(
        f"\npitch against the melody of 30 s of generated singing ({result['alignment']} alignment, "
        f"{result['f0_rmse_cents']:.1f} cents RMS, vibrato included): wall {wall:.3f} s, "
        f"cpu {cpu:.3f} s, {seconds / wall:.1f}x real time"
    )
    return seconds, wall, cpu


def sentence_entries() -> list[Entry]:
    """Each of :data:`SENTENCES` as one case: espeak-ng speech, an altered copy as reference."""
    engine = EspeakEngine()
    engine.load()
    try:
        engine.synthesize("warm up")
        entries = []
        for k, text in enumerate(SENTENCES):
            out = engine.synthesize(text)
            assert out.audio is not None and out.sample_rate is not None
            clip = Clip(out.audio.astype(np.float32), out.sample_rate)
            entries.append(Entry(f"s{k}", "text", Item(clip, text, altered(clip, seed=k))))
    finally:
        engine.close()
    return entries


def bench_evaluation(metrics: list[Metric], jobs: int | None) -> list[tuple[str, float, float]]:
    """The whole set over the sentence cases, serial then parallel: (label, audio s, wall s)."""
    runnable = [m for m in metrics if not m.unavailable()]
    entries = sentence_entries()
    seconds = sum(e.item.audio.seconds for e in entries if e.item is not None)
    workers = jobs or default_jobs()
    print(
        f"Whole set as one evaluation: {len(runnable)} metrics x {len(entries)} cases "
        f"({seconds:.1f} s of audio), {evaluation_threads(len(runnable))} library thread(s) "
        "per metric; cold = imports and model loads included:"
    )
    rows: list[tuple[str, float, float]] = []
    results = []
    threads = evaluation_threads(len(runnable))
    with worker_pool(min(workers, len(runnable)), threads) as pool:
        # cold: imports and model loads count; warm: the same again, models loaded (the second
        # warm parallel call, so every worker has met the metrics it is given)
        runs = (
            ("serial, cold", 1, False),
            (f"parallel x{workers}, cold", workers, True),
            ("serial, warm", 1, False),
            (f"parallel x{workers}, warm", workers, True),
            (f"parallel x{workers}, warm", workers, True),
        )
        for k, (label, n, reuse) in enumerate(runs):
            c0, t0 = time.process_time(), time.perf_counter()
            scored = score_entries(
                entries, runnable, DEFAULT_TARGETS, jobs=n, pool=pool if reuse else None
            )
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            results.append(scored)
            if k == 3:
                continue
            rows.append((label, seconds, wall))
            print(
                f"  {label:22} wall {wall:7.2f} s  {seconds / wall:6.1f}x real time  "
                f"(this process's CPU {cpu:6.2f} s)"
            )

    def fields(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: s.model_dump(exclude={"compute_s", "value"}) for k, s in c.items()} for c in scores
        ]

    def values(scores: list[dict[str, Any]]) -> np.ndarray:
        return np.array([s.value for c in scores for s in c.values() if s.value is not None])

    same = all(fields(r) == fields(results[0]) for r in results[1:])
    spread = (
        max(float(np.max(np.abs(values(r) - values(results[0])), initial=0.0)) for r in results[1:])
        if same
        else float("nan")
    )
    print(
        f"  same scores in all {len(results)} evaluations: {'yes' if same else 'NO'} "
        f"(reasons, verdicts, transcripts exactly; values to {spread:.1e} at most)"
    )
    print(
        f"  parallel / serial speed: cold {rows[0][2] / rows[1][2]:.2f}x, "
        f"warm {rows[2][2] / rows[3][2]:.2f}x\n"
    )
    return rows


def goal(label: str, seconds: float, wall: float, cpu: float, target: float) -> None:
    """One goal line: judged on wall time; CPU time beside it shows what contention cost."""
    verdict = "met" if seconds / wall >= target else "MISSED"
    print(
        f"  {label:40} {seconds / wall:7.1f}x real time, {seconds / cpu:7.1f}x per CPU second "
        f"(goal >= {target:g}x: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of audio only, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per figure (5)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel workers (one per CPU)")
    parser.add_argument(
        "--evaluation-only", action="store_true", help="only the serial/parallel whole set"
    )
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    targets = (10.0,) if args.quick else (10.0, 30.0)
    warnings.filterwarnings("ignore", category=UserWarning)  # pkg_resources notices on import

    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load average {load:.2f} at start; {repeats} timed calls per "
        "figure, median"
    )
    metrics, notes = load_metrics()
    for note in notes:
        print(note)
    evaluation = bench_evaluation(metrics, args.jobs)  # first: imports and loads count
    if args.evaluation_only:
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        return
    items: dict[float, Item] = {}
    longest, text = speech(max(targets))
    for seconds in targets:
        clip, words = speech(seconds) if seconds != max(targets) else (longest, text)
        items[round(clip.seconds, 1)] = Item(audio=clip, text=words, reference=altered(clip))
    print()
    timings = bench_metrics(metrics, items, repeats)
    singing = bench_singing_pitch(repeats)
    bench_f0(items[max(items)].audio, repeats)

    print("\nGoals:")
    for seconds in items:
        for name in ("pitch", "spectral"):
            if name in timings:
                goal(f"{name} on {seconds:.1f} s", seconds, *timings[name][seconds], DSP_GOAL)
        if timings:
            wall = sum(t[seconds][0] for t in timings.values())
            cpu = sum(t[seconds][1] for t in timings.values())
            label = f"whole set ({len(timings)} metrics) on {seconds:.1f} s"
            goal(label, seconds, wall, cpu, WHOLE_SET_GOAL)
    if singing:
        goal("pitch against a melody (singing, 30 s)", *singing, DSP_GOAL)
    for label, seconds, wall in evaluation:
        verdict = "met" if seconds / wall >= EVALUATION_GOAL else "MISSED"
        print(
            f"  {'whole set, ' + label:40} {seconds / wall:7.1f}x real time "
            f"(goal >= {EVALUATION_GOAL:g}x: {verdict})"
        )
    missing = [m.name for m in metrics if m.name not in timings]
    if missing or notes:
        print(
            f"  (not in the whole set: {', '.join(missing) or 'none'}; {len(notes)} family notes)"
        )
    end_load = os.getloadavg()[0]
    print(f"load average {end_load:.2f} at the end", end="")
    if max(load, end_load) > (os.cpu_count() or 1):
        print(": more runnable processes than cores, so wall times include waiting for a core")
    else:
        print()


if __name__ == "__main__":
    main()
