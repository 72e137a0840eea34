"""Bad input on the command line: each is one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import assert_one_line_error, voxbench
from support.fuzzing import _wav
from support.result_docs import make_case, make_doc


def _run_dir(tmp_path: Path, name: str, **changes: object) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    doc = json.loads(make_doc(name, make_case([10.0, 11.0])).model_dump_json())
    doc.update(changes)
    (folder / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def test_newer_schema_is_named_by_version(tmp_path: Path) -> None:
    newer = _run_dir(tmp_path, "newer", schema_version="2.0")
    assert_one_line_error(
        voxbench("report", str(newer)), "is schema 2.0, this voxbench reads up to 1.x: upgrade"
    )
    minor = _run_dir(tmp_path, "minor", schema_version="1.99", new_section={"x": 1})
    assert_one_line_error(voxbench("compare", str(minor), str(minor)), "schema 1.99", "upgrade")
    odd = _run_dir(tmp_path, "odd", schema_version="banana")
    assert_one_line_error(voxbench("quality", str(odd)), "schema_version 'banana'")


def test_broken_documents(tmp_path: Path) -> None:
    good = _run_dir(tmp_path, "good")
    cut = _run_dir(tmp_path, "cut")
    text = (cut / "results.json").read_text()
    (cut / "results.json").write_text(text[: len(text) // 2])
    assert_one_line_error(voxbench("compare", str(good), str(cut)), "is not JSON")
    missing = _run_dir(tmp_path, "missing")
    doc = json.loads((missing / "results.json").read_text())
    del doc["run_id"]
    (missing / "results.json").write_text(json.dumps(doc))
    assert_one_line_error(voxbench("report", str(missing)), "run_id: Field required")
    exported = tmp_path / "export.json"
    exported.write_bytes(b"\xff\xfe not json")
    assert_one_line_error(voxbench("store", "import", str(exported)), "is not JSON")


def test_documents_over_the_size_limit_are_not_read(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "big")
    proc = voxbench("report", str(run), env={"VOXBENCH_MAX_DOCUMENT_MB": "0.0001"})
    assert_one_line_error(proc, "is 2.0 KiB, more than the 104 bytes a result document may be")
    assert voxbench("report", str(run)).returncode == 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"iterations = [", "not valid TOML"),
        (b"colour = 'red'", "colour: unknown key (this table takes: engine, workloads,"),
        (b"iterations = 'ten'", "iterations: Input should be a valid integer"),
        (b"timeout = inf", "timeout"),
        (b"\xff\xfe\x00i", "not UTF-8 text"),
        (b'output = "a\\u0000b"', "NUL character"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: bytes, needle: str) -> None:
    config = tmp_path / "voxbench.toml"
    config.write_bytes(content)
    assert_one_line_error(voxbench("run", "-c", str(config), "-e", "espeak"), needle)


def test_config_that_is_a_folder(tmp_path: Path) -> None:
    assert_one_line_error(voxbench("run", "-c", str(tmp_path), "-e", "espeak"), "is a folder")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("bad.mid", b"MThd\x00\x00\x00\x06garbage", "is not a MIDI file"),
        ("bad.wav", b"RIFF\x10\x00\x00\x00WAVEfmt ", "is not audio soundfile can read"),
        ("empty.wav", _wav(16000, 1, 16, 0), "holds no audio samples"),
        ("lines.jsonl", b'{"text": "ok"}\n{"text": 3}', "lines.jsonl:2"),
        ("deep.jsonl", b"[" * 5000, "nested too deeply"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_bad_workload_files(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    proc = voxbench("run", "-e", "espeak", "-w", str(path), "-o", str(tmp_path / "out"))
    assert_one_line_error(proc, needle)


def test_folder_with_a_broken_file(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.wav").write_bytes(_wav(16000, 1, 16, 400))
    (folder / "b.wav").write_bytes(b"RIFF junk")
    proc = voxbench("run", "-e", "worldvc", "-w", str(folder), "-o", str(tmp_path / "out"))
    assert_one_line_error(proc, "b.wav is not audio")
