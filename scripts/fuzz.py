"""Fuzz what voxbench reads, by the ten thousand, and count what happened.

    .venv/bin/python scripts/fuzz.py                      # 10,000 of each (about 10 minutes)
    .venv/bin/python scripts/fuzz.py --each 500 --uploads 100     # a quick look

The generators and checks are tests/support/fuzzing.py's, the ones tests/fuzz/ runs a few hundred
times each: generated ``voxbench.toml`` files (text, tables, bytes) through
``RunRequest.from_sources``; generated workload files (.txt, .jsonl, WAV, MIDI, folders) through
``resolve_workload``, and WAV streams through the streaming decoder; generated result documents
through ``load_document`` and ``store import``'s reader; and generated raw HTTP requests to a real
``voxbench serve -e espeak`` subprocess on 127.0.0.1 (and multipart uploads to
``voxbench serve -e pocketsphinx``). For each it prints: generated, accepted, rejected (a
one-line error, or a 4xx in OpenAI's error shape), tracebacks (any other exception, or an answer
that is neither), and for the servers 5xx, no answer, and tracebacks in the server's own log.
Exit status 1 when any traceback, 5xx or unanswered request was seen.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from support import fuzzing as fz  # noqa: E402

READY = re.compile(r"on (http://[\d.]+):(\d+)(/\S+)")


class Tally:
    """Counts for one target, and the first few failures in full."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self.started = time.perf_counter()

    def run(self, check: Callable[[], str], shown: Any) -> None:
        self.counts["generated"] += 1
        try:
            self.counts[check()] += 1
        except Exception:  # what the fuzzing is for: count it, keep the first ones, go on
            self.counts["tracebacks"] += 1
            if len(self.failures) < 5:
                self.failures.append(f"{shown!r:.300}\n{traceback.format_exc(limit=6)}")

    def line(self) -> str:
        c = self.counts
        extra = "".join(
            f", {key} {c[key]}" for key in ("5xx", "no answer", "server tracebacks") if key in c
        )
        return (
            f"{self.name:<22} generated {c['generated']:>6}, accepted {c[fz.ACCEPTED]:>6}, "
            f"rejected {c[fz.REJECTED]:>6}, tracebacks {c['tracebacks']}{extra}"
            f"  ({time.perf_counter() - self.started:.0f} s)"
        )

    @property
    def bad(self) -> int:
        return sum(self.counts[k] for k in ("tracebacks", "5xx", "no answer", "server tracebacks"))


def drive(strategy: st.SearchStrategy[Any], n: int, each: Callable[[Any], None], seed: int) -> None:
    """Call ``each`` on ``n`` examples of ``strategy`` (generation only: no shrinking)."""

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    @hypothesis_seed(seed)
    def run(example: Any) -> None:
        each(example)

    run()


@contextmanager
def serve(engine: str, log: Path) -> Iterator[tuple[str, int, str]]:
    """``voxbench serve -e ENGINE --port 0`` as a subprocess; ``(host, port, path)``."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voxbench", "serve", "-e", engine, "--port", "0"],
            stderr=err,
            stdout=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 120
        while not (found := READY.search(log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"voxbench serve -e {engine} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield found.group(1).removeprefix("http://"), int(found.group(2)), found.group(3)
    finally:
        proc.terminate()
        proc.wait(30)


def request_check(host: str, port: int, tally: Tally) -> Callable[[bytes], str]:
    def check(raw: bytes) -> str:
        status, answer = fz.send_raw(host, port, raw)
        if status == 0 or status >= 500:
            if len(tally.failures) < 5:
                tally.failures.append(f"{raw!r:.300}\n-> {answer[:300]!r}")
            return "no answer" if status == 0 else "5xx"
        return fz.check_answer(status, answer)

    return check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--each", type=int, default=10_000, help="examples per target")
    parser.add_argument("--uploads", type=int, default=2_000, help="uploads to the STT server")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    n, seed = args.each, args.seed
    tallies: list[Tally] = []

    def target(name: str, strategy: st.SearchStrategy[Any], check: Callable[..., str]) -> Tally:
        tally = Tally(name)
        tallies.append(tally)
        drive(strategy, n, lambda ex: tally.run(lambda: check(ex), ex), seed)
        print(tally.line(), flush=True)
        return tally

    encode = lambda t: t.encode("utf-8", "surrogatepass")  # noqa: E731
    configs = (
        fz.config_texts.map(encode)
        | fz.config_tables.map(lambda t: encode(fz.toml_document(t)))
        | st.binary(max_size=300)
    )
    target("configs", configs, fz.check_config)
    target("workload files", fz.workload_files, lambda f: fz.check_workload(*f))
    target(
        "wav streams",
        st.tuples(fz.wav_bytes, st.lists(st.integers(0, 300), max_size=5)),
        lambda f: fz.check_wav_stream(*f),
    )
    target("documents", fz.documents(), fz.check_document)
    with tempfile.TemporaryDirectory() as tmp:
        for engine, count, make in (
            ("espeak", n, lambda p: fz.http_requests(p, fz.speech_bodies)),
            (
                "pocketsphinx",
                args.uploads,
                lambda p: fz.http_requests(p, fz.upload_bodies(), fz.FORM_TYPES),
            ),
        ):
            log = Path(tmp) / f"{engine}.log"
            with serve(engine, log) as (host, port, path):
                tally = Tally(f"serve -e {engine}")
                tallies.append(tally)
                check = request_check(host, port, tally)
                each = lambda raw, t=tally, c=check: t.run(lambda: c(raw), raw)  # noqa: E731
                drive(make(path), count, each, seed)
            server_tracebacks = log.read_text().count("Traceback")
            if server_tracebacks:
                tally.counts["server tracebacks"] = server_tracebacks
                tally.failures.append(log.read_text()[-3000:])
            print(tally.line(), flush=True)
    for tally in tallies:
        for failure in tally.failures:
            print(f"\n--- {tally.name}:\n{failure}", file=sys.stderr)
    bad = sum(t.bad for t in tallies)
    print(f"total: {sum(t.counts['generated'] for t in tallies)} generated; problems {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("VOXBENCH_STORE", str(Path(tempfile.gettempdir()) / "fuzz-store.sqlite"))
    raise SystemExit(main())
