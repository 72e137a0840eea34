"""Workloads from the user's files: ``.txt`` (one input per line), ``.jsonl``, ``.mid``, audio
(``.wav``, ``.flac``, ``.ogg``: the input of audio-to-audio engines) or a folder of MIDI or audio.

Speech recognition corpora: a folder of ``name.wav`` with ``name.txt`` beside each (the transcript,
wyoming-bench's layout), or a ``.jsonl`` of ``{"audio": "file.wav", "text": "reference"}`` lines
(paths relative to the ``.jsonl``); each item's ``text`` is then the reference transcript.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxbench.errors import ConfigError
from voxbench.workloads.base import Workload, WorkloadItem

MIDI_SUFFIXES = {".mid", ".midi"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}


def _text_items(path: Path, lines: list[str]) -> tuple[WorkloadItem, ...]:
    return tuple(
        WorkloadItem(id=f"{path.stem}-{n}", kind="text", text=line, meta={"line": n})
        for n, line in enumerate(lines, 1)
    )


def _audio_record(path: Path, n: int, record: dict[str, object]) -> WorkloadItem:
    """A ``{"audio": "file.wav", "text": "reference"}`` line as an audio item."""
    audio = (path.parent / str(record["audio"])).expanduser()
    if not audio.is_file():
        raise ConfigError(f"{path}:{n}: audio file {audio} does not exist")
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        raise ConfigError(f'{path}:{n}: "text" (the reference transcript) must be a string')
    item_id = str(record.get("id") or audio.stem)
    meta = {k: v for k, v in record.items() if k not in ("id", "text", "audio")}
    return WorkloadItem(id=item_id, kind="audio", text=text, path=audio.resolve(), meta=meta)


def _jsonl_items(path: Path) -> tuple[WorkloadItem, ...]:
    items = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if isinstance(record, dict) and isinstance(record.get("audio"), str):
            items.append(_audio_record(path, n, record))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ConfigError(f'{path}:{n}: each line needs a "text" string, e.g. {{"text": "Hi"}}')
        item_id = str(record.get("id") or f"{path.stem}-{n}")
        meta = {k: v for k, v in record.items() if k not in ("id", "text")}
        for key in ("reference", "melody"):  # reference audio / a MIDI melody, next to the file
            if isinstance(meta.get(key), str):
                ref = (path.parent / meta[key]).expanduser()
                if not ref.is_file():
                    raise ConfigError(f"{path}:{n}: {key} file {ref} does not exist")
                meta[key] = str(ref.resolve())
        items.append(WorkloadItem(id=item_id, kind="text", text=record["text"], meta=meta))
    if len({item.kind for item in items}) > 1:
        raise ConfigError(f'{path}: mixes text lines and "audio" lines; use one kind per file')
    return tuple(items)


def _transcript(audio: Path) -> str | None:
    """The reference transcript beside an audio file (``name.txt``), or None."""
    txt = audio.with_suffix(".txt")
    if not txt.is_file():
        return None
    return " ".join(txt.read_text(encoding="utf-8").split()) or None


def _file_items(paths: list[Path]) -> tuple[WorkloadItem, ...]:
    items = []
    for p in sorted(paths):
        if p.suffix.lower() in MIDI_SUFFIXES:
            items.append(WorkloadItem(id=p.stem, kind="midi", path=p.resolve()))
        else:
            items.append(
                WorkloadItem(id=p.stem, kind="audio", text=_transcript(p), path=p.resolve())
            )
    return tuple(items)


def load_path(path: Path) -> Workload:
    """Read a user workload from ``path``; raise ConfigError with one line when it is unusable."""
    if not path.exists():
        raise ConfigError(f"workload file {path} does not exist")
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in MIDI_SUFFIXES | AUDIO_SUFFIXES]
        midi = [p for p in files if p.suffix.lower() in MIDI_SUFFIXES]
        chosen = midi or files
        if not chosen:
            raise ConfigError(f"folder {path} holds no .mid, .wav, .flac or .ogg files")
        items = _file_items(chosen)
    else:
        suffix = path.suffix.lower()
        if suffix == ".txt":
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            items = _text_items(path, [ln for ln in lines if ln])
        elif suffix == ".jsonl":
            items = _jsonl_items(path)
        elif suffix in MIDI_SUFFIXES | AUDIO_SUFFIXES:
            items = _file_items([path])
        else:
            raise ConfigError(
                f"cannot read workload {path}: use .txt (one input per line), .jsonl, "
                ".mid, .wav/.flac/.ogg, or a folder of such files"
            )
    if not items:
        raise ConfigError(f"workload file {path} has no inputs")
    return Workload(name=path.stem, kind=items[0].kind, items=items, description=str(path))
