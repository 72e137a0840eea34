"""The command engine with real programs: espeak-ng and fluidsynth CLIs, and a failing shell."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxbench.engine import Chunk, can_stream, collect_stages
from voxbench.engines.command import CommandEngine, StreamingCommandEngine
from voxbench.engines.espeak import EspeakEngine
from voxbench.engines.registry import EngineSpec
from voxbench.errors import ConfigError, EngineFailed
from voxbench.run.measure import measure_call
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload
from voxbench.workloads.base import WorkloadItem

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
ESPEAK_CMD = "cmd:espeak-ng -w {out} {text}"
TRICKY = 'It\'s a "quoted" {text} test; $HOME & `echo no` | done.'

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng CLI missing")
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(SOUNDFONT).is_file(),
    reason="fluidsynth CLI or FluidR3_GM soundfont missing",
)


@pytest.fixture(scope="module")
def item() -> WorkloadItem:
    return resolve_workload("short").items[0]


@pytest.fixture(scope="module")
def espeak_seconds(item: WorkloadItem, tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long espeak-ng's own audio for the item is, written by the program run directly.

    Not the in-process library engine: the espeak-ng program ends an utterance with a pause
    (espeakENDPAUSE, ~0.29 s) and speaks the default "en" voice, so its audio is longer.
    """
    assert item.text is not None
    wav = tmp_path_factory.mktemp("espeak") / "direct.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), item.text], check=True, timeout=60)
    info = sf.info(wav)
    assert info.samplerate == 22050
    return info.frames / info.samplerate


def loaded(template: str, **params: object) -> Iterator[CommandEngine]:
    engine = CommandEngine(template, **params)  # type: ignore[arg-type]
    engine.load()
    try:
        yield engine
    finally:
        engine.close()


def seconds_of(audio: np.ndarray, rate: int | None) -> float:
    assert rate
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
    return len(audio) / rate


# --- espeak-ng through the scenario ----------------------------------------------------------------


@needs_espeak
def test_espeak_cli_run_case_matches_the_library(item: WorkloadItem, espeak_seconds: float) -> None:
    case = run_case(
        EngineSpec(ESPEAK_CMD),
        "cmd:espeak-ng",
        "short",
        item,
        Settings(mode="worker", iterations=3, warmup=1),
    ).case
    assert case.error_count == 0, case.errors
    assert case.audio_seconds == pytest.approx(espeak_seconds, rel=0.05)
    assert case.rtf is not None and case.rtf < 1
    assert len(case.samples.latency_ms) == 3
    assert all(cpu > 0 for cpu in case.samples.cpu_s)  # the child's CPU time is counted
    assert set(case.stages) == {"run", "read"}
    assert case.streamed is False
    assert case.engine_info["program"] == shutil.which("espeak-ng")
    assert case.engine_info["template"] == "espeak-ng -w {out} {text}"


@needs_espeak
def test_espeak_cli_speaks_like_the_library_plus_an_end_pause(item: WorkloadItem) -> None:
    library = EspeakEngine(voice="en-us")
    library.load()
    try:
        reference = library.synthesize(item.text).audio
    finally:
        library.close()
    assert reference is not None
    for engine in loaded("espeak-ng -v en-us -w {out} {text}"):
        audio = engine.synthesize(item.text).audio
    assert audio is not None
    voiced = np.nonzero(np.abs(audio) > 1e-3)[0][-1] + 1
    assert voiced == pytest.approx(len(reference), rel=0.05)
    assert 0.2 < (len(audio) - len(reference)) / 22050 < 0.4  # the program's end-of-text pause


@needs_espeak
@pytest.mark.parametrize(
    "template,params",
    [
        ("espeak-ng -w {out} {text}", {}),
        ("espeak-ng -w {out} -f {text_file}", {}),
        ("espeak-ng -w {out} --stdin", {"stdin": True}),
        ("espeak-ng --stdout {text}", {"stdout": "wav"}),
    ],
    ids=["text", "text_file", "stdin", "stdout-wav"],
)
def test_every_way_of_passing_the_text_gives_the_same_audio(
    template: str, params: dict[str, object], item: WorkloadItem, espeak_seconds: float
) -> None:
    for engine in loaded(template, **params):
        out = engine.synthesize(item.text)
        assert out.sample_rate == 22050
        assert seconds_of(out.audio, out.sample_rate) == pytest.approx(espeak_seconds, rel=0.05)


@needs_espeak
def test_awkward_text_stays_one_argument() -> None:
    # Same audio through argv and through a file means the argument arrived whole and unchanged.
    for by_arg in loaded("espeak-ng -w {out} {text}"):
        a = by_arg.synthesize(TRICKY).audio
    for by_file in loaded("espeak-ng -w {out} -f {text_file}"):
        b = by_file.synthesize(TRICKY).audio
    assert a is not None and b is not None and len(a) == len(b)


@needs_espeak
def test_stdout_wav_streams_chunks_as_the_program_writes(
    item: WorkloadItem, espeak_seconds: float
) -> None:
    for engine in loaded("espeak-ng --stdout {text}", stdout="wav"):
        assert isinstance(engine, StreamingCommandEngine) and can_stream(engine)
        chunks: list[Chunk] = list(engine.stream(item.text))
        assert len(chunks) >= 1 and {c.sample_rate for c in chunks} == {22050}
        audio = np.concatenate([c.audio for c in chunks])
        assert seconds_of(audio, 22050) == pytest.approx(espeak_seconds, rel=0.05)
        rec = measure_call(engine, item.text, use_stream=True, keep_audio=False)
        assert rec.error is None and rec.chunks >= 1
        assert rec.ttfa_ns is not None and 0 < rec.ttfa_ns <= rec.wall_ns


@needs_espeak
def test_stdout_raw_streams_through_a_pipeline(espeak_seconds: float, item: WorkloadItem) -> None:
    # sox turns espeak's WAV into bare s16le samples: the raw mode must cut no sample in half.
    template = "sh -c 'espeak-ng --stdout \"$1\" | sox -t wav - -t raw -e signed -b 16 -' sh {text}"
    for engine in loaded(template, stdout="raw", sample_rate=22050):
        whole = engine.synthesize(item.text)
        chunks = list(engine.stream(item.text))
        streamed = np.concatenate([c.audio for c in chunks])
        assert seconds_of(streamed, 22050) == pytest.approx(espeak_seconds, rel=0.05)
        assert whole.audio is not None and np.array_equal(whole.audio, streamed)


@needs_espeak
def test_streamed_case_records_ttfa(item: WorkloadItem) -> None:
    case = run_case(
        EngineSpec("cmd:espeak-ng --stdout {text}", {"stdout": "wav"}),
        "cmd:espeak-ng",
        "short",
        item,
        Settings(mode="worker", iterations=3, warmup=1),
    ).case
    assert case.error_count == 0, case.errors
    assert case.streamed and case.ttfa_ms is not None and case.latency_ms is not None
    assert case.ttfa_ms.median <= case.latency_ms.median


def test_only_stdout_audio_engines_can_stream() -> None:
    assert not can_stream(CommandEngine("espeak-ng -w {out} {text}"))
    assert not can_stream(CommandEngine("cat {text_file}", stdout="text"))
    assert can_stream(CommandEngine("espeak-ng --stdout {text}", stdout="wav"))


def test_stdout_text_engine_returns_the_text() -> None:
    for engine in loaded("sh -c 'tr a-z A-Z < \"$1\"' sh {text_file}", stdout="text"):
        assert engine.output_kind == "text"
        out = engine.synthesize("hello {world}")
        assert out.text == "HELLO {WORLD}" and out.audio is None


def test_env_cwd_and_a_fresh_out_dir_per_call(tmp_path: Path) -> None:
    script = 'printf "%s %s %s" "$VOX_TEST" "$(pwd)" "$(ls -A "$1" | wc -l)"; touch "$1/left"'
    template = f"sh -c '{script}' x {{out_dir}} {{text}}"
    for engine in loaded(template, stdout="text", env={"VOX_TEST": "secret"}, cwd=str(tmp_path)):
        assert engine.synthesize("a").text == f"secret {tmp_path} 0"
        assert engine.synthesize("b").text == f"secret {tmp_path} 0"  # emptied between calls
        assert engine.info()["env"] == ["VOX_TEST"] and "secret" not in json.dumps(engine.info())


# --- MIDI through the fluidsynth CLI ---------------------------------------------------------------


@needs_fluidsynth
def test_fluidsynth_cli_renders_the_piano_piece() -> None:
    piece = resolve_workload("piano").items[0]
    template = f"fluidsynth -ni -g 1.0 -F {{out}} -r 44100 {SOUNDFONT} {{in}}"
    for engine in loaded(template, input_kind="midi"):
        assert engine.input_kind == "midi"
        with collect_stages() as stages:
            out = engine.synthesize(piece.payload())
        assert out.sample_rate == 44100
        assert 9.5 <= seconds_of(out.audio, out.sample_rate) <= 13.0
        audible = np.nonzero(np.abs(out.audio) > 1e-3)[0]
        assert len(audible) and 9.5 <= audible[-1] / 44100 <= 11.5  # the notes end near 10 s
        assert stages["run"] > 0


# --- failures --------------------------------------------------------------------------------------


def test_missing_program_is_a_load_error_naming_it(item: WorkloadItem) -> None:
    case = run_case(
        EngineSpec("cmd:no-such-voxbench-program -o {out} {text}"),
        "cmd:no-such-voxbench-program",
        "short",
        item,
        Settings(mode="worker", iterations=1, warmup=0),
    ).case
    assert case.errors[0].phase == "load"
    assert case.errors[0].type == "EngineUnavailable"
    assert "program 'no-such-voxbench-program' not found on PATH" in case.errors[0].message


def test_failing_program_reports_status_and_stderr(item: WorkloadItem) -> None:
    case = run_case(
        EngineSpec("cmd:sh -c 'echo boom >&2; exit 3' x {text}", {"stdout": "text"}),
        "cmd:sh",
        "short",
        item,
        Settings(mode="worker", iterations=2, warmup=0),
    ).case
    measured = [e for e in case.errors if e.phase == "measure"]
    assert len(measured) == 2
    assert all("status 3" in e.message and "boom" in e.message for e in measured)
    assert measured[0].message == "command exited with status 3: boom"


def test_failing_streaming_program_reports_status_and_stderr() -> None:
    for engine in loaded("sh -c 'echo boom >&2; exit 3' x {text}", stdout="wav"):
        with pytest.raises(EngineFailed, match="status 3: boom"):
            list(engine.stream("hi"))


def test_program_that_writes_no_audio() -> None:
    for engine in loaded("true {out} {text}"):
        with pytest.raises(EngineFailed, match="wrote no audio to"):
            engine.synthesize("hi")
    for engine in loaded("sh -c 'echo not a wav' x {text}", stdout="wav"):
        with pytest.raises(EngineFailed, match="not WAV"):
            engine.synthesize("hi")
        with pytest.raises(EngineFailed, match="not WAV"):
            list(engine.stream("hi"))


def test_timeout_kills_the_program() -> None:
    for engine in loaded("sh -c 'sleep 5' x {text}", stdout="text", timeout=0.3):
        with pytest.raises(EngineFailed, match=r"timed out after 0\.3 s"):
            engine.synthesize("hi")
    for engine in loaded("sh -c 'sleep 5' x {text}", stdout="raw", sample_rate=8000, timeout=0.3):
        with pytest.raises(EngineFailed, match=r"timed out after 0\.3 s"):
            list(engine.stream("hi"))


def test_unknown_placeholder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{foo\}"):
        CommandEngine("espeak-ng -w {out} {foo}")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        EngineSpec("cmd:espeak-ng -w {out} {foo}").create()


@pytest.mark.parametrize(
    "template,params,message",
    [
        ("espeak-ng -w {out}", {}, r"needs \{text\} or \{text_file\}, or stdin=True"),
        ("", {}, "empty"),
        ("espeak-ng {text}", {}, r"needs \{out\}"),
        ("prog --stdout {text}", {"stdout": "raw"}, "needs sample_rate"),
        ("prog {in} {out}", {}, r"\{in\} is for midi/audio"),
        ("fluidsynth -F {out} {text}", {"input_kind": "midi"}, "need text input"),
        ("fluidsynth -F {out}", {"input_kind": "midi"}, r"needs \{in\}"),
        ("prog {text} {out}", {"stdout": "wav"}, "not both"),
        ("prog {text}", {"stdout": "mp3"}, "stdout must be"),
        ("prog {text} {out}", {"input_kind": "video"}, "input_kind must be"),
        ("{text} {out}", {}, "cannot be a placeholder"),
        ("prog 'unclosed {text} {out}", {}, "No closing quotation"),
    ],
)
def test_bad_configurations_are_one_line_config_errors(
    template: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        CommandEngine(template, **params)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_nothing_is_created_before_load(tmp_path: Path) -> None:
    engine = CommandEngine("espeak-ng -w {out} {text}")
    assert engine.info()["program"] == "espeak-ng"
    with pytest.raises(EngineFailed, match="before load"):
        engine.synthesize("hi")
    engine.load()
    scratch = engine._scratch
    assert scratch is not None and scratch.is_dir()
    engine.close()
    assert not scratch.exists()


# --- the CLI ---------------------------------------------------------------------------------------


@needs_espeak
def test_cli_runs_a_command_engine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voxbench", "run", "--engine", ESPEAK_CMD, "-w", "short",
         "-n", "2", "--warmup", "0", "-o", str(tmp_path), "--json", "-"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["cases"] and all(c["engine"] == "cmd:espeak-ng" for c in doc["cases"])
    assert all(c["audio_seconds"] > 0 and c["error_count"] == 0 for c in doc["cases"])
