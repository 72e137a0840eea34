"""Speech recognition inputs without a recogniser: user corpora, audio reading, the upload form,
the spoken workload names and their errors, and how ``voxbench serve`` picks its route."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from voxbench.engines.registry import EngineSpec
from voxbench.engines.whisper import WhisperEngine, read_16k
from voxbench.errors import ConfigError, EngineFailed
from voxbench.load.serve_stt import BadForm, parse_form, spec_kinds
from voxbench.workloads import builtin_workloads, resolve_workload, spoken
from voxbench.workloads.files import load_path


def _tone(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    return path


# --- user corpora ---------------------------------------------------------------------------------


def test_folder_of_wav_and_txt_gives_audio_items_with_their_transcripts(tmp_path: Path) -> None:
    _tone(tmp_path / "a.wav")
    (tmp_path / "a.txt").write_text("  Hello\n there.  \n", encoding="utf-8")
    _tone(tmp_path / "b.wav")  # no transcript: still an input, without a reference
    work = load_path(tmp_path)
    assert work.kind == "audio"
    assert [(i.id, i.kind, i.text) for i in work.items] == [
        ("a", "audio", "Hello there."),
        ("b", "audio", None),
    ]
    assert work.items[0].path == (tmp_path / "a.wav").resolve()
    assert work.items[0].payload() == (tmp_path / "a.wav").resolve()


def test_folder_of_only_audio_keeps_working(tmp_path: Path) -> None:
    _tone(tmp_path / "x.flac")
    _tone(tmp_path / "y.wav")
    work = resolve_workload(str(tmp_path))
    assert [(i.id, i.text) for i in work.items] == [("x", None), ("y", None)]


def test_jsonl_with_audio_lines_gives_audio_items(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    _tone(tmp_path / "clips" / "one.wav")
    _tone(tmp_path / "clips" / "two.wav")
    lines = [
        {"audio": "clips/one.wav", "text": "Turn left."},
        {"audio": "clips/two.wav", "text": "Stop here.", "id": "second", "speaker": "ann"},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    work = load_path(path)
    assert work.kind == "audio"
    assert [(i.id, i.kind, i.text, i.meta) for i in work.items] == [
        ("one", "audio", "Turn left.", {}),
        ("second", "audio", "Stop here.", {"speaker": "ann"}),
    ]
    assert work.items[1].path == (tmp_path / "clips" / "two.wav").resolve()


def test_jsonl_audio_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"audio": "missing.wav", "text": "x"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.jsonl:1: audio file .*missing.wav does not exist"):
        load_path(path)
    _tone(tmp_path / "ok.wav")
    path.write_text('{"audio": "ok.wav", "text": "x"}\n{"text": "a prompt"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="mixes text lines and"):
        load_path(path)
    path.write_text('{"audio": "ok.wav", "text": 3}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a string"):
        load_path(path)


# --- audio reading --------------------------------------------------------------------------------


def test_read_16k_resamples_and_mixes_down(tmp_path: Path) -> None:
    audio = read_16k(_tone(tmp_path / "st.wav", seconds=1.0, rate=22050, channels=2))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == 16000
    # the 440 Hz tone survives at its own frequency: the spectrum peaks at 440 Hz (1 Hz bins)
    spectrum = np.abs(np.fft.rfft(audio))
    assert int(np.argmax(spectrum)) == 440
    same = read_16k(_tone(tmp_path / "m.wav", seconds=0.25))
    assert len(same) == 4000


def test_read_16k_failure_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(EngineFailed, match=r"^cannot read audio .*bad.wav: [^\n]*$"):
        read_16k(bad)


def test_whisper_rejects_an_unknown_model() -> None:
    with pytest.raises(ConfigError, match=r"'large' is not one of tiny\.en, base"):
        WhisperEngine(model="large")
    info = WhisperEngine(model="base", beam_size=5, cpu_threads=4).info()
    assert {k: info[k] for k in ("model", "beam_size", "cpu_threads", "compute_type")} == {
        "model": "base",
        "beam_size": 5,
        "cpu_threads": 4,
        "compute_type": "int8",
    }
    assert "synthesize_batch" in info["batching"] and info["language"] == "en"


# --- the upload form ------------------------------------------------------------------------------


def _form(**data: str) -> tuple[str, bytes]:
    audio = bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n"  # binary, with CRLFs inside
    request = httpx.Request(
        "POST", "http://127.0.0.1/", data=data, files={"file": ("clip.wav", audio, "audio/wav")}
    )
    return request.headers["content-type"], request.read()


def test_parse_form_reads_httpx_multipart_exactly() -> None:
    ctype, body = _form(model="whisper-1", response_format="text")
    fields = parse_form(ctype, body)
    assert fields["file"] == ("clip.wav", bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n")
    assert fields["model"] == (None, b"whisper-1")
    assert fields["response_format"] == (None, b"text")


def test_parse_form_refuses_what_is_not_multipart() -> None:
    with pytest.raises(BadForm, match="multipart/form-data"):
        parse_form("application/json", b"{}")
    ctype, body = _form()
    with pytest.raises(BadForm, match="not closed"):
        parse_form(ctype, body[: len(body) // 2])


# --- spoken workloads and serve routes ------------------------------------------------------------


def test_spoken_workload_names() -> None:
    names = {n for n in builtin_workloads() if n.startswith("spoken")}
    assert names == {
        f"spoken-{size}{suffix}"
        for size in ("short", "medium", "long")
        for suffix in ("", "-espeak", "-flite")
    }
    assert spoken.SPOKEN["spoken-medium-flite"] == ("medium", "flite")
    assert "piper" in spoken.SPOKEN_DESCRIPTIONS["spoken-short"]


def test_a_missing_tts_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoken.shutil, "which", lambda _name: None)
    spoken.generator.cache_clear()
    try:
        with pytest.raises(
            ConfigError, match=r"^spoken workloads by flite need flite \(apt-get install flite\)$"
        ):
            resolve_workload("spoken-short-flite")
    finally:
        spoken.generator.cache_clear()


def test_serve_picks_the_route_by_the_engine_kinds() -> None:
    assert spec_kinds(EngineSpec("whisper")) == ("audio", "text")
    assert spec_kinds(EngineSpec("pocketsphinx")) == ("audio", "text")
    assert spec_kinds(EngineSpec("espeak")) == ("text", "audio")
    assert spec_kinds(EngineSpec("no-such-engine")) == ("text", "audio")  # fails later, as before
