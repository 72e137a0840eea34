"""Workloads from the user's files: ``.txt`` (one input per line), ``.jsonl``, ``.mid``, audio
(``.wav``, ``.flac``, ``.ogg``: the input of audio-to-audio engines) or a folder of MIDI or audio.

Speech recognition corpora: a folder of ``name.wav`` with ``name.txt`` beside each (the transcript,
wyoming-bench's layout), or a ``.jsonl`` of ``{"audio": "file.wav", "text": "reference"}`` lines
(paths relative to the ``.jsonl``); each item's ``text`` is then the reference transcript.

Every file is checked when the workload is read, so a bad one is a one-line ConfigError before
anything is measured: text files must be UTF-8 and at most :data:`MAX_TEXT_BYTES`; MIDI files
must parse (mido) and audio files must have a header soundfile reads, with samples in it.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxbench.errors import ConfigError
from voxbench.results.doc_checks import read_capped
from voxbench.workloads.base import Workload, WorkloadItem

MIDI_SUFFIXES = {".mid", ".midi"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}
MAX_TEXT_BYTES = 64 * 2**20
"""A .txt or .jsonl workload (or transcript) larger than this is refused before it is read."""
MAX_MIDI_BYTES = 16 * 2**20


def _first_line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:160]


def read_text(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 file's text (a byte-order mark dropped); ConfigError when it is too large,
    unreadable or not UTF-8."""
    data = read_capped(path, limit, "workload file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _check_text(where: str, text: str) -> str:
    if "\x00" in text:
        raise ConfigError(f"{where}: the text holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{where}: the text is not valid Unicode (an unpaired surrogate)"
        ) from None
    return text


def _beside(path: Path, n: int, key: str, name: str) -> Path:
    """A file a JSONL line names, relative to the JSONL file; it must exist."""
    try:
        ref = (path.parent / name).expanduser()
        found = ref.is_file()
    except (RuntimeError, ValueError, OSError):  # ~unknown-user, a NUL, a name too long
        found = False
        ref = path.parent / name
    if not found:
        raise ConfigError(f"{path}:{n}: {key} file {ref} does not exist")
    return ref.resolve()


def check_midi(path: Path) -> None:
    """ConfigError unless ``path`` is a MIDI file mido can read."""
    import mido

    try:
        if path.stat().st_size > MAX_MIDI_BYTES:
            raise ConfigError(
                f"{path} is larger than the {MAX_MIDI_BYTES} bytes a MIDI input may be"
            )
        mido.MidiFile(str(path))
    except ConfigError:
        raise
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, IndexError...
        raise ConfigError(f"{path} is not a MIDI file mido can read ({_first_line(exc)})") from None


def check_audio(path: Path) -> None:
    """ConfigError unless ``path`` has an audio header soundfile reads and holds samples."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # LibsndfileError is a RuntimeError; soundfile also raises others
        raise ConfigError(f"{path} is not audio soundfile can read ({_first_line(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise ConfigError(f"{path} holds no audio samples")


def _text_items(path: Path, lines: list[str]) -> tuple[WorkloadItem, ...]:
    return tuple(
        WorkloadItem(id=f"{path.stem}-{n}", kind="text", text=line, meta={"line": n})
        for n, line in enumerate(lines, 1)
    )


def _audio_record(path: Path, n: int, record: dict[str, object]) -> WorkloadItem:
    """A ``{"audio": "file.wav", "text": "reference"}`` line as an audio item."""
    audio = _beside(path, n, "audio", str(record["audio"]))
    check_audio(audio)
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        raise ConfigError(f'{path}:{n}: "text" (the reference transcript) must be a string')
    if text is not None:
        _check_text(f"{path}:{n}", text)
    item_id = _item_id(path, n, record, audio.stem)
    meta = {k: v for k, v in record.items() if k not in ("id", "text", "audio")}
    return WorkloadItem(id=item_id, kind="audio", text=text, path=audio, meta=meta)


def _item_id(path: Path, n: int, record: dict[str, object], default: str) -> str:
    value = record.get("id")
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f'{path}:{n}: "id" must be a string or a number')
    return _check_text(f"{path}:{n}", str(value))


def _jsonl_items(path: Path) -> tuple[WorkloadItem, ...]:
    items = []
    for n, raw in enumerate(read_text(path).splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise ConfigError(f"{path}:{n}: not valid JSON (nested too deeply)") from None
        if isinstance(record, dict) and isinstance(record.get("audio"), str):
            items.append(_audio_record(path, n, record))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ConfigError(f'{path}:{n}: each line needs a "text" string, e.g. {{"text": "Hi"}}')
        item_id = _item_id(path, n, record, f"{path.stem}-{n}")
        text = _check_text(f"{path}:{n}", record["text"])
        meta = {k: v for k, v in record.items() if k not in ("id", "text")}
        for key, check in (("reference", check_audio), ("melody", check_midi)):
            if isinstance(meta.get(key), str):  # reference audio / a MIDI melody, by the file
                ref = _beside(path, n, key, meta[key])
                check(ref)
                meta[key] = str(ref)
        items.append(WorkloadItem(id=item_id, kind="text", text=text, meta=meta))
    if len({item.kind for item in items}) > 1:
        raise ConfigError(f'{path}: mixes text lines and "audio" lines; use one kind per file')
    return tuple(items)


def _transcript(audio: Path) -> str | None:
    """The reference transcript beside an audio file (``name.txt``), or None."""
    txt = audio.with_suffix(".txt")
    if not txt.is_file():
        return None
    return _check_text(str(txt), " ".join(read_text(txt).split())) or None


def _file_items(paths: list[Path]) -> tuple[WorkloadItem, ...]:
    items = []
    for p in sorted(paths):
        if p.suffix.lower() in MIDI_SUFFIXES:
            check_midi(p)
            items.append(WorkloadItem(id=p.stem, kind="midi", path=p.resolve()))
        else:
            check_audio(p)
            items.append(
                WorkloadItem(id=p.stem, kind="audio", text=_transcript(p), path=p.resolve())
            )
    return tuple(items)


def load_path(path: Path) -> Workload:
    """Read a user workload from ``path``; raise ConfigError with one line when it is unusable."""
    if not path.exists():
        raise ConfigError(f"workload file {path} does not exist")
    if path.is_dir():
        try:
            listed = [p for p in path.iterdir() if p.is_file()]
        except OSError as exc:
            raise ConfigError(f"cannot read folder {path}: {exc.strerror or exc}") from None
        files = [p for p in listed if p.suffix.lower() in MIDI_SUFFIXES | AUDIO_SUFFIXES]
        midi = [p for p in files if p.suffix.lower() in MIDI_SUFFIXES]
        chosen = midi or files
        if not chosen:
            raise ConfigError(f"folder {path} holds no .mid, .wav, .flac or .ogg files")
        items = _file_items(chosen)
    else:
        suffix = path.suffix.lower()
        if suffix == ".txt":
            lines = [ln.strip() for ln in read_text(path).splitlines()]
            items = _text_items(path, [_check_text(str(path), ln) for ln in lines if ln])
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
